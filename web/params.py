"""Request parameters checked once: a bad value is a 400 page that says what is wrong."""

from __future__ import annotations

from flask import abort, request

MAX_PAGE = 10_000


def page_number(name: str = "page") -> int:
    return bounded_int(name, 1, 1, MAX_PAGE)


def bounded_int(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        abort(400, description=f"{name} must be a whole number from {low} to {high}, not {raw[:40]!r}.")
    return int(raw)


def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = request.args.get(name, "").strip() or default
    if value not in allowed:
        abort(400, description=f"{name} must be one of {', '.join(allowed)}, not {value[:40]!r}.")
    return value


def pages_of(total: int, per_page: int, page: int) -> int:
    """Return how many pages `total` items make; a page past the last is a 400."""
    pages = max(1, -(-total // per_page))
    if page > pages:
        abort(400, description=f"Page {page} is past the last page ({pages}).")
    return pages
