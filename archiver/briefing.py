"""For moderators: a session's briefing pack (data, Markdown, HTML) and a participant's dossier."""

from __future__ import annotations

import html
import re
from collections import Counter

from .clean import display_subject
from .masking import mask_text

MAX_THREADS = 200       # threads of a topic read for one briefing (latest activity first)
EXCERPT = 420           # characters of a paragraph quoted in a briefing

_GREETING = re.compile(r"^.{0,40}[,:]$")


def excerpt(own_text: str | None, limit: int = EXCERPT) -> str:
    """Return the first paragraph of substance of someone's own words, folded and shortened,
    addresses masked ("Dear all," and other greetings are skipped)."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", own_text or "")]
    said = [p for p in paragraphs if p and not _GREETING.match(p)] or [p for p in paragraphs if p]
    chosen = ""
    for paragraph in said:      # a short request ("We would like to sign.") takes the next one too
        chosen = f"{chosen} {paragraph}".strip()
        if len(chosen) >= 80:
            break
    if len(chosen) > limit:
        chosen = chosen[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"
    return mask_text(chosen)


def build(window: dict, *, threads: int = 8, people: int = 10, positions: int = 2) -> dict:
    """Return a briefing from a topic window (`Archive.topic_window`): the session, its most
    active threads with an extract each, who took part and from which organisations, each
    active participant's latest positions, and the sign-on lists of its statements."""
    since = window.get("since")
    rows = window["messages"]

    def recent(record: dict) -> bool:
        return since is None or (record["date"] or "") > since

    ranked = sorted(window["threads"], key=lambda t: (-t["matching"], _desc(t["matching_last"] or ""),
                                                      t["thread_id"]))
    active = []
    for summary in ranked[:threads]:
        said = [r for r in rows.get(summary["thread_id"], []) if recent(r) and (r["own_text"] or "").strip()]
        opening = said[0] if said else None
        active.append({
            "thread_id": summary["thread_id"], "subject": display_subject(summary["subject"]),
            "size": summary["size"], "recent": summary["matching"], "first_date": summary["first_date"],
            "last_date": summary["last_date"], "lists": summary["lists"],
            "participants": [p["name"] for p in summary["participants"][:6]],
            "more_participants": max(0, len(summary["participants"]) - 6),
            "extract": opening and {"text": excerpt(opening["own_text"]), "from_name": opening["from_name"],
                                    "from_key": opening["from_key"], "date": opening["date"],
                                    "msg_hash": opening["msg_hash"]}})
    voices: dict[str, dict] = {}
    subjects = {t["thread_id"]: display_subject(t["subject"]) for t in window["threads"]}
    opened = {t["thread_id"]: t["first_date"] for t in window["threads"]}
    for tid, records in rows.items():
        for r in records:
            if not recent(r) or not r["from_key"]:
                continue
            who = voices.setdefault(r["from_key"], {"key": r["from_key"], "name": r["from_name"],
                                                    "organisation": r["organisation"], "messages": 0,
                                                    "last_date": None, "said": []})
            who["messages"] += 1
            who["last_date"] = max(who["last_date"] or "", r["date"] or "") or None
            if (r["own_text"] or "").strip():
                who["said"].append(r)
    participants = sorted(voices.values(), key=lambda p: (-p["messages"], _desc(p["last_date"] or ""), p["name"]))
    organisations: Counter = Counter()
    members: dict[str, set] = {}
    for person in participants:
        if person["organisation"]:
            organisations[person["organisation"]] += person["messages"]
            members.setdefault(person["organisation"], set()).add(person["key"])
    for person in participants[:people]:
        latest = sorted(person["said"], key=lambda r: (r["date"] or "", r["msg_hash"]), reverse=True)[:positions]
        person["positions"] = [{"date": r["date"], "msg_hash": r["msg_hash"], "thread_id": r["thread_id"],
                                "subject": subjects.get(r["thread_id"]) or display_subject(r["subject"]),
                                "language": r["language"], "text": excerpt(r["own_text"])} for r in latest]
    signons = []
    for tid, found in window["signers"].items():
        signons.append({"thread_id": tid, "subject": subjects.get(tid) or "(no subject)", "opened": opened.get(tid),
                        "organisations": sum(s["kind"] == "organisation" for s in found),
                        "individuals": sum(s["kind"] == "individual" for s in found),
                        "signers": [{key: s[key] for key in ("kind", "name", "place", "language", "msg_hash",
                                                              "date", "from_name", "from_key")} for s in found]})
    signons.sort(key=lambda item: (-len(item["signers"]), item["subject"]))
    dates = [r["date"] for records in rows.values() for r in records if r["date"] and recent(r)]
    topic = window["topic"]
    return {
        "topic": {key: topic[key] for key in ("slug", "label", "day", "session", "session_title", "bullets")},
        "since": since, "as_of": max(dates) if dates else None,
        "counts": {"threads": window["total_threads"], "messages": sum(t["matching"] for t in window["threads"]),
                   "participants": len(participants), "organisations": len(organisations),
                   "threads_read": len(window["threads"])},
        "threads": active,
        "participants": [{key: p[key] for key in ("key", "name", "organisation", "messages", "last_date")}
                         for p in participants],
        "organisations": [{"name": name, "messages": n, "people": len(members[name])}
                          for name, n in organisations.most_common()],
        "positions": [{key: p[key] for key in ("key", "name", "organisation", "messages", "positions")}
                      for p in participants[:people]],
        "signons": signons,
    }


