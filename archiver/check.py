"""Check the search index against the store, and mend what differs (`archiver check`).

The store is the truth and the index is derived from it. They agree when the index holds one
live document for every stored message that is not redacted, none for anything else, and
each document's content hash equals the one its message's record gives now.

The content hash (`SearchIndex.fingerprint`) is a hash of what the index keeps of a document
that can be read back: its thread, lists, topics, author address, organisation, month,
language and date. Those are exactly what changes after a message is indexed (re-threading,
a cross-post into another list, retagging, an organisations file edit). The texts cannot be
read back from the index (they are analysed into postings); they never change in the store
either, except when a redaction expunges them, and a redacted message must not be in the index
at all, which the check sees by message id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from .errors import ArchiverError
from .index import SearchIndex
from .query import Archive

SHOWN = 10   # message ids shown per kind of difference in the text report


@dataclass
class Report:
    """What the store holds, what the index holds, and where they differ."""

    messages: int = 0            # stored messages, redacted ones included
    redactions: int = 0          # of them, redacted: never in the index
    documents: int = 0           # live documents in the index
    pending: int = 0             # rows the store has not marked indexed (an update is due)
    unthreaded: int = 0          # stored messages without a thread (an ingest was cut short)
    missing: list[str] = field(default_factory=list)      # searchable, not in the index
    stale: list[str] = field(default_factory=list)        # in the index, content hash differs
    extra: list[str] = field(default_factory=list)        # in the index, not in the store
    redacted: list[str] = field(default_factory=list)     # redacted, still in the index
    duplicated: list[str] = field(default_factory=list)   # in the index more than once

    KINDS = (("missing", "missing from the index"),
             ("stale", "indexed with other content than the store's (content hash differs)"),
             ("extra", "in the index but not in the store"),
             ("redacted", "redacted but still in the index"),
             ("duplicated", "in the index more than once"))

    @property
    def agree(self) -> bool:
        return not any(getattr(self, kind) for kind, _ in self.KINDS)

    def as_dict(self) -> dict:
        return {"agree": self.agree, "messages": self.messages, "redactions": self.redactions,
                "searchable": self.messages - self.redactions, "documents": self.documents,
                "pending": self.pending, "unthreaded": self.unthreaded,
                **{kind: getattr(self, kind) for kind, _ in self.KINDS}}

    def lines(self) -> list[str]:
        out = [f"store: {self.messages} messages ({self.redactions} redacted, "
               f"{self.messages - self.redactions} searchable; {self.pending} waiting to be "
               f"indexed, {self.unthreaded} not threaded)",
               f"index: {self.documents} documents"]
        for kind, label in self.KINDS:
            ids = getattr(self, kind)
            if ids:
                out.append(f"{len(ids)} {label}:")
                out += [f"  {mid}" for mid in ids[:SHOWN]]
                if len(ids) > SHOWN:
                    out.append(f"  ... and {len(ids) - SHOWN} more")
        if self.unthreaded:
            out.append("messages without a thread: the next `archiver ingest` threads them")
        out.append("store and index agree" if self.agree else
                   "store and index differ: `archiver check --repair` mends the index")
        return out


def check(archive: Archive) -> Report:
    """Compare the archive's store with its search index; change nothing."""
    if archive.index is None:
        raise ArchiverError("this archive has no search index to check")
    store = archive.store
    report = Report()
    redacted = {row["message_id"] for row in store.redactions()}
    # What each searchable message's document should be, from the store as it is now.
    expected: dict[str, str] = {}
    for record in _every_record(archive):
        expected[record["message_id"]] = SearchIndex.fingerprint(record)
    report.messages = len(expected) + len(redacted)
    report.redactions = len(redacted)
    report.pending = sum(len(rows) for rows in _pending(archive))
    report.unthreaded = sum(1 for _ in store.unthreaded())

    seen: dict[str, int] = {}
    stale: set[str] = set()
    for mid, digest in archive.index.fingerprints():
        report.documents += 1
        seen[mid] = seen.get(mid, 0) + 1
        if mid in expected and digest != expected[mid]:
            stale.add(mid)
    report.missing = sorted(mid for mid in expected if mid not in seen)
    report.stale = sorted(stale)
    report.extra = sorted(mid for mid in seen if mid not in expected and mid not in redacted)
    report.redacted = sorted(mid for mid in seen if mid in redacted)
    report.duplicated = sorted(mid for mid, count in seen.items() if count > 1)
    return report


def repair(archive: Archive, found: Report | None = None, chunk: int = 2000) -> dict:
    """Mend the index from the store (hold the writer lock): index again what is missing, stale,
    duplicated or waiting to be indexed; delete what the store does not have or has redacted;
    then mark the waiting rows indexed. Return counts of what was done. The store's index lock
    is held throughout, as an index update holds it (another ingester's writes wait)."""
    with archive.store.indexing():
        return _repair(archive, found, chunk)


def _repair(archive: Archive, found: Report | None, chunk: int) -> dict:
    found = found or check(archive)
    store, index = archive.store, archive.index
    waiting = [rows for rows in _pending(archive, chunk)]
    redacted = set(found.redacted) | {row["message_id"] for row in store.redactions()}
    again = set(found.missing) | set(found.stale) | set(found.duplicated)
    again |= {mid for rows in waiting for _, mid in rows}
    again -= redacted
    ordered = sorted(again)

    def records() -> Iterator[dict]:
        for i in range(0, len(ordered), chunk):
            yield from archive.records(ordered[i:i + chunk])

    # Replacing a document deletes one copy of it (Whoosh's update finds one): a message
    # indexed twice is deleted first, then indexed once.
    deleted = index.delete(set(found.extra) | set(found.redacted) | set(found.duplicated))
    # Every row the update may add is one of these; the extras were deleted above.
    archive.note_index_bound(store.last_row())
    hidden, archive.hidden = archive.hidden, frozenset()
    try:
        indexed = index.update(records())
    finally:
        archive.hidden = hidden
    for rows in waiting:
        store.mark_indexed(rows[0][0], rows[-1][0])
    return {"indexed": indexed, "deleted": deleted}


def _every_record(archive: Archive) -> Iterator[dict]:
    """Every stored message's record as the index is built from it (redacted ones left out):
    with no lists hidden, whatever the reader's."""
    hidden, archive.hidden = archive.hidden, frozenset()
    try:
        yield from archive.messages()
    finally:
        archive.hidden = hidden


def _pending(archive: Archive, chunk: int = 2000) -> list[list[tuple[int, str]]]:
    """The rows the store has not marked indexed, in chunks of (row id, Message-ID)."""
    out, after = [], 0
    while rows := archive.store.unindexed(after=after, limit=chunk):
        out.append(rows)
        after = rows[-1][0]
    return out
