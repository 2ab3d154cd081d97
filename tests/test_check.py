"""`archiver check` compares the search index with the store (counts, ids, content hashes) and
`archiver check --repair` mends what differs; index updates delete redacted messages."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from archiver.check import check, repair
from archiver.index import SearchIndex
from archiver.pipeline import ingest, update_index
from archiver.query import Archive, open_store
from conftest import BACKENDS, SAMPLE, private_copy
from web.cli import main


@pytest.fixture(params=BACKENDS)
def data(request, tmp_path, web_datas, monkeypatch):
    """A private copy of the sample archive (store and index) to damage."""
    return private_copy(request, tmp_path, web_datas, monkeypatch)


@pytest.fixture
def opened(data):
    store = open_store(data)
    archive = Archive(store, index_dir=data / "whoosh")
    yield archive
    archive.index.close()
    store.close()


def run(data, *args):
    return CliRunner().invoke(main, ["--data", str(data), *args], catch_exceptions=False)


def searchable(archive: Archive) -> list[dict]:
    return sorted(archive.messages(), key=lambda r: r["message_id"])


def test_a_freshly_ingested_archive_agrees(data):
    result = run(data, "check")
    assert result.exit_code == 0, result.output
    assert "store and index agree" in result.output
    found = json.loads(run(data, "check", "--format", "json").output)
    assert found["agree"] and found["messages"] == found["documents"] == found["searchable"] > 400
    assert found["missing"] == found["stale"] == found["extra"] == found["duplicated"] == []


def test_check_finds_every_kind_of_difference_and_repair_mends_them(data, opened):
    records = searchable(opened)
    gone, moved, twice, hidden = records[0], records[1], records[2], records[3]
    # Indexed twice (a rebuild adds what it is given), then one missing, one stale, one the
    # store never had, and one redacted behind the index's back.
    opened.index.rebuild(records + [twice])
    assert opened.index.delete([gone["message_id"]]) == 1
    opened.index.update([{**moved, "thread_id": "x" * 32, "topics": ["logistics"]}])
    opened.index.update([{**records[4], "message_id": "ghost@nowhere.example"}])
    assert opened.store.redact(hidden["message_id"], "test")
    opened.index.close()

    # PostgreSQL's search table is keyed by message: a document given twice is kept once.
    doubled = [] if opened.store.engine.dialect.name == "postgresql" else [twice["message_id"]]
    result = run(data, "check")
    assert result.exit_code == 1
    expected = [("missing from the index", gone), ("content hash differs", moved),
                ("in the index but not in the store", {"message_id": "ghost@nowhere.example"}),
                ("redacted but still in the index", hidden)]
    for label, mid in expected + [("in the index more than once", twice)] * bool(doubled):
        assert label in result.output and mid["message_id"] in result.output, (label, result.output)
    found = json.loads(run(data, "check", "--format", "json").output)
    assert (found["missing"], found["stale"], found["extra"], found["redacted"], found["duplicated"]) == (
        [gone["message_id"]], [moved["message_id"]], ["ghost@nowhere.example"],
        [hidden["message_id"]], doubled)
    assert found["redactions"] == 1 and found["pending"] == 1   # the redacted row waits

    result = run(data, "check", "--repair")
    assert result.exit_code == 0, result.output
    assert "store and index agree now" in result.output
    after = run(data, "check")
    assert after.exit_code == 0 and "0 waiting to be indexed" in after.output, after.output

    ids = [mid for mid, _ in opened.index.fingerprints()]
    assert len(ids) == len(set(ids)) == len(records) - 1
    assert set(ids) == {r["message_id"] for r in records} - {hidden["message_id"]}
    prints = dict(opened.index.fingerprints())
    assert prints[moved["message_id"]] == SearchIndex.fingerprint(moved)


def test_content_hash_follows_what_the_index_keeps(opened):
    record = searchable(opened)[0]
    same = SearchIndex.fingerprint(record)
    assert SearchIndex.fingerprint({**record, "own_text": "other words"}) == same
    for change in ({"thread_id": "y" * 32}, {"lists": ["another"]}, {"topics": ["itu-itrs", "x"]},
                   {"from_address": "a@b.example"}, {"organisation": "Org"},
                   {"date": "2001-01-01T00:00:00Z"}, {"language": "xx"}):
        assert SearchIndex.fingerprint({**record, **change}) != same, change


def test_an_archive_ingested_without_its_index_is_repaired(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    store = open_store(data)
    archive = Archive(store, index_dir=data / "whoosh")
    try:
        ingest(store, [str(SAMPLE / "governance")], "governance")   # no index given
        found = check(archive)
        assert not found.agree and found.documents == 0
        assert len(found.missing) == found.messages == found.pending > 0
        done = repair(archive, found)
        assert done["indexed"] == found.messages and done["deleted"] == 0
        again = check(archive)
        assert again.agree and again.pending == 0 and again.documents == found.messages
    finally:
        archive.index.close()
        store.close()


def test_update_index_deletes_redacted_messages(data, opened):
    record = searchable(opened)[5]
    query = f'from:"{record["from_address"]}"'
    before = opened.search(query, per_page=100)["total"]
    assert record["message_id"] in dict(opened.index.fingerprints())
    result = run(data, "redact", record["message_id"], "--reason", "test")
    assert result.exit_code == 0 and "(1 changed)" in result.output, result.output
    opened.index.close()
    assert record["message_id"] not in dict(opened.index.fingerprints())
    # Totals and facets no longer count it, not only the hits.
    found = opened.search(query, per_page=100)
    assert found["total"] == before - 1
    assert sum(f["count"] for f in found["facets"]["author"]) == before - 1
    # Indexing again (as an ingest does after a re-fetch) never brings it back.
    opened.store.mark_all_indexed()
    with opened.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE messages SET indexed = false")
    assert update_index(opened) > 0
    assert record["message_id"] not in dict(opened.index.fingerprints())
    assert check(opened).agree


def test_repair_waits_for_the_writer_lock(data):
    from archiver.cli import _writer_lock

    lock = _writer_lock(data)
    try:
        result = run(data, "check", "--repair")
        assert result.exit_code == 1 and "another ingest" in result.output
        assert run(data, "check").exit_code == 0   # reading never waits
    finally:
        lock.close()
