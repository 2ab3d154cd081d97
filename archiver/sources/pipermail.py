"""A local mirror of a Mailman 2 pipermail archive: month texts, article URLs, scrubbed parts."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote

from ..ids import normalise_message_id
from ..models import RawMessage
from .mbox import open_bytes, split_mbox

MONTHS = ("January February March April May June July August September October "
          "November December").split()
_MONTH_FILE = re.compile(r"^(\d{4})-(" + "|".join(MONTHS) + r")\.txt(\.gz)?$")
# Pipermail's article page carries the message's own id in its reply link.
_REPLY_LINK = re.compile(r'In-Reply-To=([^"&>\s]+)', re.I)
MAX_ATTACHMENT = 5_000_000   # bytes of a scrubbed part worth reading as a message's text
_LISTINFO = re.compile(r'href="(https?://[^"/]+)(?:/[^"]*)?/mailman/listinfo/([^"/]+)"', re.I)
_ARCHIVE_URL = re.compile(r"(?:https?://[^\s>]*?/)?(attachments/\d{8}/[0-9a-f]+/[^\s>]+)")


def is_mirror(path: Path) -> bool:
    """Return True for a directory that holds pipermail month texts."""
    return path.is_dir() and any(_MONTH_FILE.match(p.name) for p in path.iterdir())


def month_files(path: Path) -> list[Path]:
    """Return one text per month, oldest first: the .txt when it is at least as new as the .txt.gz."""
    chosen: dict[tuple[int, int], Path] = {}
    for item in path.iterdir():
        match = _MONTH_FILE.match(item.name)
        if not match or not item.is_file():
            continue
        key = (int(match.group(1)), MONTHS.index(match.group(2)))
        current = chosen.get(key)
        # Pipermail gzips nightly, so the plain .txt of the running month may be fresher.
        if current is None or _fresher(item, current):
            chosen[key] = item
    return [chosen[k] for k in sorted(chosen)]


def _fresher(candidate: Path, current: Path) -> bool:
    plain_first = candidate.suffix == ".txt"
    c_time, o_time = candidate.stat().st_mtime, current.stat().st_mtime
    return c_time > o_time or (c_time == o_time and plain_first)


def public_base(path: Path) -> str | None:
    """Return the archive's public URL, read from the index page's listinfo link."""
    index = path / "index.html"
    if not index.is_file():
        return None
    match = _LISTINFO.search(index.read_bytes()[:65536].decode("latin-1"))
    return f"{match.group(1)}/pipermail/{match.group(2)}/" if match else None


def article_urls(month_dir: Path, base_url: str | None) -> dict[str, str]:
    """Map Message-ID -> article URL by reading the month's NNNNNN.html pages."""
    urls: dict[str, str] = {}
    if not base_url or not month_dir.is_dir():
        return urls
    for page in sorted(month_dir.glob("[0-9][0-9][0-9][0-9][0-9][0-9].html")):
        head = page.read_bytes()[:4096].decode("latin-1")
        match = _REPLY_LINK.search(head)
        if match:
            ident = unquote(match.group(1)).strip().strip("<>")
            urls.setdefault(ident, f"{base_url}{month_dir.name}/{page.name}")
    return urls


def read_mirror(path: Path, skipped: list[str], base_url: str | None = None) -> Iterator[RawMessage]:
    """Yield every message of a pipermail mirror, month by month, with its archive URL; a
    month that cannot be read to its end goes to skipped, the rest of the mirror is read."""
    base = base_url or public_base(path)
    attachments = _attachment_files(path)
    for month_file in month_files(path):
        month = month_file.name.split(".")[0]
        urls = article_urls(path / month, base)
        try:
            with open_bytes(month_file) as stream:
                for raw in split_mbox(stream, str(month_file), kind="pipermail"):
                    ident = normalise_message_id(_header(raw.data, b"message-id"))
                    scrubbed = _scrubbed(raw.data, attachments) if attachments else {}
                    yield replace(raw, archive_url=urls.get(ident or ""), scrubbed=scrubbed)
        except (OSError, EOFError) as exc:   # a bad gzip is an OSError
            skipped.append(f"{month_file}: unreadable from some point on ({exc})")


def _header(data: bytes, name: bytes) -> str | None:
    head = data.split(b"\n\n", 1)[0]
    for line in head.splitlines():
        if line[:len(name) + 1].lower() == name + b":":
            return line.split(b":", 1)[1].decode("latin-1").strip()
    return None


def _attachment_files(root: Path) -> dict[str, Path]:
    """Map 'attachments/DATE/HASH/NAME' -> file, for the mirror's scrubbed parts (read once)."""
    folder = root / "attachments"
    if not folder.is_dir():
        return {}
    return {item.relative_to(root).as_posix(): item for item in folder.glob("*/*/*")
            if item.is_file() and item.stat().st_size < MAX_ATTACHMENT}


def _scrubbed(data: bytes, attachments: dict[str, Path]) -> dict[str, bytes]:
    """Return the mirror's copies of the scrubbed parts a message's stubs point to."""
    found: dict[str, bytes] = {}
    if b"scrubbed" not in data:
        return found
    for match in _ARCHIVE_URL.finditer(data.decode("latin-1")):
        local = attachments.get(match.group(1))
        if local is not None:
            found[match.group(0)] = local.read_bytes()
    return found
