"""Streamed exports of a thread or a search result: mboxrd (gzipped), JSON lines, CSV."""

from __future__ import annotations

import re
from typing import Iterator

from flask import Blueprint, Response, abort, current_app, g, stream_with_context

from archiver.export import gzip_stream, mboxrd, render

from .filters import mask, mask_text
from .search import search_args

bp = Blueprint("exports", __name__)

# Format -> content type of the download.
FORMATS = {
    "mbox.gz": "application/gzip",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}
CHUNK = 200          # records read from the store at a time: memory stays flat on big exports
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@bp.route("/thread/<thread_id>/export.<fmt>")
def thread_export(thread_id: str, fmt: str):
    _check_format(fmt)
    summary = g.archive.thread_summary(thread_id)
    if summary is None:
        abort(404, description=f"No thread has the id {thread_id[:60]!r}.")
    limit = _limit()
    if summary["size"] > limit:
        abort(400, description=f"This thread has {summary['size']} messages; an export holds at "
                               f"most {limit}.")
    ids = g.archive.thread_message_ids(thread_id, limit)
    return _stream(ids, fmt, f"thread-{_safe(thread_id)}.{fmt}")


@bp.route("/search/export.<fmt>")
def search_export(fmt: str):
    _check_format(fmt)
    args = query_args()
    limit = _limit()
    # Count first (the index answers that without reading records): an oversized export is
    # refused before a single byte is streamed, when a clear 400 page is still possible.
    total, ids = g.archive.search_ids(args["q"], limit=limit, sort=args["sort"],
                                      by_thread=args["by_thread"])
    if total > limit:
        what = "threads" if args["by_thread"] else "messages"
        abort(400, description=f"This search matches {total} {what}; an export holds at most "
                               f"{limit}. Narrow the query (for example with date: or list:).")
    return _stream(ids, fmt, f"search.{fmt}")


def query_args() -> dict:
    """Return the search parameters (as the search page reads them); 400 when q is missing."""
    args = search_args()
    if not args["q"]:
        abort(400, description="Give a query: ?q=words (see the search page for the query language).")
    return args


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        abort(404, description=f"No export format {fmt[:40]!r}; the formats are "
                               + ", ".join(sorted(FORMATS)) + ".")


def _limit() -> int:
    return int(current_app.config["EXPORT_LIMIT"])


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name)[:80] or "export"


def _stream(ids: list[str], fmt: str, filename: str) -> Response:
    archive = g.archive
    records = _records(archive, ids)
    if fmt == "mbox.gz":
        # A message whose raw bytes are gone (store being repaired) is left out, not faked.
        pairs = ((r, raw) for r in records if (raw := archive.raw(r["message_id"])) is not None)
        body = gzip_stream(mboxrd(pairs))
    else:
        body = render(fmt, (_public(r) for r in records))
    response = Response(stream_with_context(body), content_type=FORMATS[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _public(record: dict) -> dict:
    """A record as the pages show it: addresses masked, and where the server read the message
    (its file paths and From_ lines) left out; the archive URL stays as provenance."""
    out = dict(record)
    out["from_address"] = mask(record.get("from_address"))
    for key in ("own_text", "quoted_text", "signature", "footer", "body"):
        if out.get(key):
            out[key] = mask_text(out[key])
    out["sources"] = [{"list": s.get("list"), "kind": s.get("kind"), "archive_url": s.get("archive_url")}
                      for s in record.get("sources", [])]
    return out


def _records(archive, ids: list[str]) -> Iterator[dict]:
    for start in range(0, len(ids), CHUNK):
        yield from archive.records(ids[start:start + CHUNK])