def _desc(text: str) -> tuple:
    """Sort key putting later ISO dates first."""
    return tuple(-ord(ch) for ch in text)


# --- rendering -------------------------------------------------------------------------------
class Links:
    """Where a briefing's links point: the web front end at `base` (relative when empty)."""

    def __init__(self, base: str = ""):
        self.base = (base or "").rstrip("/")

    def thread(self, thread_id: str) -> str:
        return f"{self.base}/thread/{thread_id}/"

    def message(self, msg_hash: str) -> str:
        return f"{self.base}/message/{msg_hash}/"

    def person(self, key: str) -> str:
        return f"{self.base}/person/{key}/"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _signed(item: dict) -> str:
    """'3 organisations and 1 individual signed'."""
    orgs, people = item["organisations"], item["individuals"]
    return (f"{orgs} organisation{'' if orgs == 1 else 's'} and {people} "
            f"individual{'' if people == 1 else 's'} signed")


def _day(value: str | None) -> str:
    return (value or "")[:10] or "date unknown"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def md(text: str | None) -> str:
    """Escape mail-supplied text for Markdown: one line, addresses masked, markup inert (and
    `<`, `>`, `&` as entities, so a viewer that passes HTML through shows `<script>` as text)."""
    folded = _MD_SPECIAL.sub(r"\\\1", " ".join(mask_text(text).split()))
    return folded.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown(brief: dict, base_url: str = "") -> str:
    """Render a briefing as Markdown."""
    link = Links(base_url)
    topic, counts = brief["topic"], brief["counts"]
    out = [f"# Briefing: {md(topic['label'])}", "",
           f"Day {topic['day']}, session {topic['session']}: {md(topic['session_title'])}  ",
           f"Activity {'since ' + _day(brief['since']) if brief['since'] else 'over the whole archive'}"
           f", up to {_day(brief['as_of'])}: {counts['messages']} messages in {counts['threads']} threads, "
           f"{counts['participants']} participants from {counts['organisations']} organisations.", ""]
    if topic["bullets"]:
        out += ["## The session's points", ""] + [f"- {md(b)}" for b in topic["bullets"]] + [""]
    out += ["## Most active threads", ""]
    for t in brief["threads"]:
        out.append(f"### [{md(t['subject'])}]({link.thread(t['thread_id'])})")
        out.append(f"{t['recent']} of {t['size']} messages in the period, {_day(t['first_date'])} to "
                   f"{_day(t['last_date'])}; {md(', '.join(t['participants']))}"
                   + (f" and {t['more_participants']} more" if t["more_participants"] else "") + ".")
        if t["extract"]:
            e = t["extract"]
            out += ["", f"> {md(e['text'])}", f"> — [{md(e['from_name'])}, {_day(e['date'])}]"
                    f"({link.message(e['msg_hash'])})"]
        out.append("")
    if not brief["threads"]:
        out += ["No thread of this topic in the period.", ""]
    out += ["## Who took part", "", "| Participant | Organisation | Messages | Last |", "| --- | --- | ---: | --- |"]
    out += [f"| [{md(p['name'])}]({link.person(p['key'])}) | {md(p['organisation'] or '')} | {p['messages']} | "
            f"{_day(p['last_date'])} |" for p in brief["participants"]]
    out += ["", "### Organisations", ""]
    out += [f"- {md(o['name'])}: {o['messages']} messages by {o['people']} "
            f"{'person' if o['people'] == 1 else 'people'}" for o in brief["organisations"]] or ["- none named"]
    out += ["", "## Latest positions, in their own words", ""]
    for p in brief["positions"]:
        org = f" ({md(p['organisation'])})" if p["organisation"] else ""
        out.append(f"### [{md(p['name'])}]({link.person(p['key'])}){org}")
        for pos in p["positions"]:
            out.append(f"- [{_day(pos['date'])}, {md(pos['subject'])}]({link.message(pos['msg_hash'])}): "
                       f"{md(pos['text'])}")
        out.append("")
    out += ["## Sign-ons to statements", ""]
    for item in brief["signons"]:
        out.append(f"### [{md(item['subject'])}]({link.thread(item['thread_id'])})")
        out.append(f"Opened {_day(item['opened'])}; {_signed(item)}.")
        out.append("")
        for n, s in enumerate(item["signers"], 1):
            place = f" ({md(s['place'])})" if s["place"] else ""
            kind = "" if s["kind"] == "organisation" else ", individual"
            out.append(f"{n}. [{md(s['name'])}]({link.message(s['msg_hash'])}){place}{kind}")
        out.append("")
    if not brief["signons"]:
        out += ["No statement of this topic collected signatures in the period.", ""]
    return "\n".join(out).rstrip("\n") + "\n"


