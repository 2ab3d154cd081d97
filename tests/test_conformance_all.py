"""Conformance: every message of every file in the realdata folder and in Python's own email test
data goes through ingest, each file given on its own (so no folder rule, such as a pipermail
mirror's "month files only", passes anything over). Every file is mail or reported as not mail;
every message is stored, a duplicate or rejected with its reason; its raw bytes are kept byte
for byte; and the counts, with the reasons of rejected and degraded messages, are held here so
that a change in any stage is noticed.

The other conformance tests hold what the messages of each corpus mean (threads, names, dates,
quotes); these hold only that nothing is lost or crashes, across all of them at once.
"""

from __future__ import annotations

import email
import hashlib
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from archiver import schema as s
from archiver.pipeline import ingest
from archiver.sources import read_source

from conftest import BACKENDS, realdata_dir

# Per top-level realdata folder: files, files reported as not mail, messages seen, stored,
# duplicates (of an id or of raw bytes already stored), rejected reasons, degraded reasons.
REALDATA = {
    "EmailReplyParser-willdurand-php": (46, 44, 2, 2, 0, {},
                                        {"no-date": 2, "no-from-address": 2, "no-message-id": 2}),
    # 2001-November.txt holds each message twice; the 3GPP LISTSERV mboxes repeat 4 ids.
    "bigbang": (12, 8, 279, 193, 86, {},
                {"date-from-envelope": 1, "no-from-address": 1, "no-message-id": 1}),
    "email-reply-parser-zapier": (24, 23, 1, 1, 0, {},
                                  {"no-date": 1, "no-from-address": 1, "no-message-id": 1}),
    "email_reply_parser-github-ruby": (22, 21, 1, 1, 0, {},
                                       {"no-date": 1, "no-from-address": 1, "no-message-id": 1}),
    "jwz-go-spamassassin-ham": (2405, 0, 2405, 2405, 0, {}, {}),
    "jwz-ruby-fdietz": (1, 0, 25, 25, 0, {}, {}),
    # mbox.win is mbox.src with CRLF line ends: the same ids, except the two without one.
    "mail-box-perl": (2, 0, 90, 46, 44, {},
                      {"charset-guessed": 1, "no-from-address": 2, "no-message-id": 2}),
    "mail-parser-reply": (47, 41, 6, 6, 0, {},
                          {"mime-defects": 4, "no-date": 6, "no-from-address": 6, "no-message-id": 6}),
    "mail-thread-perl": (9, 0, 43, 43, 0, {}, {}),
    "mailman2-pipermail-templates": (10, 10, 0, 0, 0, {}, {}),
    # The summaries ("Subject: ..." lines) read as header-only messages without an id.
    "mimekit-testdata": (42, 4, 103, 98, 5, {},
                         {"mime-defects": 5, "no-date": 6, "no-from-address": 3, "no-message-id": 55}),
    "notmuch-corpora": (297, 1, 297, 256, 41, {},
                        {"charset-guessed": 1, "mime-defects": 1, "no-date": 1, "no-message-id": 1}),
    "quotequail": (13, 13, 0, 0, 0, {}, {}),
    "threading-expected": (6, 6, 0, 0, 0, {}, {}),
}
# Python's own email test data, for the Python versions whose data these counts were taken from
# (file count first: another Python's data is checked for loss but its counts are not held).
PYTHON_EMAIL = {
    (3, 11): (65, 18, 47, 42, 5, {},
              {"mime-defects": 5, "no-date": 18, "no-from-address": 8, "no-message-id": 31}),
}

HELD = "files not_mail seen stored duplicates rejected degraded".split()


def python_email_data() -> Path:
    return Path(email.__file__).parent.parent / "test" / "test_email" / "data"


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """The tests that ingest do so into a store in SQLite, then into one on PostgreSQL."""
    return request.param


def folders() -> list[str]:
    root = realdata_dir()
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def ingest_every_file(store, folder: Path, name: str) -> tuple:
    """Ingest each file of a folder tree as its own source; check that nothing is lost and
    return the counts as held above."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    report = ingest(store, [str(p) for p in files], name)
    not_mail = [line for line in report.skipped_files if line.endswith(": not mail")]
    assert len(not_mail) == len(report.skipped_files), report.skipped_files   # none unreadable

    # Every file is mail (it gave at least one message) or was reported as not mail.
    raws = {}
    given = set()
    for path in files:
        for raw in read_source(str(path), []):
            raws.setdefault(raw.location, raw)
            given.add(str(path))
    reported = {line.rsplit(": ", 1)[0] for line in not_mail}
    assert given | reported == {str(p) for p in files} and not given & reported

    # Every message is stored, a duplicate or rejected: counted once, rejections with a reason.
    assert report.seen == len(raws)
    assert report.stored + report.duplicates + report.unchanged + report.rejected == report.seen
    assert sum(report.reasons.values()) == report.rejected
    with store.engine.connect() as conn:
        rows = conn.execute(select(s.sources.c.location, s.sources.c.raw_sha256,
                                   s.sources.c.message_id)).all()
        rejected = dict(conn.execute(select(s.rejected.c.location, s.rejected.c.reason)).all())
        stored = conn.execute(select(s.messages.c.message_id, s.messages.c.degraded)).all()
    sources = {location: (sha, mid) for location, sha, mid in rows}
    assert set(sources) == set(raws)       # each message's place is recorded
    for location, raw in raws.items():
        sha, mid = sources[location]
        assert sha == hashlib.sha256(raw.data).hexdigest()
        assert mid is not None or rejected.get(location), location
    # Raw bytes kept byte for byte, for stored, duplicate and rejected messages alike.
    for location, raw in raws.items():
        assert store.raw_bytes(sources[location][0]) == raw.data, location
    assert len(stored) == report.stored
    # Degraded reasons are counted from the store, the truth: the ingest report counts a
    # degraded message twice when a second copy of its Message-ID arrives in the same batch.
    degraded = Counter(reason for _, reasons in stored for reason in reasons.split())

    return (len(files), len(not_mail), report.seen, report.stored, report.duplicates,
            dict(sorted(report.reasons.items())), dict(sorted(degraded.items())))


def describe(counts: tuple) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(HELD, counts))


@pytest.mark.parametrize("name", folders() or ["(realdata absent)"])
def test_every_realdata_message_is_stored_or_rejected_with_a_reason(realdata, store, name):
    counts = ingest_every_file(store, realdata / name, name)
    print(f"{name}: {describe(counts)}")
    assert name in REALDATA, f"a new realdata folder: hold its counts: {name!r}: {counts!r}"
    assert counts == REALDATA[name]


def test_realdata_folders_are_all_held(realdata):
    assert sorted(REALDATA) == folders()


def test_every_python_email_test_message_is_stored_or_rejected_with_a_reason(store):
    data = python_email_data()
    if not data.is_dir():
        pytest.skip(f"this Python has no email test data at {data}")
    counts = ingest_every_file(store, data, "python-email")
    print(f"Python {sys.version.split()[0]} email test data: {describe(counts)}")
    held = PYTHON_EMAIL.get(sys.version_info[:2])
    if held is None or held[0] != counts[0]:
        pytest.skip(f"counts not held for this Python's email test data: {counts!r}")
    assert counts == held
