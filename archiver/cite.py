"""Citations of a message or a thread: BibTeX and CSL-JSON, with permalink and original archive URL."""

from __future__ import annotations

import json
import re

_SAFE_URL = re.compile(r"^https?://[^\s{}\\<>\"]+$", re.IGNORECASE)
_KEY = re.compile(r"[^A-Za-z0-9-]")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# BibTeX specials, escaped so a subject like '50% & {more}' cannot end a field early.
_TEX = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "%": r"\%", "&": r"\&", "$": r"\$",
        "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def message_item(record: dict, base_url: str) -> dict:
    """Return what a citation of a message says, from its record."""
    lists = record.get("lists") or []
    return {"id": _key(lists, record.get("date"), record["msg_hash"]), "kind": "message",
            "title": record.get("subject") or "(no subject)", "author": _who(record), "others": 0,
            "date": record.get("date"), "lists": lists,
            "url": f"{base_url.rstrip('/')}/message/{record['msg_hash']}/",
            "archive_url": _original(record), "message_id": record.get("message_id")}


def thread_item(summary: dict, opening: dict, base_url: str) -> dict:
    """Return what a citation of a thread says: its summary and its opening message's record."""
    people = len(summary.get("participants") or [])
    return {"id": _key(summary.get("lists") or [], summary.get("first_date"), summary["thread_id"]),
            "kind": "thread", "title": summary.get("subject") or "(no subject)",
            "author": _who(opening), "others": max(0, people - 1),
            "date": summary.get("first_date"), "last_date": summary.get("last_date"),
            "lists": summary.get("lists") or [], "messages": summary.get("size"),
            "url": f"{base_url.rstrip('/')}/thread/{summary['thread_id']}/",
            "archive_url": _original(opening), "message_id": opening.get("message_id")}


def bibtex(item: dict) -> str:
    """Render a citation as a BibTeX @misc entry (biblatex reads its `date` and `url` too)."""
    fields = [("author", "{" + _tex(item["author"]) + "}" + (" and others" if item["others"] else "")),
              ("title", "{" + _tex(item["title"]) + "}"),
              ("howpublished", _tex(_published(item)))]
    date = item.get("date") or ""
    if date:
        fields += [("year", date[:4]), ("month", _MONTHS[int(date[5:7]) - 1]), ("date", date[:10])]
    if _SAFE_URL.match(item["url"]):
        fields.append(("url", item["url"]))
    fields.append(("note", _tex_note(item)))
    lines = [f"@misc{{{item['id']},"]
    for name, value in fields:
        lines.append(f"  {name} = {value}," if name == "month" else f"  {name} = {{{value}}},")
    return "\n".join(lines) + "\n}\n"


def csl_json(item: dict) -> str:
    """Render a citation as CSL-JSON (a list of one item), as Zotero and citeproc read it."""
    entry: dict = {"id": item["id"], "type": "post", "title": item["title"],
                   "author": [{"literal": item["author"]}],
                   "container-title": _container(item),
                   "genre": "Mailing list message" if item["kind"] == "message" else "Mailing list thread",
                   "URL": item["url"], "note": _note(item)}
    date = item.get("date")
    if date:
        entry["issued"] = {"date-parts": [[int(date[:4]), int(date[5:7]), int(date[8:10])]]}
    if item.get("archive_url"):
        entry["archive"] = _container(item) + " archive"
        entry["archive_location"] = item["archive_url"]
    entry["custom"] = {"original_url": item.get("archive_url"), "message_id": item.get("message_id")}
    return json.dumps([entry], ensure_ascii=False, indent=2) + "\n"


def _key(lists: list[str], date: str | None, ident: str) -> str:
    return _KEY.sub("", (lists[0] if lists else "list")) + (date or "")[:4] + "-" + ident[:8]


def _who(record: dict) -> str:
    """The sender's name; never their full address (pages mask it the same way)."""
    name = " ".join((record.get("from_name") or "").split())
    if name:
        return name
    local, _, domain = (record.get("from_address") or "").rpartition("@")
    return f"{local[:1]}…@{domain}" if local else "(unknown sender)"


def _original(record: dict) -> str | None:
    urls = [record.get("archive_url")] + [s.get("archive_url") for s in record.get("sources") or []]
    return next((u for u in urls if u and _SAFE_URL.match(u)), None)


def _container(item: dict) -> str:
    return " and ".join(item["lists"] or ["(unknown)"]) + (" mailing list" if len(item["lists"]) <= 1
                                                           else " mailing lists")


def _published(item: dict) -> str:
    where = _container(item)
    if item["kind"] == "message":
        return f"Message to the {where}"
    people = item["others"] + 1
    return (f"Thread of {item['messages']} message{'s' * (item['messages'] != 1)} by {people} "
            f"participant{'s' * (people != 1)} on the {where}, {(item['date'] or '')[:10]} to "
            f"{(item.get('last_date') or '')[:10]}")


def _note(item: dict) -> str:
    parts = [f"Original archive: {item['archive_url']}."] if item.get("archive_url") else []
    if item.get("message_id"):
        what = "Message-ID" if item["kind"] == "message" else "Opening message's Message-ID"
        parts.append(f"{what}: <{item['message_id']}>.")
    return " ".join(parts)


def _tex_note(item: dict) -> str:
    parts = []
    if item.get("archive_url"):
        # \url in another command's argument needs % and # escaped (url package).
        url = item["archive_url"].replace("%", r"\%").replace("#", r"\#")
        parts.append(f"Original archive: \\url{{{url}}}.")
    if item.get("message_id"):
        what = "Message-ID" if item["kind"] == "message" else "Opening message's Message-ID"
        parts.append(f"{what}: \\texttt{{<{_tex(item['message_id'])}>}}.")
    return " ".join(parts)


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in " ".join(text.split()))


# Citation formats by name (the CLI and the web offer these).
CITATIONS = {"bibtex": bibtex, "csl-json": csl_json}


def citation(archive, fmt: str, base_url: str, *, msg_hash: str | None = None,
             thread_id: str | None = None) -> str | None:
    """Return a message (by permalink hash) or a thread cited in a format ('bibtex' or
    'csl-json'); None when the archive has no such message or thread."""
    render = CITATIONS[fmt]
    if msg_hash is not None:
        found = archive.message(msg_hash)
        return None if found is None or "redacted" in found else render(message_item(found["message"], base_url))
    summary = archive.thread_summary(thread_id)
    opening = archive.thread_records(thread_id, 1) if summary else []
    return render(thread_item(summary, opening[0], base_url)) if opening else None
