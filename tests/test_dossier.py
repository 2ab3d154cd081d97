"""Participant dossiers: `archiver person ADDRESS` (text and JSON) and the person page."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner

from archiver.cli import main
from archiver.ids import person_key
from archiver.query import Archive
from archiver.store import Store
from conftest import BACKENDS, make_app, on_backend
from test_web import check_semantics, page


@pytest.fixture(scope="module", params=BACKENDS)
def built(request, web_datas):
    """The sample archive's data directory and store URL, in SQLite and on PostgreSQL."""
    return web_datas(on_backend(request))


@pytest.fixture(scope="module")
def app(built):
    app = make_app(*built)
    yield app
    app.extensions["store"].close()


@pytest.fixture(scope="module")
def sample(built):
    data, url = built
    store = Store(url)
    yield Archive(store, index_dir=data / "whoosh")
    store.close()


@pytest.fixture(scope="module")
def records(sample) -> list[dict]:
    return list(sample.messages())


@pytest.fixture(scope="module")
def signer(records) -> str:
    """The address of someone who signed a statement in the sample (and wrote more besides)."""
    from archiver.signons import recognise
    counts = Counter(r["from_address"] for r in records)
    found = [r["from_address"] for r in records if recognise(r["own_text"], sender=r["from_name"])]
    return max(found, key=lambda a: (counts[a], a))


def run(built, *args: str):
    data, url = built
    return CliRunner().invoke(main, ["--data", str(data), *args], env={"ARCHIVE_DATABASE_URL": url})


def expected(records: list[dict], address: str) -> dict:
    """What a dossier must say, counted here in Python from the stored records."""
    mine = [r for r in records if r["from_address"] == address]
    ids = {r["message_id"] for r in mine}
    replies = [r for r in records if r["parent_id"] in ids and r["from_address"] != address]
    started = [r for r in mine if r["parent_id"] is None and r["thread_id"]]
    return {"messages": len(mine), "replies": len(replies), "started": len(started),
            "repliers": Counter(person_key(r["from_address"]) for r in replies),
            "topics": Counter(r["topics"][0] if r["topics"] else "" for r in mine)}


def test_person_json_counts_what_the_records_say(built, records, signer):
    result = run(built, "person", signer, "--format", "json")
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    want = expected(records, signer)
    assert d["key"] == person_key(signer) and d["address"] == signer
    assert d["messages"] == want["messages"]
    assert d["started"]["total"] == want["started"]
    assert d["replies"]["total"] == want["replies"]
    assert {p["key"]: p["replies"] for p in d["replies"]["by"]} == dict(want["repliers"])
    assert all(r["parent_hash"] for r in d["replies"]["latest"])
    over = d["topics_over_time"]
    assert {t["slug"]: t["total"] for t in over["topics"]} == dict(want["topics"])
    assert all(sum(t["months"]) == t["total"] and len(t["months"]) == len(over["months"]) for t in over["topics"])
    assert over["months"] == sorted(over["months"])
    # Own words by topic, in date order, and never the quoted words of others.
    said = [m for t in d["topics"] for m in t["messages"]]
    assert len(said) == want["messages"]
    by_hash = {r["msg_hash"]: r for r in records}
    for topic in d["topics"]:
        dates = [m["date"] or "" for m in topic["messages"]]
        assert dates == sorted(dates)
        for m in topic["messages"]:
            assert m["own_text"] == by_hash[m["msg_hash"]]["own_text"]
    assert d["signed"] and all(s["msg_hash"] in by_hash for s in d["signed"])
    assert d["organisation"] == by_hash[d["signed"][0]["msg_hash"]]["organisation"]


def test_person_text(built, records, signer):
    result = run(built, "person", signer)
    assert result.exit_code == 0, result.output
    want = expected(records, signer)
    text = result.output
    name = next(r["from_name"] for r in records if r["from_address"] == signer)
    assert text.startswith(f"{name} <{signer}>")
    assert f"messages: {want['messages']}," in text
    assert f"Threads started: {want['started']}" in text and f"Replies received: {want['replies']}" in text
    assert "Messages by topic and month" in text and "Own words by topic" in text and "\nSigned\n" in text
    # Addresses others wrote into the words are masked; only the one asked for is shown whole.
    others = {r["from_address"] for r in records} - {signer}
    assert not [a for a in others if a in text]


def test_person_by_key_and_unknown(built, signer):
    by_key = run(built, "person", person_key(signer), "--format", "json")
    assert by_key.exit_code == 0 and json.loads(by_key.output)["address"] == signer
    missing = run(built, "person", "nobody@nowhere.example")
    assert missing.exit_code == 1 and "nobody wrote from 'nobody@nowhere.example'" in missing.output


def test_person_page_shows_the_dossier(client, records, signer):
    want = expected(records, signer)
    html = page(client, f"/person/{person_key(signer)}/")
    check_semantics(html)
    for heading in ("Messages by topic and month", f"Threads started <small>({want['started']})</small>",
                    f"Replies received <small>({want['replies']})</small>", "Statements signed",
                    "Own words by topic"):
        assert heading in html, heading
    assert signer not in html
    assert "/signons" in html            # each signature links to its statement's signer list
