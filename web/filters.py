"""Template filters: absolute dates with their zone, masked addresses, people's URL keys."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from markupsafe import Markup, escape

from archiver.ids import person_key


def when(value: str | None, with_time: bool = True) -> str:
    """'2012-11-05T14:03:00Z' -> '2012-11-05 14:03 UTC' (stored dates are UTC)."""
    if not value:
        return "date unknown"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M UTC" if with_time else "%Y-%m-%d")


def mask(address: str | None) -> str:
    """Show an address without giving it to harvesters: 'j…@example.org'."""
    if not address or "@" not in address:
        return address or ""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}…@{domain}"


def who(record: dict) -> str:
    """A sender's display name, never their full address."""
    return record.get("from_name") or mask(record.get("from_address")) or "(unknown sender)"


def paragraphs(text: str | None) -> Markup:
    """Escape mail text and keep its line breaks (the stylesheet keeps spacing)."""
    return Markup(escape(text or "").rstrip())


def register(app: Flask) -> None:
    app.add_template_filter(when)
    app.add_template_filter(mask)
    app.add_template_filter(who)
    app.add_template_filter(paragraphs)
    app.add_template_global(person_key, "person_key")
