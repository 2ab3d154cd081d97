"""The query language people type: checked, bounded, and its dates turned into a range."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .errors import QueryError

MAX_QUERY = 500
FIELDS = ("from", "org", "subject", "topic", "list", "lang", "date", "quoted")
_FIELD = re.compile(r'(?<![\w"])([A-Za-z_]+):')
_EMPTY_FIELD = re.compile(r'(?<![\w"])([A-Za-z_]+):(?=[\s()]|$)')
# date: may stand inside parentheses; its value ends at a space or a parenthesis.
_DATE = re.compile(r'(?<![\w"])date:([^\s()]*)')
_NEGATED_DATE = re.compile(r'(?:\bNOT\s+|(?<![\w"])-)date:')
_DAY = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")


@dataclass(frozen=True)
class Parsed:
    text: str                       # what is left for the full-text parser
    start: datetime | None = None   # dates: start <= date < end (UTC)
    end: datetime | None = None


def prepare(query: str) -> Parsed:
    """Check a query and take its date: terms out; raise QueryError saying what is wrong."""
    # NUL is no character anyone types; a lone surrogate (from bytes that were not UTF-8)
    # cannot be searched for or sent to a database.
    text = (query or "").replace("\x00", " ").strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise QueryError("the query holds characters that are not text: type it again") from None
    if not text:
        raise QueryError("the query is empty: type some words, or a filter such as topic:itu-itrs")
    if len(text) > MAX_QUERY:
        raise QueryError(f"the query is {len(text)} characters long; the limit is {MAX_QUERY}")
    if text.count('"') % 2:
        raise QueryError('a quotation mark is not closed: phrases go "between two marks"')
    outside = re.sub(r'"[^"]*"', " ", text)
    depth = 0
    for ch in outside:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            raise QueryError("a closing parenthesis ')' has no opening one")
    if depth:
        raise QueryError("an opening parenthesis '(' is not closed")
    for name in _FIELD.findall(outside):
        if name.lower() not in FIELDS:
            raise QueryError(f"unknown field '{name}:'; the fields are "
                             + ", ".join(f + ":" for f in FIELDS) + " (put the word in quotes to search it)")
    empty = _EMPTY_FIELD.search(re.sub(r'"[^"]*"', "Q", text))  # a phrase is a value
    if empty and empty.group(1).lower() != "date":
        raise QueryError(f"'{empty.group(1)}:' needs a value right after the colon, such as "
                         f"{empty.group(1).lower()}:word")
    if _NEGATED_DATE.search(outside):
        raise QueryError("date: cannot be negated; give the range you want, such as date:..2012-10")
    # Field names are case-insensitive: FROM:joao is from:joao (outside phrases only).
    text = re.sub(r'"[^"]*"|(?<![\w"])([A-Za-z_]+):',
                  lambda m: m.group(0) if m.group(0).startswith('"') else m.group(1).lower() + ":", text)
    outside = re.sub(r'"[^"]*"', " ", text)
    start = end = None
    for value in _DATE.findall(outside):
        low, high = date_range(value)
        start = max(filter(None, (start, low)), default=None)
        end = min(filter(None, (end, high)), default=None)
    if start and end and start >= end:
        raise QueryError("the dates exclude each other: nothing can match")
    rest = _DATE.sub(" ", text).strip()
    return Parsed(text=rest, start=start, end=end)


def date_range(value: str) -> tuple[datetime | None, datetime | None]:
    """Turn 2012, 2012-11, 2012-11-04, A..B, A.. or ..B into [start, end) in UTC."""
    if ".." in value:
        low, _, high = value.partition("..")
        if not low and not high:
            raise QueryError("date:.. needs at least one end, such as date:2012-10..")
        return (_period(low)[0] if low else None, _period(high)[1] if high else None)
    return _period(value)


def _period(value: str) -> tuple[datetime, datetime]:
    match = _DAY.match(value)
    if not match:
        raise QueryError(f"'{value}' is not a date: use 2012, 2012-11, 2012-11-04 or a range "
                         "such as 2012-10-01..2012-11-15")
    year, month, day = (int(g) if g else None for g in match.groups())
    try:
        if day is not None:
            start = datetime(year, month, day, tzinfo=timezone.utc)
            return start, start + timedelta(days=1)
        if month is not None:
            start = datetime(year, month, 1, tzinfo=timezone.utc)
            nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
            return start, nxt
        return datetime(year, 1, 1, tzinfo=timezone.utc), datetime(year + 1, 1, 1, tzinfo=timezone.utc)
    except ValueError as exc:
        raise QueryError(f"'{value}' is not a date: {exc}") from exc
