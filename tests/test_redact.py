"""Redaction: a redacted message leaves pages, search, feeds, exports and the API, its thread
shows a tombstone, every redaction is logged, and no re-ingest brings it back."""

from __future__ import annotations

import json
import zlib

import pytest
from click.testing import CliRunner

from archiver import schema as s
from archiver.ids import person_key
from archiver.packing import unpack, unpack_texts
from archiver.pipeline import ingest
from archiver.query import Archive, open_store
from web.cli import main
from conftest import BACKENDS, SAMPLE, private_copy



@pytest.fixture(params=BACKENDS)
def data(request, tmp_path, web_datas, monkeypatch):
    """A private copy of the sample archive (store and index) to redact in."""
    return private_copy(request, tmp_path, web_datas, monkeypatch)


def pick(data) -> dict:
    store = open_store(data)
    archive = Archive(store, index_dir=data / "whoosh")
    thread = max(archive.threads(list_name="bestbits", limit=200)["threads"], key=lambda t: t["size"])
    reply = next(m for m in archive.thread(thread["thread_id"])["messages"]
                 if not m.get("missing") and m["depth"] == 1)
    archive.index.close()
    store.close()
    return {"thread": thread, "reply": reply}


def run(data, *args) -> object:
    return CliRunner().invoke(main, ["--data", str(data), *args], catch_exceptions=False)


def test_redacted_message_leaves_every_reader(data):
    chosen = pick(data)
    reply, thread = chosen["reply"], chosen["thread"]
    result = run(data, "redact", reply["message_id"], "--reason", "posted by mistake")
    assert result.exit_code == 0, result.output

    from web import create_app
    app = create_app({"DATA_DIR": str(data), "SEARCH_RATE": "1000 per minute",
                      "EXPORT_RATE": "1000 per minute"})
    client = app.test_client()
    try:
        page = client.get(f"/thread/{thread['thread_id']}/").get_data(as_text=True)
        assert "was removed from the archive: posted by mistake" in page
        assert f"m-{reply['msg_hash']}" not in page
        assert reply["own_text"][:60] not in page
        gone = client.get(f"/message/{reply['msg_hash']}/")
        assert gone.status_code == 410 and "posted by mistake" in gone.get_data(as_text=True)
        assert client.get(f"/message/{reply['msg_hash']}/raw").status_code == 410
        assert client.get(f"/api/message/{reply['msg_hash']}").status_code == 410
        api = client.get(f"/api/thread/{thread['thread_id']}").get_json()
        assert {"redacted": "posted by mistake"}.items() <= next(
            m for m in api["messages"] if m.get("redacted")).items()
        assert reply["message_id"] not in json.dumps(api)
        for url in (f"/thread/{thread['thread_id']}/feed.atom", "/list/bestbits/feed.atom",
                    f"/thread/{thread['thread_id']}/export.jsonl", f"/thread/{thread['thread_id']}/export.csv"):
            body = client.get(url).get_data(as_text=True)
            assert reply["message_id"] not in body and reply["msg_hash"] not in body, url
        mbox = client.get(f"/thread/{thread['thread_id']}/export.mbox.gz").data
        assert reply["message_id"].encode() not in zlib.decompress(mbox, 31)
        # Search: the index dropped it.
        hits = client.get(f"/api/search?q=from:%22{reply['from_name']}%22&per_page=100").get_json()
        assert reply["msg_hash"] not in {h["msg_hash"] for h in hits["hits"]}
    finally:
        app.extensions["store"].close()

    log = run(data, "redact", "--list")
    assert reply["message_id"] in log.output and "posted by mistake" in log.output and "hidden" in log.output


def test_expunge_deletes_raw_bytes_and_reingest_never_brings_it_back(data):
    reply = pick(data)["reply"]
    assert run(data, "redact", reply["message_id"], "--reason", "legal request", "--expunge").exit_code == 0
    store = open_store(data)
    try:
        with store.engine.connect() as conn:
            row = conn.execute(s.messages.select().where(s.messages.c.message_id == reply["message_id"])).one()
            raw = conn.execute(s.raws.select().where(s.raws.c.sha256 == row.raw_sha256)).one()
            texts = conn.execute(s.texts.select().where(s.texts.c.message == row.id)).one()
        assert unpack_texts(texts.data) == unpack_texts(None)
        assert unpack(raw.data, store.zdict()) == b"" and raw.size == 0
        archive = Archive(store, index_dir=data / "whoosh")
        assert archive.raw(reply["message_id"]) is None
        report = ingest(store, [str(SAMPLE / "bestbits")], "bestbits", archive=archive)
        assert report.stored == 0
        assert archive.records([reply["message_id"]]) == []
        with store.engine.connect() as conn:
            again = conn.execute(s.texts.select().join(s.messages, s.messages.c.id == s.texts.c.message)
                                 .where(s.messages.c.message_id == reply["message_id"])).one()
        assert unpack_texts(again.data)["own_text"] == ""
        archive.index.close()
    finally:
        store.close()
    assert "expunged" in run(data, "redact", "--list").output


def test_redact_needs_a_stored_message_and_a_reason(data):
    assert run(data, "redact", "<nobody@nowhere>", "--reason", "x").exit_code == 1
    assert run(data, "redact", "<nobody@nowhere>").exit_code == 2


def test_topic_activity_is_recounted_after_a_write(data):
    store = open_store(data)
    try:
        archive = Archive(store)
        slug = max(archive.topics(), key=lambda t: t["messages"])["slug"]
        before = archive.topic(slug)
        top = before["participants"][0]
        victim = next(r for r in archive.latest(topic=slug, limit=200) if
                      person_key(r["from_address"]) == top["key"])
        generation = store.generation()
        assert store.redact(victim["message_id"], "test")
        assert store.generation() != generation
        after = archive.topic(slug)
        count = next(p["messages"] for p in after["participants"] if p["key"] == top["key"])
        assert count == top["messages"] - 1
    finally:
        store.close()
