"""Browsing pages: home, list, month, what's new, thread, message, topic, person, stats."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from flask import (Blueprint, Response, abort, current_app, g, redirect, render_template, request,
                   url_for)

from archiver import config
from archiver.query import FLAT_PAGE, LIST_PAGE

from . import charts
from .params import page_number, pages_of

bp = Blueprint("browse", __name__)

HASH = re.compile(r"^[a-z2-7]{32}$")
KEY = re.compile(r"^[a-z2-7]{16}$")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
PIPERMAIL_MONTH = re.compile(r"^\d{4}-[A-Z][a-z]+$")
PIPERMAIL_PAGE = re.compile(r"^\d{6}\.html$")
LAST_VISIT = "last_visit"


def _feed(title: str, endpoint: str, **values) -> dict:
    return {"title": title, "url": url_for(endpoint, **values)}


def _check_hash(value: str, what: str) -> None:
    if not HASH.match(value):
        abort(404, description=f"No {what} has the id {value!r}.")


@bp.route("/")
def home():
    archive = g.archive
    lists = archive.lists()
    topics = archive.topics()
    days: dict[int, list[dict]] = {}
    for topic in topics:
        days.setdefault(topic["day"], []).append(topic)
    latest = archive.threads(limit=15)
    feeds = [_feed(f"List {item['name']}", "feeds.list_feed", name=item["name"]) for item in lists]
    return render_template("browse/home.html", lists=lists, days=days, latest=latest["threads"],
                           stats=archive.stats(), feeds=feeds)


@bp.route("/list/<name>/")
def list_page(name: str):
    archive = g.archive
    if not archive.list_exists(name):
        abort(404, description=f"There is no list named {name!r} in this archive.")
    page = page_number()
    found = archive.threads(list_name=name, limit=LIST_PAGE, offset=(page - 1) * LIST_PAGE)
    pages = pages_of(found["total"], LIST_PAGE, page)
    return render_template("browse/list.html", name=name, months=archive.months(name),
                           threads=found["threads"], total=found["total"], page=page, pages=pages,
                           feeds=[_feed(f"List {name}", "feeds.list_feed", name=name)])


@bp.route("/list/<name>/<month>/")
def month(name: str, month: str):
    archive = g.archive
    if not MONTH.match(month) or month >= "9999":
        abort(400, description=f"{month!r} is not a month: write it as YYYY-MM, e.g. 2012-11.")
    if not archive.list_exists(name):
        abort(404, description=f"There is no list named {name!r} in this archive.")
    view = request.args.get("view", "threads")
    if view not in ("threads", "date"):
        abort(400, description="view must be 'threads' or 'date'.")
    page = page_number()
    months = [m["month"] for m in archive.months(name)]
    newer = next((m for m in reversed(months) if m > month), None)
    older = next((m for m in months if m < month), None)
    if view == "date":
        found = archive.month_messages(name, month, offset=(page - 1) * FLAT_PAGE)
        total, per = found["total"], FLAT_PAGE
    else:
        found = archive.threads(list_name=name, month=month, limit=50, offset=(page - 1) * 50,
                                oldest_first=True)
        total, per = found["total"], 50
    pages = pages_of(total, per, page)
    return render_template("browse/month.html", name=name, month=month, view=view, found=found,
                           total=total, page=page, pages=pages, newer=newer, older=older,
                           feeds=[_feed(f"List {name}", "feeds.list_feed", name=name)])


@bp.route("/new/")
def new():
    """Threads with messages since a date, or since the reader's last visit (a cookie)."""
    raw = request.args.get("since", "").strip()
    now = datetime.now(timezone.utc)
    if raw:
        try:
            since = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            abort(400, description=f"since={raw!r} is not a date: write it as YYYY-MM-DD.")
        source = "date"
    else:
        since = _cookie_time(request.cookies.get(LAST_VISIT))
        source = "cookie" if since else "default"
        if since is None:
            # A first visit: the last month of the archive's activity is a fair start.
            last = g.archive.stats()["last_date"]
            since = (datetime.fromisoformat(last.replace("Z", "+00:00")) if last else now) - timedelta(days=14)
    page = page_number()
    found = g.archive.threads(since=since, limit=LIST_PAGE, offset=(page - 1) * LIST_PAGE)
    pages = pages_of(found["total"], LIST_PAGE, page)
    # At most 20 new messages a thread on this page: the thread page has the rest.
    new_messages = {t["thread_id"]: g.archive.latest(thread_id=t["thread_id"], limit=min(t["matching"], 20))
                    for t in found["threads"]}
    cutoff = since.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    response = Response(render_template(
        "browse/new.html", since=since, source=source, threads=found["threads"],
        total=found["total"], page=page, pages=pages, cutoff=cutoff,
        new_messages={tid: sorted((r for r in recs if (r["date"] or "") > cutoff),
                                  key=lambda r: r["date"] or "") for tid, recs in new_messages.items()}))
    if page == 1 and not raw:
        # Remember this visit for the next one; no account, one small cookie.
        response.set_cookie(LAST_VISIT, now.strftime("%Y-%m-%dT%H:%M:%SZ"), max_age=400 * 86400,
                            samesite="Lax", httponly=True)
    return response


