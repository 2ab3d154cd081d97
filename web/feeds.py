"""Atom feeds of a list, a thread, a topic and a search: newest messages first, no addresses."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

from feedgen.feed import FeedGenerator
from flask import Blueprint, Response, abort, g, request, url_for

from .exports import query_args
from .filters import mask, mask_text

bp = Blueprint("feeds", __name__)

ENTRIES = 30
ATOM = "application/atom+xml; charset=utf-8"
# Ids are UUIDs derived from the message hash (or the feed's path), not from the host name:
# a feed reader keeps its read marks when the archive moves to another address.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:bestbits-archive")
# The date of an undated message or an empty feed: fixed, so the feed (and its ETag) is stable.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Characters XML 1.0 forbids; mail text may hold them and lxml refuses them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@bp.route("/list/<name>/feed.atom")
def list_feed(name: str):
    if not g.archive.list_exists(name):
        abort(404, description=f"No list is named {name[:60]!r}.")
    return _feed(f"{name}: latest messages", g.archive.latest(list_name=name, limit=ENTRIES),
                 key=request.path, alternate=url_for("browse.list_page", name=name, _external=True))


@bp.route("/thread/<thread_id>/feed.atom")
def thread_feed(thread_id: str):
    summary = g.archive.thread_summary(thread_id)
    if summary is None:
        abort(404, description=f"No thread has the id {thread_id[:60]!r}.")
    return _feed(f"Thread: {summary['subject'] or '(no subject)'}",
                 g.archive.latest(thread_id=thread_id, limit=ENTRIES), key=request.path,
                 alternate=url_for("browse.thread", thread_id=thread_id, _external=True))


@bp.route("/topic/<slug>/feed.atom")
def topic_feed(slug: str):
    label = g.archive.topic_labels().get(slug)
    if label is None:
        abort(404, description=f"No agenda topic has the slug {slug[:60]!r}.")
    return _feed(f"Topic: {label}", g.archive.latest(topic=slug, limit=ENTRIES), key=request.path,
                 alternate=url_for("browse.topic", slug=slug, _external=True))


@bp.route("/search/feed.atom")
def search_feed():
    text = query_args()["q"]
    _, ids = g.archive.search_ids(text, limit=ENTRIES, sort="newest")
    return _feed(f"Search: {text}", g.archive.records(ids), key=f"{request.path}?q={text}",
                 alternate=url_for("search.search", q=text, sort="newest", _external=True))


def _text(value: str | None) -> str:
    return _NOT_XML.sub("", mask_text(value or ""))


def _date(record: dict) -> datetime:
    value = record.get("date")
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else EPOCH


def _feed(title: str, records: list[dict], key: str, alternate: str) -> Response:
    """Render records (newest first) as an Atom feed whose id is derived from `key`."""
    fg = FeedGenerator()
    fg.id(uuid.uuid5(NAMESPACE, key).urn)
    fg.title(_text(title))
    fg.link(href=request.url, rel="self", type="application/atom+xml")
    fg.link(href=alternate, rel="alternate", type="text/html")
    # The newest entry's date, not the time of the request: the same archive gives the same bytes.
    fg.updated(max((_date(r) for r in records), default=EPOCH))
    for record in records:
        _entry(fg, record)
    return Response(fg.atom_str(pretty=True), content_type=ATOM)


def _entry(fg: FeedGenerator, record: dict) -> None:
    entry = fg.add_entry(order="append")
    entry.id(uuid.uuid5(NAMESPACE, record["msg_hash"]).urn)
    entry.title(_text(record.get("subject")) or "(no subject)")
    # The sender's name only: an address in a feed is an address for every harvester.
    name = _text(record.get("from_name") or mask(record.get("from_address"))) or "(unknown sender)"
    entry.author({"name": name})
    entry.link(href=url_for("browse.message", msg_hash=record["msg_hash"], _external=True),
               rel="alternate", type="text/html")
    entry.updated(_date(record))
    entry.content(_text(record.get("own_text")), type="text")
    for topic in record.get("topics") or []:
        entry.category(term=topic)
