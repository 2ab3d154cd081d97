"""Streaming exports: text renderers (jsonl, csv) by format name, mboxrd of the raw bytes, gzip."""

from __future__ import annotations

import csv
import io
import json
import re
import time
import zlib
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator

from .errors import ArchiverError

CSV_FIELDS = ("message_id", "msg_hash", "thread_id", "date", "from_name", "from_address",
              "organisation", "subject", "lists", "topics", "language", "archive_url",
              "own_text", "quoted_text")
_JOINED = ("lists", "topics")   # list-valued fields, ';'-joined in one cell
_QUOTE_FROM = re.compile(rb"^(>*From )", re.MULTILINE)
_NO_DATE = "Thu Jan  1 00:00:00 1970"   # the From_ line needs a date; the epoch says "unknown"


def jsonl(records: Iterable[dict]) -> Iterator[str]:
    """Render one JSON object per line."""
    for record in records:
        yield json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"


def csv_rows(records: Iterable[dict]) -> Iterator[str]:
    """Render a header row, then one row per record (RFC 4180: CRLF, quoted where needed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_FIELDS)
    yield flush()
    for record in records:
        writer.writerow([_cell(record, name) for name in CSV_FIELDS])
        yield flush()


def _cell(record: dict, name: str) -> str:
    value = record.get(name)
    text = ";".join(value or []) if name in _JOINED else "" if value is None else str(value)
    # A cell starting like a formula runs as one in a spreadsheet: mail must not run there.
    return "'" + text if text[:1] in _FORMULA else text


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


RENDERERS: dict[str, Callable[[Iterable[dict]], Iterator[str]]] = {
    "csv": csv_rows,
    "jsonl": jsonl,
}


def render(fmt: str, records: Iterable[dict]) -> Iterator[str]:
    """Return the chunks of an export in a registered format."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ArchiverError(f"unknown export format {fmt!r}; known: {', '.join(sorted(RENDERERS))}")
    return renderer(records)


def from_line(record: dict) -> bytes:
    """Return the mbox separator of a record: 'From <address> <asctime date in UTC>'."""
    # A space would end the address field and an odd byte would break the line, so both go.
    address = "".join(ch for ch in record.get("from_address") or "" if ch.isprintable() and not ch.isspace())
    date = record.get("date")
    if date:
        moment = datetime.fromisoformat(date.replace("Z", "+00:00")).astimezone(timezone.utc)
        stamp = time.asctime(moment.timetuple())   # English names whatever the locale
    else:
        stamp = _NO_DATE
    return f"From {address or 'MAILER-DAEMON'} {stamp}\n".encode("utf-8", "replace")


def mboxrd(items: Iterable[tuple[dict, bytes]]) -> Iterator[bytes]:
    """Yield an mboxrd mailbox of (record, raw bytes) pairs: a From_ line, the bytes with every
    '>*From ' line given one more '>' (so reading strips exactly one), a final newline, a blank line."""
    for record, raw in items:
        body = _QUOTE_FROM.sub(rb">\1", raw)
        if not body.endswith(b"\n"):
            body += b"\n"
        yield from_line(record) + body + b"\n"


def gzip_stream(chunks: Iterable[bytes], level: int = 6) -> Iterator[bytes]:
    """Yield a gzip file of a stream of bytes as it is produced (wbits=31: gzip header and trailer)."""
    packer = zlib.compressobj(level, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = packer.compress(chunk)
        if out:   # zlib keeps small inputs until it has a block worth sending
            yield out
    yield packer.flush()