def _cookie_time(value: str | None) -> datetime | None:
    try:
        return datetime.strptime(value or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


@bp.route("/thread/<thread_id>/")
def thread(thread_id: str):
    _check_hash(thread_id, "thread")
    page = page_number()
    found = g.archive.thread(thread_id, page=page)
    if found is None:
        abort(404, description=f"No thread has the id {thread_id!r}.")
    if page > found["pages"]:
        abort(400, description=f"Page {page} is past the last page ({found['pages']}).")
    return render_template("browse/thread.html", t=found, reply_link=reply_link,
                           feeds=[_feed("This thread", "feeds.thread_feed", thread_id=thread_id)])


def reply_link(record: dict) -> str:
    """A mailto link answering a message on its list: the right subject and In-Reply-To.
    Every part is percent-encoded, so nothing in a header can add another header."""
    # Line breaks go too: some mail clients turn an encoded CR LF back into a new header.
    subject = " ".join((record.get("subject") or "").split())
    if not re.match(r"(?i)^\s*re\s*:", subject):
        subject = "Re: " + subject
    lists = record.get("lists") or []
    to = f"{lists[0]}@{config.get('list_post_domain')}" if lists else ""
    mid = "".join(record["message_id"].split()).strip("<>")
    query = f"subject={quote(subject, safe='')}&In-Reply-To={quote(f'<{mid}>', safe='')}"
    return f"mailto:{quote(to, safe='@')}?{query}"


def _message_or_404(msg_hash: str) -> dict:
    _check_hash(msg_hash, "message")
    found = g.archive.message(msg_hash)
    if found is None:
        abort(404, description=f"No message has the id {msg_hash!r}.")
    if "redacted" in found:
        thread = (url_for("browse.thread", thread_id=found["thread_id"])
                  if found["thread_id"] else url_for("browse.home"))
        abort(Response(render_template("errors/gone.html", reason=found["redacted"],
                                       thread_url=thread), 410))
    return found


@bp.route("/message/<msg_hash>/")
def message(msg_hash: str):
    found = _message_or_404(msg_hash)
    return render_template("browse/message.html", m=found["message"], found=found,
                           reply_link=reply_link, labels=g.archive.topic_labels())


@bp.route("/message/<msg_hash>/raw")
def raw(msg_hash: str):
    found = _message_or_404(msg_hash)
    data = g.archive.raw(found["message"]["message_id"]) or b""
    try:
        data.decode("utf-8")
        charset = "; charset=utf-8"
    except UnicodeDecodeError:
        charset = ""   # 8-bit mail in its own charset: claiming UTF-8 would garble it further
    # Shown as text, never as mail or HTML: the bytes are exactly those that came in.
    return Response(data, content_type="text/plain" + charset, headers={
        "Content-Disposition": f'inline; filename="{msg_hash}.eml"'})


@bp.route("/pipermail/<name>/<month>/<page>")
def pipermail(name: str, month: str, page: str):
    """Old pipermail URLs keep working: they redirect to the message they showed."""
    if not (PIPERMAIL_MONTH.match(month) and PIPERMAIL_PAGE.match(page)):
        abort(404, description="Not a pipermail message address.")
    found = g.archive.message_hash_at(f"{name}/{month}/{page}")
    if found is None:
        abort(404, description=f"No message of {name} was archived at {month}/{page}.")
    return redirect(url_for("browse.message", msg_hash=found), 301)


@bp.route("/topic/<slug>/")
def topic(slug: str):
    page = page_number()
    found = g.archive.topic(slug, limit=LIST_PAGE, offset=(page - 1) * LIST_PAGE)
    if found is None:
        abort(404, description=f"The agenda has no topic {slug!r}.")
    pages = pages_of(found["total_threads"], LIST_PAGE, page)
    for item in found["threads"]:
        item["month_key"] = (item["last_date"] or "unknown")[:7]
    chart = charts.sparkline(found["weeks"], f"Messages per week on {found['topic']['label']}")
    return render_template("browse/topic.html", t=found, page=page, pages=pages, chart=chart,
                           feeds=[_feed(f"Topic {found['topic']['label']}", "feeds.topic_feed", slug=slug)])


@bp.route("/person/<key>/")
def person(key: str):
    if not KEY.match(key):
        abort(404, description=f"No participant has the id {key!r}.")
    page = page_number()
    found = g.archive.person(key, offset=(page - 1) * FLAT_PAGE)
    if found is None:
        abort(404, description=f"No participant has the id {key!r}.")
    pages = pages_of(found["messages"], FLAT_PAGE, page)
    return render_template("browse/person.html", p=found, page=page, pages=pages)


@bp.route("/stats/")
def stats():
    archive = g.archive
    weekly = archive.weekly_by_topic()
    labels = archive.topic_labels()
    people = archive.top_participants(20)
    # The table holds the chart's own columns: weeks, or months over a long span (a table of
    # every week over decades weighed a megabyte).
    table = charts.weekly_rows(weekly["weeks"], weekly["series"], labels, weekly["totals"])
    return render_template(
        "browse/stats.html", table=table, people=people, stats=archive.stats(),
        weekly_chart=charts.weekly(weekly["weeks"], weekly["series"], labels,
                                   "Messages per week by agenda topic", totals=weekly["totals"]),
        people_chart=charts.bars([(p["name"], p["messages"]) for p in people],
                                 "Most active participants (messages)"))


@bp.app_context_processor
def _limits():
    return {"export_limit": current_app.config["EXPORT_LIMIT"]}
