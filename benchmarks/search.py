"""Measure index build, incremental indexing and search latency on the generator's corpus.

From scratch (the default): ingest the corpus's `bestbits` list but for its last month (the
index is built as the ingest's last step), then that month (an incremental update), then
rebuild the index as `archiver reindex` does, and search.

With --data DIR: reuse a data directory that already holds the corpus, ingested (such as
benchmarks/web.py's web-data-100000, all of the corpus's lists): rebuild its index as
`archiver reindex` does (which also brings an index of an older format up to date), re-index
its newest month incrementally (each message replaced), and search. Saves the five minutes
of parsing an ingest takes; the index build rate is then the rebuild's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from benchmarks.ingest import ensure_corpus, plain_months  # noqa: E402

from archiver import schema as s  # noqa: E402
from archiver.errors import QueryError  # noqa: E402
from archiver.pipeline import ingest, rebuild_index  # noqa: E402
from archiver.query import Archive  # noqa: E402
from archiver.store import Store  # noqa: E402

# Twenty queries of the kinds people type: single words, phrases, a very common word,
# author plus word, date ranges, topic and list filters, quoted text, sorting, prefixes.
QUERIES = [
    ("wcit", {}), ("visa", {}), ('"national delegations"', {}), ('"enhanced cooperation"', {}),
    ("the", {}), ("civil society", {}), ("from:joao statement", {}), ("from:priya principles", {}),
    ("date:2013-01..2013-06 itrs", {}), ("date:2014 hotel", {}), ("topic:itu-itrs", {}),
    ("topic:logistics visa", {}), ("list:governance caucus", {}), ('quoted:"Marco Civil"', {}),
    ("wcit", {"sort": "newest"}), ("declaração", {}), ("coopération renforcée", {}),
    ("polic*", {}), ("(visa OR hotel) AND NOT dubai", {}), ("statement", {"by_thread": True}),
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def label(text: str, options: dict) -> str:
    return text + "".join(f" [{k}={v}]" for k, v in options.items())


def from_scratch(corpus: Path, work: Path) -> tuple[Path, dict]:
    """Ingest bestbits but its last month, then that month; return the data dir and figures."""
    months = sorted((corpus / "bestbits").glob("*.txt*"))
    last, rest = months[-1], months[:-1]
    data = work / "search-data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    rest_dir = data / "source"
    rest_dir.mkdir()
    for month in rest:
        (rest_dir / month.name).symlink_to(month)
    store = Store(f"sqlite:///{data / 'archive.sqlite3'}")
    archive = Archive(store, index_dir=data / "whoosh")
    report = ingest(store, [str(rest_dir)], "bestbits", archive=archive)
    started = time.perf_counter()
    month_report = ingest(store, [str(last)], "bestbits", archive=archive)
    store.close()
    raw = [p for p in plain_months(corpus, work) if p.name.startswith("bestbits-")]
    return data, {
        "index_build_msgs_per_s": report.indexed / report.timings["index"],
        "incremental": "one new month ingested and indexed",
        "incremental_month_messages": month_report.seen,
        "incremental_month_s": time.perf_counter() - started,
        "raw_mbox_bytes": sum(p.stat().st_size for p in raw),
    }


def reindex_last_month(archive: Archive) -> tuple[int, float]:
    """Re-index the newest month's messages (each one replaced); return (messages, seconds)."""
    m = s.messages.c
    with archive.engine.connect() as conn:
        newest = conn.execute(select(func.max(m.date))).scalar_one()
        first = newest.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        ids = list(conn.execute(select(m.message_id).where(m.date >= first).order_by(m.id)).scalars())
    started = time.perf_counter()
    count = archive.index.update(archive.records(ids))
    return count, time.perf_counter() - started


def query_latencies(archive: Archive, rounds: int) -> tuple[dict[str, list[float]], dict]:
    """Run the fixed queries rounds times; return each one's latencies (ms) and match count."""
    latencies: dict[str, list[float]] = {label(q, o): [] for q, o in QUERIES}
    totals: dict[str, int | str] = {}
    for _ in range(rounds):
        for text, options in QUERIES:
            started = time.perf_counter()
            try:
                found = archive.search(text, **options)
                totals[label(text, options)] = found["total"]
            except QueryError as exc:
                totals[label(text, options)] = f"error: {exc}"
            latencies[label(text, options)].append((time.perf_counter() - started) * 1000)
    return latencies, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the 20 queries")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "archiver-bench")
    parser.add_argument("--data", type=Path, default=None,
                        help="reuse this ingested data directory (its index is rebuilt in place)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "search-latest.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    corpus = ensure_corpus(args.messages, args.work)
    if args.data is None:
        data, figures = from_scratch(corpus, args.work)
    else:
        data = args.data
        if not (data / "archive.sqlite3").exists():
            raise SystemExit(f"{data} holds no archive.sqlite3: ingest the corpus there first")
        figures = {"index_build_msgs_per_s": None,
                   "raw_mbox_bytes": sum(p.stat().st_size for p in plain_months(corpus, args.work))}
    store = Store(f"sqlite:///{data / 'archive.sqlite3'}")
    archive = Archive(store, index_dir=data / "whoosh")
    started = time.perf_counter()
    rebuilt = rebuild_index(archive)
    rebuild_rate = rebuilt / (time.perf_counter() - started)
    if args.data is not None:
        count, seconds = reindex_last_month(archive)
        figures.update(incremental="newest month re-indexed (each message replaced)",
                       incremental_month_messages=count, incremental_month_s=seconds)
    index_bytes = size_of(data / "whoosh")

    # The first search opens the index and reads its columns (once per commit, in a server).
    started = time.perf_counter()
    archive.search("kangaroo")
    first_ms = (time.perf_counter() - started) * 1000
    latencies, totals = query_latencies(archive, args.rounds)
    every = [v for values in latencies.values() for v in values]
    raw_bytes = figures["raw_mbox_bytes"]
    result = {
        "data": data.name, "messages": rebuilt, **figures, "index_bytes": index_bytes,
        "index_to_raw": index_bytes / raw_bytes, "rebuild_msgs_per_s": rebuild_rate,
        "first_search_ms": first_ms,
        "search_ms_median": statistics.median(every), "search_ms_p95": percentile(every, 0.95),
        "per_query_ms_median": {q: statistics.median(v) for q, v in latencies.items()},
        "per_query_total": totals,
    }
    args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"| measure ({rebuilt:,} messages, {data}) | value |")
    print("| --- | --- |")
    if figures["index_build_msgs_per_s"] is not None:
        print(f"| index build during ingest | {figures['index_build_msgs_per_s']:,.0f} msg/s |")
    print(f"| `archiver reindex` (rebuild) | {rebuild_rate:,.0f} msg/s |")
    print(f"| {figures['incremental']} ({figures['incremental_month_messages']:,} messages) | "
          f"{figures['incremental_month_s']:.1f} s |")
    print(f"| index size / raw mbox size | {index_bytes / raw_bytes:.2f} "
          f"({index_bytes / 1e6:.0f} MB / {raw_bytes / 1e6:.0f} MB) |")
    print(f"| first search after opening the index | {first_ms:.0f} ms |")
    print(f"| search latency, {len(QUERIES)} queries x {args.rounds}: median / 95th percentile | "
          f"{result['search_ms_median']:.0f} ms / {result['search_ms_p95']:.0f} ms |")
    print()
    print("| query | median ms | matches |")
    print("| --- | --- | --- |")
    for query, values in sorted(latencies.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"| `{query}` | {statistics.median(values):.1f} | {totals[query]} |")
    store.close()


if __name__ == "__main__":
    main()
