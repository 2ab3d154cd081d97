"""An export's manifest: hashed output files, counts, sources and when they were read, codebook."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .export import FIELDS

PACKAGE = "bestbits-archive"
MAX_FILES = 50         # file names listed per source; the rest are counted


class Sink:
    """A binary output that hashes what passes through it: a file (written as `<name>.part` and
    renamed when finished, so a failed export leaves no half file under the real name) or a
    stream such as standard output."""

    def __init__(self, path: Path | None = None, stream: BinaryIO | None = None, *, by_name: bool = False):
        self.path = path
        self.part = path.with_name(path.name + ".part") if path else None
        # by_name: a writer of its own (Parquet) fills `part`; `seal` then hashes the file.
        self.handle = None if by_name else open(self.part, "wb") if self.part else stream
        self.sha = hashlib.sha256()
        self.size = 0
        self.digest: str | None = None

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)
        self.handle.write(data)

    def seal(self) -> None:
        """Hash a file that was written by name rather than through `write`."""
        self.size, self.digest = hash_file(self.part)

    def finish(self) -> None:
        if self.part:
            if self.handle is not None:
                self.handle.close()
            os.replace(self.part, self.path)
        else:
            self.handle.flush()

    def abort(self) -> None:
        if self.part:
            if self.handle is not None:
                self.handle.close()
            self.part.unlink(missing_ok=True)

    def entry(self, base: Path | None) -> dict:
        """Describe the written file for the manifest, named relative to the manifest's folder."""
        name = os.path.relpath(self.path, base) if self.path and base else self.path.name if self.path else "-"
        return {"name": name, "bytes": self.size, "sha256": self.digest or self.sha.hexdigest()}


def hash_file(path: Path) -> tuple[int, str]:
    """Return a file's size and SHA-256, read in blocks."""
    sha, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            sha.update(block)
            size += len(block)
    return size, sha.hexdigest()


class Tally:
    """Counts of what an export holds; memory grows with threads and people, not messages."""

    def __init__(self):
        self.messages = 0
        self.threads: set[str] = set()
        self.people: set[str] = set()
        self.lists: Counter = Counter()
        self.first: str | None = None
        self.last: str | None = None
        self.left_out = 0          # messages of participants on the opt-out list
        self.missing_raw = 0       # mbox: messages whose original bytes are gone
        self.quotes_dropped = 0    # replies to opted-out participants, their quoted text left out
        self.sources: dict[tuple[str, str], dict] = {}

    def add(self, record: dict) -> None:
        self.messages += 1
        if record.get("thread_id"):
            self.threads.add(record["thread_id"])
        self.people.add((record.get("from_address") or "").lower())
        self.lists.update(record.get("lists") or [])
        date = record.get("date")
        if date:
            self.first = min(self.first or date, date)
            self.last = max(self.last or date, date)

    def add_sources(self, rows: list[dict]) -> None:
        """Fold `sources` rows in: per list and kind, the archive URL they share, file names
        (never local directories), and when they were first and last read."""
        for row in rows:
            group = self.sources.setdefault((row["list"], row["kind"]), {
                "list": row["list"], "kind": row["kind"], "archive": None, "files": [],
                "more_files": 0, "seen": 0, "first_seen": None, "last_seen": None})
            group["seen"] += 1
            url = row.get("archive_url")
            if url:
                group["archive"] = url if group["archive"] is None else _common(group["archive"], url)
            name = file_name(row.get("location") or "").partition("#")[0]
            if name and name not in group["files"]:
                if len(group["files"]) < MAX_FILES:
                    group["files"].append(name)
                else:
                    group["more_files"] += 1
            seen = _iso(row.get("seen_at"))
            if seen:
                group["first_seen"] = min(group["first_seen"] or seen, seen)
                group["last_seen"] = max(group["last_seen"] or seen, seen)

    def counts(self) -> dict:
        return {"messages": self.messages, "threads": len(self.threads),
                "participants": len(self.people - {""}), "by_list": dict(sorted(self.lists.items())),
                "first_date": self.first, "last_date": self.last,
                "left_out_by_opt_out": self.left_out, "quotes_left_out_by_opt_out": self.quotes_dropped,
                "missing_raw_bytes": self.missing_raw}

    def source_list(self) -> list[dict]:
        out = []
        for key in sorted(self.sources):
            group = dict(self.sources[key])
            if group["archive"]:
                # A shared prefix ends at a path step: '.../pipermail/bestbits/'.
                group["archive"] = group["archive"][:group["archive"].rfind("/") + 1]
            out.append(group)
        return out


def file_name(location: str) -> str:
    """A source's location without the directories of the machine that read it (URLs kept)."""
    if location.startswith(("http://", "https://")):
        return location
    return PurePosixPath(location.replace("\\", "/")).name


def _common(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return a[:n]


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(value)


def version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


GRAPH_CODEBOOK = {
    "edges.csv": {"replier": "participant who wrote the reply", "replied_to": "participant whose message it answers",
                  "message": "Message-ID of the reply", "thread": "thread id",
                  "date": "date of the reply, UTC (ISO 8601)"},
    "nodes.csv": {"participant": "participant (address, or pseudonym)",
                  "name": "a display name they wrote under (empty when pseudonymised)",
                  "organisation": "organisation from the mail domain",
                  "messages": "messages they wrote in this export (0: only replied to)"},
}
PSEUDONYMISED = (
    "from_address, and participants in the reply graph, are pseudonyms: 'p-' and 16 hex digits of "
    "HMAC-SHA256(salt, lower-cased address); message_id, parent_id, in_reply_to and references are "
    "'m-' pseudonyms, thread_id a 't-' pseudonym, under the same salt; from_name, signature, msg_hash, "
    "archive_url, raw_sha256, attachment file names and URLs, and source locations are left out; "
    "organisation is kept only when the organisations file names it; in subject and texts, addresses "
    "become their pseudonyms, phone numbers '[phone]', and the names of the thread's participants "
    "their pseudonyms ('[name]' where a name part is shared)")


def codebook(fmt: str, pseudonymised: bool) -> dict:
    """Return the fields of an export format and what they mean."""
    if fmt == "mbox":
        book = {"format": "mboxrd: a From_ line (sender, date in UTC), then each message's original "
                          "bytes with every '>*From ' line given one more '>'; a blank line between messages"}
    elif fmt == "edges":
        book = dict(GRAPH_CODEBOOK)
    else:
        book = {name: f"{meaning} [{kind}]" for name, kind, meaning in FIELDS}
        if fmt == "csv":
            book["(csv)"] = "[strings] cells are ';'-joined; attachments and sources are JSON text; " \
                            "a cell starting with = + - @ is prefixed with ' so spreadsheets never run it"
    if pseudonymised:
        book["(pseudonymisation)"] = PSEUDONYMISED
    return book


def write(path: Path, manifest: dict) -> None:
    """Write a manifest as indented JSON."""
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
