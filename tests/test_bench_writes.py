"""benchmarks/writes.py: the pages an ingest writes, per table and index, counted from the log."""

from __future__ import annotations

import hashlib
import sqlite3
import struct

import pytest

from benchmarks import writes


def _dbstat_missing() -> bool:
    try:
        sqlite3.connect(":memory:").execute("SELECT count(*) FROM dbstat").fetchall()
    except sqlite3.OperationalError:
        return True
    return False


def _frame(page: int, after: int, salts: tuple[int, int], size: int) -> bytes:
    return struct.pack(">IIIIII", page, after, *salts, 0, 0) + bytes(size)


def test_wal_pages_reads_valid_frames_and_commits():
    size, salts = 512, (7, 9)
    header = struct.pack(">IIIIIIII", 0x377F0682, 3007000, size, 0, *salts, 0, 0)
    wal = (header + _frame(5, 0, salts, size) + _frame(2, 10, salts, size)
           + _frame(8, 12, salts, size)
           + _frame(3, 12, (1, 1), size))   # left from before a reset: another salt
    assert writes.wal_pages(wal) == ([5, 2, 8], 2)
    assert writes.wal_pages(b"") == ([], 0)
    with pytest.raises(SystemExit):
        writes.wal_pages(b"\0" * 64)


@pytest.mark.skipif(_dbstat_missing(), reason="this SQLite is built without the dbstat table")
def test_counts_every_page_by_table_and_index_and_leaves_the_store_alone(web_data, tmp_path):
    db = web_data / "archive.sqlite3"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    sources = writes.added_corpus(120, 77, tmp_path)
    first = writes.measure(web_data, sources, tmp_path)
    assert first["stored"] > 50
    assert sum(first["written"].values()) == first["pages"] > first["stored"]
    assert first["commits"] >= 2   # storing, then threading
    look = sqlite3.connect(db)
    names = {row[0] for row in look.execute("SELECT name FROM sqlite_master")}
    look.close()
    # sqlite_schema: page 1, which holds the file's header (its change counter, its size)
    assert set(first["written"]) <= names | {"sqlite_schema", "(free pages)"}
    for name in ("messages", "raws", "sqlite_autoindex_raws_1", "threads"):
        assert first["written"][name] > 0, name
    # The same messages added to the same store write the same pages.
    again = writes.measure(web_data, sources, tmp_path)
    assert (again["written"], again["commits"]) == (first["written"], first["commits"])
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("writes-")]
    table = writes.table([first, again])
    assert "| all, pages per message |" in table and "| messages |" in table
