"""Streaming exports: record fields and their codebook; jsonl, csv (formula-safe), Parquet in row
groups, mboxrd of the raw bytes, gzip; citation renderers."""

from __future__ import annotations

import csv
import io
import json
import re
import time
import zlib
from datetime import datetime, timezone
from typing import BinaryIO, Callable, Iterable, Iterator

from .cite import CITATIONS, citation  # noqa: F401  (the web and the CLI cite through here)
from .errors import ArchiverError

# The exported record, in column order: (name, type, meaning). JSON Lines carries the records as
# they are; CSV flattens lists ('strings': ';'-joined; attachments and sources: JSON text);
# Parquet keeps the types.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("message_id", "string", "Message-ID header, without angle brackets (made from the raw bytes' hash when missing)"),
    ("msg_hash", "string", "permalink id: base32 SHA-1 of the Message-ID (/message/<msg_hash>/)"),
    ("synthetic_id", "bool", "true when the message had no Message-ID and the archive made one"),
    ("lists", "strings", "mailing lists the message was posted to"),
    ("date", "timestamp", "sending date, UTC (ISO 8601 in JSON and CSV)"),
    ("date_offset_minutes", "int", "the sender's UTC offset in minutes, from the Date header"),
    ("from_name", "string", "sender's display name"),
    ("from_address", "string", "sender's address"),
    ("organisation", "string", "sender's organisation, from the mail domain (fixtures/organisations.toml)"),
    ("subject", "string", "Subject header, decoded"),
    ("subject_norm", "string", "subject without Re:/Fwd: prefixes and list tags"),
    ("thread_id", "string", "thread id: msg_hash of the thread's root (/thread/<thread_id>/)"),
    ("parent_id", "string", "Message-ID of the message this one replies to (empty for a root)"),
    ("depth", "int", "depth in the thread tree (0 for the root)"),
    ("in_reply_to", "string", "In-Reply-To header's Message-ID"),
    ("references", "strings", "References header's Message-IDs, oldest first"),
    ("own_text", "string", "the sender's own words: the body without quotes, signature and list footer"),
    ("quoted_text", "string", "text quoted from earlier messages"),
    ("signature", "string", "the sender's signature block"),
    ("footer", "string", "the list's footer appended by Mailman"),
    ("content_type", "string", "MIME type of the part the text was read from"),
    ("charset", "string", "charset the text was decoded with"),
    ("language", "string", "ISO 639-1 language of the own words (py3langid)"),
    ("topics", "strings", "agenda topics the own words are tagged with (fixtures/topics.toml), best first"),
    ("attachments", "attachments", "attachments: filename, content type, size in bytes, URL of a scrubbed part"),
    ("archive_url", "string", "original archive URL of the message (the pipermail page)"),
    ("raw_sha256", "string", "SHA-256 of the original bytes (the mbox export carries those bytes)"),
    ("sources", "sources", "where the message was read: list, kind, location as given to ingest (file#byte offset, or URL), archive URL"),
    ("degraded", "strings", "repairs made while reading (e.g. charset-guessed)"),
)
CSV_FIELDS = tuple(name for name, _, _ in FIELDS)
_JOINED = {name for name, kind, _ in FIELDS if kind == "strings"}   # ';'-joined in one cell
_AS_JSON = {name for name, kind, _ in FIELDS if kind in ("attachments", "sources")}
_QUOTE_FROM = re.compile(rb"^(>*From )", re.MULTILINE)
_NO_DATE = "Thu Jan  1 00:00:00 1970"   # the From_ line needs a date; the epoch says "unknown"


def jsonl(records: Iterable[dict]) -> Iterator[str]:
    """Render one JSON object per line."""
    for record in records:
        yield json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"


def csv_rows(records: Iterable[dict]) -> Iterator[str]:
    """Render a header row, then one row per record (RFC 4180: CRLF, quoted where needed)."""
    return csv_table(CSV_FIELDS, records)


def csv_table(fields: Iterable[str], rows: Iterable[dict]) -> Iterator[str]:
    """Render a header and one formula-safe row per dict, streamed row by row."""
    fields = tuple(fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(fields)
    yield flush()
    for row in rows:
        writer.writerow([_cell(row, name) for name in fields])
        yield flush()


def _cell(record: dict, name: str) -> str:
    value = record.get(name)
    if name in _JOINED:
        text = ";".join(value or [])
    elif name in _AS_JSON:
        text = json.dumps(value or [], ensure_ascii=False, separators=(",", ":"))
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = "" if value is None else str(value)
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


ROW_GROUP = 2000     # records per Parquet row group: what the writer holds in memory at once


def arrow_schema():
    """Return the Parquet schema of the record (pyarrow is imported only by Parquet exports)."""
    import pyarrow as pa

    text = pa.string()
    types = {"string": text, "bool": pa.bool_(), "int": pa.int32(),
             "timestamp": pa.timestamp("ms", tz="UTC"), "strings": pa.list_(text),
             "attachments": pa.list_(pa.struct([("filename", text), ("content_type", text),
                                                ("size", pa.int64()), ("url", text)])),
             "sources": pa.list_(pa.struct([("list", text), ("kind", text), ("location", text),
                                            ("archive_url", text)]))}
    return pa.schema([(name, types[kind]) for name, kind, _ in FIELDS])


def write_parquet(records: Iterable[dict], where: str | BinaryIO, row_group: int = ROW_GROUP) -> int:
    """Write records to a Parquet file one row group at a time; return how many were written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema()
    count = 0
    with pq.ParquetWriter(where, schema, compression="zstd") as writer:
        batch: list[dict] = []
        for record in records:
            batch.append(_arrow_row(record))
            if len(batch) >= row_group:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count += len(batch)
                batch = []
        if batch or not count:   # an empty export is still a readable file with the schema
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count


def _arrow_row(record: dict) -> dict:
    row = {name: record.get(name) for name in CSV_FIELDS}
    if row["date"]:
        row["date"] = datetime.fromisoformat(row["date"].replace("Z", "+00:00"))
    for name in _JOINED | _AS_JSON:
        row[name] = row[name] or []
    return row
