"""Frozen dataclasses passed between the stages: raw input, parsed messages, thread placements."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import datetime


@dataclass(frozen=True)
class RawMessage:
    """Bytes of one message as a source found them, with where they came from."""

    data: bytes
    kind: str                      # mbox, maildir, eml, pipermail, stdin
    location: str                  # path#offset, path, or URL: enough to find the bytes again
    envelope: str | None = None    # the mbox From_ line, without its newline
    archive_url: str | None = None  # the message's page in the original web archive
    # Scrubbed-attachment URL -> bytes, where the source could resolve it (local pipermail mirror).
    scrubbed: dict[str, bytes] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int
    url: str | None = None         # a scrubbed attachment's URL in the pipermail archive


@dataclass(frozen=True)
class Message:
    """A parsed message; the clean stage fills own_text, quoted_text, signature, footer, subject_norm."""

    message_id: str
    synthetic_id: bool
    subject: str
    from_name: str
    from_address: str
    date: datetime | None          # UTC
    date_offset: int | None        # the sender's UTC offset in minutes, as written
    in_reply_to: str | None
    references: tuple[str, ...]
    body: str                      # the readable text body (HTML parts flattened)
    content_type: str
    charset: str | None
    attachments: tuple[Attachment, ...]
    degraded: tuple[str, ...]      # why this record is less than the message deserved
    raw_sha256: str
    subject_norm: str = ""
    language: str = ""
    topics: tuple[tuple[str, float], ...] = ()   # agenda topics of the own words, with scores
    own_text: str = ""
    quoted_text: str = ""
    signature: str = ""
    footer: str = ""

    @property
    def thread_refs(self) -> tuple[str, ...]:
        """Return the ancestor chain used for threading: References, then In-Reply-To if new."""
        refs = self.references
        if self.in_reply_to and (not refs or refs[-1] != self.in_reply_to):
            refs = tuple(r for r in refs if r != self.in_reply_to) + (self.in_reply_to,)
        return tuple(r for r in refs if r != self.message_id)


@dataclass(frozen=True)
class ThreadInput:
    """What threading needs to know of one message."""

    message_id: str
    refs: tuple[str, ...]          # oldest first, parent last
    subject_norm: str
    is_reply: bool                 # the subject carried a Re:/Fwd:-style prefix
    date: datetime | None
    order: int = 0                 # arrival order, the tie-break when dates are equal or missing


@dataclass(frozen=True)
class Placement:
    """Where threading put one container (a message, or a dummy for a missing one)."""

    message_id: str
    thread_id: str
    root_id: str
    parent_id: str | None
    depth: int
    dummy: bool = False


@dataclass
class IngestReport:
    """Counts of one ingest; every message seen is in exactly one of stored/duplicates/unchanged/rejected."""

    seen: int = 0
    stored: int = 0
    duplicates: int = 0
    unchanged: int = 0
    degraded: int = 0
    rejected: int = 0
    rethreaded: int = 0
    indexed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    degraded_reasons: dict[str, int] = field(default_factory=dict)
    skipped_files: list[str] = field(default_factory=list)
    timings: Counter = field(default_factory=Counter)   # seconds per stage

    def merge(self, other: "IngestReport") -> None:
        """Add another ingest's counts to these (a fetch adds up its months)."""
        for item in fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            if isinstance(mine, int):
                setattr(self, item.name, mine + theirs)
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:   # reasons and timings: counts by name
                for key, count in theirs.items():
                    mine[key] = mine.get(key, 0) + count

    def as_dict(self) -> dict:
        return {
            "seen": self.seen, "stored": self.stored, "duplicates": self.duplicates,
            "unchanged": self.unchanged, "degraded": self.degraded, "rejected": self.rejected,
            "rethreaded": self.rethreaded, "indexed": self.indexed, "rejected_reasons": dict(sorted(self.reasons.items())),
            "degraded_reasons": dict(sorted(self.degraded_reasons.items())),
            "skipped_files": self.skipped_files,
            "seconds": {k: round(v, 3) for k, v in sorted(self.timings.items())},
        }
