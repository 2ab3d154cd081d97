"""JSON API beside the HTML: lists, a list's threads, a thread, a message, search."""

from __future__ import annotations

from flask import Blueprint, abort, g, jsonify

from archiver.query import LIST_PAGE

from . import filters
from .browse import HASH
from .params import page_number, pages_of
from .search import search_args

bp = Blueprint("api", __name__, url_prefix="/api")

# Fields of a message record the API gives out; the address is masked as on the pages.
PUBLIC = ("message_id", "msg_hash", "thread_id", "parent_id", "depth", "date", "from_name",
          "organisation", "subject", "lists", "topics", "language", "own_text", "quoted_text",
          "signature", "footer", "attachments", "archive_url", "degraded")


def public(record: dict) -> dict:
    out = {k: record.get(k) for k in PUBLIC if k in record}
    out["from"] = filters.mask(record.get("from_address"))
    for key in ("own_text", "quoted_text", "signature", "footer"):
        if out.get(key):
            out[key] = filters.mask_text(out[key])
    return out


def _people(summary: dict) -> dict:
    return {**summary, "participants": [{"name": p["name"], "key": p["key"], "messages": p["messages"]}
                                        for p in summary["participants"]]}


@bp.route("/lists")
def lists():
    return jsonify(lists=g.archive.lists())


@bp.route("/list/<name>/threads")
def list_threads(name: str):
    if not g.archive.list_exists(name):
        abort(404, description=f"no list named {name!r}")
    page = page_number()
    found = g.archive.threads(list_name=name, limit=LIST_PAGE, offset=(page - 1) * LIST_PAGE)
    pages_of(found["total"], LIST_PAGE, page)
    return jsonify(list=name, total=found["total"], page=page, per_page=LIST_PAGE,
                   threads=[_people(t) for t in found["threads"]])


@bp.route("/thread/<thread_id>")
def thread(thread_id: str):
    if not HASH.match(thread_id):
        abort(404, description=f"no thread {thread_id!r}")
    page = page_number()
    found = g.archive.thread(thread_id, page=page)
    if found is None:
        abort(404, description=f"no thread {thread_id!r}")
    messages = [({"message_id": m["message_id"], "missing": True, "depth": m["depth"]}
                 if m.get("missing") else
                 {"redacted": m["redacted"], "date": m["date"], "depth": m["depth"]}
                 if m.get("redacted") else public(m)) for m in found["messages"]]
    return jsonify(thread=_people(found["thread"]), page=found["page"], pages=found["pages"],
                   messages=messages)


@bp.route("/message/<msg_hash>")
def message(msg_hash: str):
    if not HASH.match(msg_hash):
        abort(404, description=f"no message {msg_hash!r}")
    found = g.archive.message(msg_hash)
    if found is None:
        abort(404, description=f"no message {msg_hash!r}")
    if "redacted" in found:
        return jsonify(error="this message was removed from the archive", reason=found["redacted"]), 410
    return jsonify(message=public(found["message"]),
                   thread=_people(found["thread"]) if found["thread"] else None)


@bp.route("/search")
def search():
    args = search_args()
    if not args["q"]:
        abort(400, description="q is required")
    found = g.archive.search(args["q"], page=args["page"], per_page=args["per_page"],
                             sort=args["sort"], by_thread=args["by_thread"])
    authors = found["facets"].get("author", [])
    names = g.archive.people_names([a["value"] for a in authors])
    found["facets"]["author"] = [{"value": names.get(a["value"]) or filters.mask(a["value"]),
                                  "count": a["count"]} for a in authors]
    for hit in found["hits"]:
        hit["from"] = filters.mask(hit.pop("from_address", ""))
        hit["snippet"] = filters.mask_text(hit["snippet"])
    return jsonify(found)
