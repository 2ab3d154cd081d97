"""Atom feeds of lists, threads, topics and searches: well-formed, newest first, stable, no addresses."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from archiver.query import Archive
from archiver.masking import mask_text as mask_addresses

from conftest import eml, make_app

NS = {"a": "http://www.w3.org/2005/Atom"}
ATOM = "application/atom+xml; charset=utf-8"


@pytest.fixture(scope="module")
def app(app_on_both):
    """This module's pages are read from a store in SQLite and from one on PostgreSQL."""
    return app_on_both


@pytest.fixture(scope="module")
def archive(app) -> Archive:
    return app.extensions["archive"]()


@pytest.fixture(scope="module")
def senders(archive) -> set[str]:
    return {r["from_address"] for r in archive.messages() if r["from_address"]}


def feed(client, url: str) -> ET.Element:
    response = client.get(url)
    assert response.status_code == 200, response.data[:300]
    assert response.headers["Content-Type"] == ATOM
    return ET.fromstring(response.data)


def entries(root: ET.Element) -> list[ET.Element]:
    return root.findall("a:entry", NS)


def updated(element: ET.Element) -> str:
    return element.find("a:updated", NS).text


def assert_no_addresses(body: bytes, senders: set[str]) -> None:
    text = body.decode()
    for address in senders:
        local, _, domain = address.partition("@")
        assert address not in text
        assert f"{local} at {domain}" not in text   # pipermail's way of writing them
    assert not re.search(r"[\w.+-]{2,}@[\w-]+\.\w", text), "an address-shaped string is left"


def test_list_feed_has_the_newest_thirty_newest_first(client, archive):
    root = feed(client, "/list/bestbits/feed.atom")
    items = entries(root)
    assert len(items) == 30
    dates = [updated(e) for e in items]
    assert dates == sorted(dates, reverse=True)
    assert updated(root) == dates[0]
    newest = archive.latest(list_name="bestbits", limit=1)[0]
    first = items[0]
    assert first.find("a:title", NS).text == newest["subject"]
    assert first.find("a:author/a:name", NS).text == newest["from_name"]
    assert first.find("a:link", NS).get("href") == f"http://localhost/message/{newest['msg_hash']}/"
    assert first.find("a:content", NS).get("type") == "text"
    assert [c.get("term") for c in first.findall("a:category", NS)] == newest["topics"]
    ids = [e.find("a:id", NS).text for e in items]
    assert len(set(ids)) == 30 and all(i.startswith("urn:uuid:") for i in ids)
    links = {link.get("rel"): link.get("href") for link in root.findall("a:link", NS)}
    assert links["self"] == "http://localhost/list/bestbits/feed.atom"
    assert links["alternate"] == "http://localhost/list/bestbits/"


def test_feeds_are_the_same_bytes_on_every_request(client):
    first = client.get("/list/governance/feed.atom")
    second = client.get("/list/governance/feed.atom")
    assert first.data == second.data
    assert client.get("/list/governance/feed.atom",
                      headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


def test_thread_feed_holds_the_thread(client, archive):
    summary = max(archive.threads(limit=50)["threads"], key=lambda t: t["size"])
    root = feed(client, f"/thread/{summary['thread_id']}/feed.atom")
    assert len(entries(root)) == min(30, summary["size"])
    assert summary["subject"] in root.find("a:title", NS).text


def test_topic_feed(client, archive):
    topic = max(archive.topics(), key=lambda t: t["messages"])
    root = feed(client, f"/topic/{topic['slug']}/feed.atom")
    assert len(entries(root)) == min(30, topic["messages"])
    for entry in entries(root):
        assert topic["slug"] in [c.get("term") for c in entry.findall("a:category", NS)]


def test_search_feed_is_newest_first(client, archive):
    total = archive.search("internet")["total"]
    root = feed(client, "/search/feed.atom?q=internet")
    assert len(entries(root)) == min(30, total) > 0
    dates = [updated(e) for e in entries(root)]
    assert dates == sorted(dates, reverse=True)


def test_no_feed_shows_an_address(client, archive, senders):
    thread_id = next(r["thread_id"] for r in archive.messages() if " at caspiancivic.example" in r["own_text"])
    urls = ["/list/bestbits/feed.atom", "/list/governance/feed.atom", f"/thread/{thread_id}/feed.atom",
            "/search/feed.atom?q=caspiancivic", "/search/feed.atom?q=internet"]
    urls += [f"/topic/{t['slug']}/feed.atom" for t in archive.topics()]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200
        assert_no_addresses(response.data, senders)
    # The body's address is there, masked, not cut out.
    assert "l…@caspiancivic.example" in client.get(urls[2]).data.decode()


@pytest.mark.parametrize("url", ["/list/nope/feed.atom", "/thread/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/feed.atom",
                                 "/topic/no-such-topic/feed.atom"])
def test_unknown_things_have_no_feed(client, url):
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("query", ["", "?q=", "?q=%20", '?q="unclosed', "?q=nosuchfield:x", "?q=" + "a" * 600])
def test_search_feed_needs_a_good_query(client, query):
    response = client.get("/search/feed.atom" + query)
    assert response.status_code == 400
    assert b"Traceback" not in response.data


def test_mask_addresses():
    assert mask_addresses("write to jane.doe@civil.example, or jane.doe at civil.example.") == \
        "write to j…@civil.example, or j…@civil.example."
    assert mask_addresses("off list at jo.do at x.org") == "off list at j…@x.org"
    assert mask_addresses("seat at WCIT, capped at 900, meet at 10.30") == "seat at WCIT, capped at 900, meet at 10.30"
    long = "x" * 100_000
    assert mask_addresses(long) == long


@pytest.fixture(scope="module")
def odd_client(tmp_path_factory, build_archive):
    """An app over two awkward messages: a sender with no name, and a body with control bytes."""
    data = tmp_path_factory.mktemp("odd")
    mailbox = data / "odd.mbox"
    plain = eml("plain@x", subject="Bell", body="Ring \x07 twice; mail solo@lonely.example.\n")
    nameless = eml("nameless@x", subject="", refs=("plain@x",), hour=11).replace(
        b"From: Jane Doe <jane.doe@civil.example>", b"From: solo@lonely.example")
    mailbox.write_bytes(b"".join(b"From x@y Tue Oct  2 10:00:00 2012\n" + m + b"\n" for m in (plain, nameless)))
    app = make_app(data, build_archive(data, [("odd", [mailbox])]))
    yield app.test_client()
    app.extensions["store"].close()


def test_awkward_messages_still_make_a_valid_feed(odd_client):
    response = odd_client.get("/list/odd/feed.atom")
    assert response.status_code == 200
    root = ET.fromstring(response.data)
    first, second = entries(root)
    assert first.find("a:author/a:name", NS).text == "s…@lonely.example"
    assert first.find("a:title", NS).text == "(no subject)"
    assert second.find("a:content", NS).text == "Ring  twice; mail s…@lonely.example."
    assert b"solo@lonely.example" not in response.data and b"jane.doe@" not in response.data
