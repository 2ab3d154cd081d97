"""Citations of a message or a thread: BibTeX and CSL-JSON, with permalink and original archive URL."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, request

from archiver import config
from archiver.export import citation

from .browse import HASH

bp = Blueprint("cite", __name__)

# Extension -> (citation format, content type)
FORMATS = {
    "bib": ("bibtex", "application/x-bibtex; charset=utf-8"),
    "json": ("csl-json", "application/vnd.citationstyles.csl+json; charset=utf-8"),
}


@bp.route("/message/<msg_hash>/cite.<fmt>")
def message_citation(msg_hash: str, fmt: str):
    return _cite(fmt, f"message-{msg_hash}", "message", msg_hash=msg_hash)


@bp.route("/thread/<thread_id>/cite.<fmt>")
def thread_citation(thread_id: str, fmt: str):
    return _cite(fmt, f"thread-{thread_id}", "thread", thread_id=thread_id)


def _cite(ext: str, name: str, what: str, **which: str) -> Response:
    if ext not in FORMATS:
        abort(404, description=f"No citation format {ext[:40]!r}; the formats are cite.bib and cite.json.")
    ident = next(iter(which.values()))
    if not HASH.match(ident):
        abort(404, description=f"No {what} has the id {ident[:60]!r}.")
    fmt, content_type = FORMATS[ext]
    # The permalink names the archive's public address: the setting, else the one asked for.
    base = str(config.get("base_url")) or request.url_root
    text = citation(g.archive, fmt, base, **which)
    if text is None:
        abort(404, description=f"No {what} has the id {ident!r}.")
    return Response(text, content_type=content_type,
                    headers={"Content-Disposition": f'inline; filename="{name}.{ext}"'})
