"""Research exports: a scope's records, opt-outs left out, pseudonymised on request, streamed in
a format, with a manifest beside them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from . import manifest as mf
from .errors import ArchiverError
from .export import csv_table, mboxrd, render, write_parquet
from .ids import person_key
from .pseudonym import Names, Pseudonymiser, name_map

FORMATS = ("csv", "edges", "jsonl", "mbox", "parquet")
FILE_ONLY = ("edges", "parquet")
SCOPES = ("list", "thread", "topic", "person", "query")
CHUNK = 500          # records looked up together (parents, thread participants, sources)
EDGE_FIELDS = ("replier", "replied_to", "message", "thread", "date")
NODE_FIELDS = ("participant", "name", "organisation", "messages")
_BOUND = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_KEY = re.compile(r"^[a-z2-7]{16}$")


@dataclass(frozen=True)
class Scope:
    """What an export holds: everything, or one list, thread, topic, person or query; then only
    messages sent from `since` (a day, month or year) to `until` (inclusive)."""
    kind: str = "all"
    value: str | None = None
    since: str | None = None
    until: str | None = None


def date_bound(value: str, *, end: bool) -> datetime:
    """Return the UTC start of a YYYY, YYYY-MM or YYYY-MM-DD period, or (end) of the next one."""
    match = _BOUND.match(value.strip())
    try:
        if not match:
            raise ValueError
        year, month, day = (int(g) if g else None for g in match.groups())
        start = datetime(year, month or 1, day or 1)
    except ValueError:
        raise ArchiverError(f"{value!r} is not a date: write YYYY-MM-DD, YYYY-MM or YYYY") from None
    if not end:
        return start
    if day:
        return start + timedelta(days=1)
    if month:
        return datetime(year + (month == 12), month % 12 + 1, 1)
    return datetime(year + 1, 1, 1)


def resolve(archive, scope: Scope) -> Iterator[dict]:
    """Check a scope (a clear ArchiverError for an unknown list, thread, topic or person, a bad
    date or query) and return its records in date order, streamed."""
    since = date_bound(scope.since, end=False) if scope.since else None
    until = date_bound(scope.until, end=True) if scope.until else None
    if since and until and since >= until:
        raise ArchiverError(f"--since {scope.since} is after --until {scope.until}")
    kind, value = scope.kind, scope.value
    if kind != "all" and not (value or "").strip():
        raise ArchiverError(f"--{kind} must not be empty")
    if kind == "all":
        return archive.scoped_records(since=since, until=until)
    if kind == "list":
        if not archive.list_exists(value):
            known = ", ".join(item["name"] for item in archive.lists()) or "none"
            raise ArchiverError(f"no list named {value!r} (lists: {known})")
        return archive.scoped_records(list_name=value, since=since, until=until)
    if kind == "thread":
        if archive.thread_summary(value) is None:
            raise ArchiverError(f"no thread has the id {value!r} (a thread id is the hash in its "
                                f"/thread/<id>/ address)")
        return archive.scoped_records(thread_id=value, since=since, until=until)
    if kind == "topic":
        labels = archive.topic_labels()
        if value not in labels:
            raise ArchiverError(f"the agenda has no topic {value!r} (topics: {', '.join(labels)})")
        return archive.scoped_records(topic=value, since=since, until=until)
    if kind == "person":
        key = value if _KEY.match(value) else person_key(value) if "@" in value else None
        if key is None:
            raise ArchiverError(f"--person takes an address (or the key in a /person/<key>/ "
                                f"address), not {value!r}")
        probe = archive.scoped_records(from_key=key)
        found = next(probe, None)
        probe.close()   # release its connection now, not at garbage collection
        if found is None:
            raise ArchiverError(f"no messages from {value!r} in this archive")
        return archive.scoped_records(from_key=key, since=since, until=until)
    if kind == "query":
        total, _ = archive.search_ids(value, limit=1, sort="oldest")
        _, ids = archive.search_ids(value, limit=max(total, 1), sort="oldest")
        return _by_ids(archive, ids, since, until)
    raise ArchiverError(f"unknown scope {kind!r}; scopes: {', '.join(SCOPES)}")


def _by_ids(archive, ids: list[str], since, until) -> Iterator[dict]:
    low = _iso(since) if since else None
    high = _iso(until) if until else None
    for start in range(0, len(ids), CHUNK):
        for record in archive.records(ids[start:start + CHUNK]):
            date = record.get("date")
            if (low or high) and not date:
                continue
            if (low and date < low) or (high and date >= high):
                continue
            yield record


def _iso(value: datetime) -> str:
    return value.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")


def check(fmt: str, output, pseudonymised: bool) -> None:
    """Refuse a format that cannot be written as asked, before any work is done."""
    if fmt in FILE_ONLY and output is None:
        what = "a folder for edges.csv and nodes.csv" if fmt == "edges" else "a file"
        raise ArchiverError(f"--format {fmt} cannot go to standard output: give -o with {what}")
    if fmt == "mbox" and pseudonymised:
        raise ArchiverError("an mbox export carries each message's original bytes, so it cannot "
                            "be pseudonymised (headers, encoded parts and attachments would all "
                            "need rewriting, and a missed one leaks); use jsonl, csv or parquet")


def export(archive, scope: Scope, fmt: str, output: str | Path | None = None, *,
           stream: BinaryIO | None = None, pseudonymiser: Pseudonymiser | None = None,
           opt_out: frozenset[str] = frozenset(), manifest: str | Path | None = None) -> dict:
    """Export a scope in a format to `output` (a file; a folder for `edges`) or to `stream`,
    and write the manifest beside it (`<file>.manifest.json`, `<folder>/manifest.json`, or the
    `manifest` path given). Return the manifest."""
    if fmt not in FORMATS:
        raise ArchiverError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
    if output is not None and str(output) == "-":
        output = None
    check(fmt, output, pseudonymiser is not None)
    records = resolve(archive, scope)
    out = Path(output) if output is not None else None
    if out is not None and fmt == "edges":
        if out.exists() and not out.is_dir():
            raise ArchiverError(f"{out.name} is a file: --format edges writes a folder")
        out.mkdir(parents=True, exist_ok=True)
    elif out is not None and out.is_dir():
        raise ArchiverError(f"{out} is a folder: give a file name")
    elif out is not None and not out.parent.is_dir():
        raise ArchiverError(f"the folder {out.parent} does not exist")
    tally = mf.Tally()
    items = _prepared(archive, records, tally, pseudonymiser, opt_out, fmt)
    sinks: list[mf.Sink] = []
    try:
        extra = _write(archive, fmt, items, out, stream, sinks, tally, pseudonymiser, opt_out)
    except BaseException as exc:
        for sink in sinks:
            sink.abort()
        if isinstance(exc, OSError):
            raise ArchiverError(f"cannot write the export: {exc}") from exc
        raise
    for sink in sinks:
        sink.finish()
    where = Path(manifest) if manifest else (out / "manifest.json" if fmt == "edges" else
                                             out.with_name(out.name + ".manifest.json") if out else None)
    data = _manifest(scope, fmt, tally, sinks, where, pseudonymiser, opt_out, extra)
    if where is not None:
        mf.write(where, data)
    return data


def _prepared(archive, records: Iterable[dict], tally: mf.Tally, pseudonymiser, opt_out,
              fmt: str) -> Iterator[tuple]:
    """Yield (record as exported, original record, parent's (address, name) or None), in chunks:
    opt-outs dropped (and, but in mbox's original bytes, the quotes of replies to them),
    sources read for the manifest, then pseudonymised when asked."""
    for chunk in _chunks(records, CHUNK):
        kept = []
        for record in chunk:
            if (record.get("from_address") or "").lower() in opt_out:
                tally.left_out += 1
            else:
                kept.append(record)
        if not kept:
            continue
        tally.add_sources(archive.source_rows([r["message_id"] for r in kept]))
        parents = archive.senders(sorted({r["parent_id"] for r in kept if r.get("parent_id")}))
        people = archive.thread_senders(sorted({r["thread_id"] for r in kept if r.get("thread_id")})) \
            if pseudonymiser else {}
        names: dict[str, Names] = {}
        for record in kept:
            original = record
            record = dict(record, organisation=_organisation(archive, record.get("from_address"), pseudonymiser))
            parent = parents.get(record.get("parent_id"))
            if parent and parent[0].lower() in opt_out and fmt != "mbox":
                # A reply quotes mostly the message it answers: an opted-out author's words go too.
                record["quoted_text"] = ""
                tally.quotes_dropped += 1
            if pseudonymiser:
                tid = record.get("thread_id")
                if not tid:   # not threaded yet (an interrupted ingest): the sender and parent only
                    mask = name_map([(record.get("from_address"), record.get("from_name"))]
                                    + ([parent] if parent else []), pseudonymiser.person)
                elif tid in names:
                    mask = names[tid]
                else:
                    mask = names[tid] = name_map(people.get(tid, []), pseudonymiser.person)
                record = pseudonymiser.record(record, mask)
            tally.add(record)
            yield record, original, parent


def _organisation(archive, address: str | None, pseudonymiser) -> str | None:
    org = archive.organisations.of(address or "")
    # Pseudonymised: a bare mail domain (no name in the organisations file) may be a person's own.
    if pseudonymiser and org == (address or "").rpartition("@")[2].lower():
        return None
    return org


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write(archive, fmt, items, out, stream, sinks, tally, pseudonymiser, opt_out) -> dict:
    if fmt == "edges":
        edges, nodes = mf.Sink(out / "edges.csv"), mf.Sink(out / "nodes.csv")
        sinks += [edges, nodes]
        return _graph(archive, items, edges, nodes, pseudonymiser, opt_out)
    sink = mf.Sink(out, stream, by_name=fmt == "parquet")
    sinks.append(sink)
    if fmt == "parquet":
        write_parquet((record for record, _, _ in items), str(sink.part))
        sink.seal()
    elif fmt == "mbox":
        def pairs():
            for record, _, _ in items:
                raw = archive.raw(record["message_id"])
                if raw is None:   # bytes gone (store under repair): left out, counted, not faked
                    tally.missing_raw += 1
                    continue
                yield record, raw
        for chunk in mboxrd(pairs()):
            sink.write(chunk)
    else:
        for text in render(fmt, (record for record, _, _ in items)):
            sink.write(text.encode("utf-8"))
    return {}


def _graph(archive, items, edges: mf.Sink, nodes: mf.Sink, pseudonymiser, opt_out) -> dict:
    """Write the reply graph: an edge per reply whose parent is stored (and not opted out), a
    node per participant with their message count in the export."""
    people: dict[str, list] = {}     # participant -> [name, organisation, messages]
    count = 0

    def node(address: str, name: str) -> str:
        key = pseudonymiser.person(address) if pseudonymiser else address.lower()
        if key not in people:
            people[key] = ["" if pseudonymiser else name or "",
                           _organisation(archive, address, pseudonymiser), 0]
        return key

    def rows() -> Iterator[dict]:
        nonlocal count
        for record, original, parent in items:
            me = node(original.get("from_address") or "", original.get("from_name") or "")
            people[me][2] += 1
            if parent is None or parent[0].lower() in opt_out:
                continue
            count += 1
            yield {"replier": me, "replied_to": node(*parent), "message": record["message_id"],
                   "thread": record["thread_id"], "date": record.get("date")}

    for text in csv_table(EDGE_FIELDS, rows()):
        edges.write(text.encode("utf-8"))
    order = sorted(people.items(), key=lambda kv: (-kv[1][2], kv[0]))
    table = ({"participant": k, "name": v[0], "organisation": v[1], "messages": v[2]} for k, v in order)
    for text in csv_table(NODE_FIELDS, table):
        nodes.write(text.encode("utf-8"))
    return {"edges": count, "nodes": len(people)}


def _manifest(scope: Scope, fmt: str, tally: mf.Tally, sinks, where: Path | None, pseudonymiser,
              opt_out, extra: dict) -> dict:
    value = scope.value
    if pseudonymiser and scope.kind == "person" and value:
        value = pseudonymiser.person(value) if "@" in value else "(a participant's key)"
    elif pseudonymiser and scope.kind == "thread" and value:
        value = pseudonymiser.ident(value, "t")
    base = where.parent if where is not None else None
    return {
        "manifest_version": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "software": {"name": mf.PACKAGE, "version": mf.version()},
        "scope": {"kind": scope.kind, "value": value,
                  "query": scope.value if scope.kind == "query" else None,
                  "since": scope.since, "until": scope.until,
                  "from_utc": _iso(date_bound(scope.since, end=False)) if scope.since else None,
                  "before_utc": _iso(date_bound(scope.until, end=True)) if scope.until else None},
        "format": fmt,
        "pseudonymised": {"method": "HMAC-SHA256", "salt_check": pseudonymiser.check()} if pseudonymiser else None,
        "opt_out": {"addresses": len(opt_out), "messages_left_out": tally.left_out} if opt_out else None,
        "counts": {**tally.counts(), **extra},
        "sources": tally.source_list(),
        "files": [sink.entry(base) for sink in sinks],
        "codebook": mf.codebook(fmt, pseudonymiser is not None),
    }
