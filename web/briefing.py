"""For moderators: an agenda session's printable briefing pack, and a statement thread's signers."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, abort, g, render_template, request

from .browse import HASH

bp = Blueprint("briefing", __name__)


def _since() -> tuple[datetime | None, str]:
    raw = request.args.get("since", "").strip()
    if not raw:
        return None, ""
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=timezone.utc), raw
    except ValueError:
        abort(400, description=f"since={raw!r} is not a date: write it as YYYY-MM-DD.")


@bp.route("/topic/<slug>/briefing")
def briefing(slug: str):
    """The briefing pack: the same data as `archiver briefing`, laid out to print on A4."""
    since, raw = _since()
    brief = g.archive.briefing(slug, since)
    if brief is None:
        abort(404, description=f"The agenda has no topic {slug!r}.")
    return render_template("briefing/briefing.html", b=brief, since=raw)


@bp.route("/thread/<thread_id>/signons")
def signons(thread_id: str):
    """Who signed the statement a thread circulates, each with a link to their message."""
    summary = g.archive.thread_summary(thread_id) if HASH.match(thread_id) else None
    if summary is None:
        abort(404, description=f"No thread has the id {thread_id!r}.")
    return render_template("briefing/signons.html", th=summary, signers=g.archive.signons(thread_id))