PRINT_CSS = """body { font: 11pt/1.45 system-ui, sans-serif; color: #1b1b1b; max-width: 48rem; margin: 1rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 1.5rem; border-bottom: 1px solid #d0d0d0; }
h3 { font-size: 1rem; margin: 1rem 0 .2rem; } a { color: #0b4f8a; } .meta { color: #595959; }
blockquote { margin: .3rem 0 .3rem 1rem; padding-left: .6rem; border-left: 3px solid #d0d0d0; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .15rem .4rem; border-bottom: 1px solid #d0d0d0; vertical-align: top; }
td.num, th.num { text-align: right; } .text { overflow-wrap: anywhere; }
@page { size: A4; margin: 18mm 16mm; }
@media print { body { margin: 0; max-width: none; padding: 0; } a { color: inherit; text-decoration: none; }
  h2, h3 { break-after: avoid; } blockquote, tr, li { break-inside: avoid; } }"""


def html_page(brief: dict, base_url: str = "") -> str:
    """Render a briefing as a standalone, printable HTML page (everything from mail escaped)."""
    e = lambda text: html.escape(mask_text(text))  # noqa: E731
    link = Links(base_url)
    topic, counts = brief["topic"], brief["counts"]
    out = ["<!doctype html>", '<html lang="en">', '<head><meta charset="utf-8">',
           f"<title>Briefing: {e(topic['label'])}</title>", f"<style>{PRINT_CSS}</style></head>", "<body>",
           f"<h1>Briefing: {e(topic['label'])}</h1>",
           f"<p class=\"meta\">Day {topic['day']}, session {topic['session']}: {e(topic['session_title'])}<br>"
           f"Activity {'since ' + _day(brief['since']) if brief['since'] else 'over the whole archive'}, up to "
           f"{_day(brief['as_of'])}: {counts['messages']} messages in {counts['threads']} threads, "
           f"{counts['participants']} participants from {counts['organisations']} organisations.</p>"]
    if topic["bullets"]:
        out += ["<h2>The session's points</h2>", "<ul>"] + [f"<li>{e(b)}</li>" for b in topic["bullets"]] + ["</ul>"]
    out.append("<h2>Most active threads</h2>")
    for t in brief["threads"]:
        more = f" and {t['more_participants']} more" if t["more_participants"] else ""
        out.append(f"<h3><a href=\"{e(link.thread(t['thread_id']))}\">{e(t['subject'])}</a></h3>"
                   f"<p class=\"meta\">{t['recent']} of {t['size']} messages in the period, {_day(t['first_date'])} "
                   f"to {_day(t['last_date'])}; {e(', '.join(t['participants']))}{more}.</p>")
        if t["extract"]:
            x = t["extract"]
            out.append(f"<blockquote class=\"text\">{e(x['text'])}<br><span class=\"meta\">— "
                       f"<a href=\"{e(link.message(x['msg_hash']))}\">{e(x['from_name'])}, {_day(x['date'])}</a>"
                       f"</span></blockquote>")
    if not brief["threads"]:
        out.append("<p>No thread of this topic in the period.</p>")
    out += ["<h2>Who took part</h2>", "<table><thead><tr><th>Participant</th><th>Organisation</th>"
            "<th class=\"num\">Messages</th><th>Last</th></tr></thead><tbody>"]
    out += [f"<tr><td><a href=\"{e(link.person(p['key']))}\">{e(p['name'])}</a></td><td>{e(p['organisation'] or '')}"
            f"</td><td class=\"num\">{p['messages']}</td><td>{_day(p['last_date'])}</td></tr>" for p in brief["participants"]]
    out += ["</tbody></table>", "<h3>Organisations</h3>", "<ul>"]
    out += [f"<li>{e(o['name'])}: {o['messages']} messages by {o['people']} "
            f"{'person' if o['people'] == 1 else 'people'}</li>" for o in brief["organisations"]] or ["<li>none named</li>"]
    out += ["</ul>", "<h2>Latest positions, in their own words</h2>"]
    for p in brief["positions"]:
        org = f" <span class=\"meta\">({e(p['organisation'])})</span>" if p["organisation"] else ""
        out.append(f"<h3><a href=\"{e(link.person(p['key']))}\">{e(p['name'])}</a>{org}</h3><ul>")
        out += [f"<li><a href=\"{e(link.message(pos['msg_hash']))}\">{_day(pos['date'])}, {e(pos['subject'])}</a>: "
                f"<span class=\"text\" lang=\"{e(pos['language'] or 'und')}\">{e(pos['text'])}</span></li>"
                for pos in p["positions"]]
        out.append("</ul>")
    out.append("<h2>Sign-ons to statements</h2>")
    for item in brief["signons"]:
        out.append(f"<h3><a href=\"{e(link.thread(item['thread_id']))}\">{e(item['subject'])}</a></h3>"
                   f"<p class=\"meta\">Opened {_day(item['opened'])}; {_signed(item)}.</p><ol>")
        for s in item["signers"]:
            place = f" ({e(s['place'])})" if s["place"] else ""
            kind = "" if s["kind"] == "organisation" else ", individual"
            out.append(f"<li><a href=\"{e(link.message(s['msg_hash']))}\">{e(s['name'])}</a>{place}{kind}</li>")
        out.append("</ol>")
    if not brief["signons"]:
        out.append("<p>No statement of this topic collected signatures in the period.</p>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


RENDERERS = {"md": markdown, "html": html_page}


def render(brief: dict, fmt: str, base_url: str = "") -> str:
    """Render a briefing as `md` or `html`."""
    return RENDERERS[fmt](brief, base_url)


# --- dossiers --------------------------------------------------------------------------------
def dossier(person: dict) -> dict:
    """Return a participant's dossier (from `Archive.person`) without the page's full records:
    their own words by topic in date order, topics per month, threads started, replies
    received, statements signed."""
    topics = []
    for group in person["groups"]:
        said = sorted((m for item in group["threads"] for m in item["messages"]),
                      key=lambda m: (m["date"] or "", m["msg_hash"]))
        topics.append({"slug": group["slug"], "label": group["label"], "messages": [
            {"date": m["date"], "msg_hash": m["msg_hash"], "thread_id": m["thread_id"],
             "subject": display_subject(m["subject"]), "language": m["language"], "own_text": m["own_text"]}
            for m in said]})
    keys = ("key", "name", "names", "address", "organisation", "messages", "first_date", "last_date",
            "topics_over_time", "started", "replies", "signed")
    return {**{key: person[key] for key in keys}, "topics": topics}


def dossier_text(d: dict, per_topic: int = 5) -> str:
    """Render a dossier as plain text for a terminal (addresses in the words masked)."""
    clean = lambda text: " ".join(mask_text(text).split())  # noqa: E731
    out = [f"{clean(d['name'])} <{d['address']}>", f"organisation: {clean(d['organisation'] or '-')}",
           f"messages: {d['messages']}, {_day(d['first_date'])} to {_day(d['last_date'])}"]
    if len(d["names"]) > 1:
        out.append(f"also wrote as: {clean(', '.join(d['names'][1:]))}")
    over = d["topics_over_time"]
    if over["topics"]:
        out += ["", "Messages by topic and month"]
        width = max(len(t["label"]) for t in over["topics"])
        out.append(f"  {'':<{width}}  " + " ".join(f"{m:>7}" for m in over["months"]) + "    total")
        out += [f"  {t['label']:<{width}}  " + " ".join(f"{n or '.':>7}" for n in t["months"]) + f"  {t['total']:>7}"
                for t in over["topics"]]
    out += ["", "Own words by topic (latest first)"]
    for topic in d["topics"]:
        latest = topic["messages"][::-1][:per_topic]
        out.append(f"  {topic['label']} ({_count(len(topic['messages']), 'message')})")
        for m in latest:
            out.append(f"    {_day(m['date'])}  {clean(m['subject'])}  [message {m['msg_hash']}]")
            out.append(f"      {excerpt(m['own_text'], 300) or '(only quoted text)'}")
    started = d["started"]
    out += ["", f"Threads started: {started['total']}"]
    out += [f"  {_day(t['first_date'])}  {clean(display_subject(t['subject']))}  ({_count(t['size'], 'message')})  "
            f"[thread {t['thread_id']}]" for t in started["threads"]]
    replies = d["replies"]
    out += ["", f"Replies received: {replies['total']}"]
    if replies["by"]:
        out.append("  from " + ", ".join(f"{clean(p['name'])} ({p['replies']})" for p in replies["by"][:10]))
    out += [f"  {_day(r['date'])}  {clean(r['from_name'])}: {excerpt(r['excerpt'], 160) or '(only quoted text)'}"
            f"  [message {r['msg_hash']}]" for r in replies["latest"][:10]]
    if d["signed"]:
        out += ["", "Signed"]
        out += [f"  {_day(s['date'])}  {clean(display_subject(s['subject']))}: {clean(s['name'])} "
                f"({s['kind']})  [message {s['msg_hash']}]" for s in d["signed"]]
    return "\n".join(out) + "\n"
