"""Template filters: absolute dates with their zone, masked addresses, people's URL keys."""

from __future__ import annotations

import re
from datetime import datetime

from flask import Flask
from markupsafe import Markup, escape

from archiver.ids import person_key
from archiver.masking import mask, mask_text


def when(value: str | None, with_time: bool = True) -> str:
    """'2012-11-05T14:03:00Z' -> '2012-11-05 14:03 UTC' (stored dates are UTC)."""
    if not value:
        return "date unknown"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M UTC" if with_time else "%Y-%m-%d")


def who(record: dict) -> str:
    """A sender's display name, never their full address."""
    return record.get("from_name") or mask(record.get("from_address")) or "(unknown sender)"


def paragraphs(text: str | None) -> Markup:
    """Escape mail text, mask addresses in it, keep its line breaks (the stylesheet keeps spacing)."""
    return Markup(mask_text(str(escape(text or ""))).rstrip())


def unfooted(quoted: str | None, footer: str | None) -> str:
    """Quoted text without the list footer it ends with (a reply quotes the footer of the
    message it answers; on a page of that list it is noise)."""
    lines = (quoted or "").rstrip().split("\n")
    wanted = [l.strip() for l in (footer or "").strip().split("\n") if l.strip()]
    if wanted:
        tail = [l.lstrip("> ").strip() for l in lines[-len(wanted):]]
        if tail == wanted:
            lines = lines[:-len(wanted)]
            while lines and lines[-1].lstrip("> ").strip() == "":
                lines.pop()
    return "\n".join(lines).strip("\n")


def snippet(html: str) -> Markup:
    """A search snippet is HTML the index escaped and marked; addresses in it are masked."""
    return Markup(mask_text(html))


def http_url(value: str | None) -> str | None:
    """Only http(s) links taken from mail or a mirror are drawn; `javascript:` and others are not."""
    return value if value and re.match(r"(?i)^https?://[^\s<>\"]+$", value) else None


def register(app: Flask) -> None:
    app.add_template_filter(when)
    app.add_template_filter(mask)
    app.add_template_filter(who)
    app.add_template_filter(paragraphs)
    app.add_template_filter(snippet)
    app.add_template_filter(unfooted)
    app.add_template_filter(http_url)
    app.add_template_global(person_key, "person_key")
