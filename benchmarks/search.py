"""Measure index build, incremental indexing and search latency on the generator's corpus."""

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

from benchmarks.ingest import ensure_corpus, plain_months  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the 20 queries")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "archiver-bench")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "search-latest.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    corpus = ensure_corpus(args.messages, args.work)
    raw_bytes = sum(p.stat().st_size for p in plain_months(corpus, args.work))
    months = sorted((corpus / "bestbits").glob("*.txt*"))
    last, rest = months[-1], months[:-1]
    data = args.work / "search-data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    rest_dir = data / "source"
    rest_dir.mkdir()
    for month in rest:
        (rest_dir / month.name).symlink_to(month)
    store = Store(f"sqlite:///{data / 'archive.sqlite3'}")
    archive = Archive(store, index_dir=data / "whoosh")

    report = ingest(store, [str(rest_dir)], "bestbits", archive=archive)
    build_rate = report.indexed / report.timings["index"]
    started = time.perf_counter()
    month_report = ingest(store, [str(last)], "bestbits", archive=archive)
    incremental = time.perf_counter() - started
    started = time.perf_counter()
    rebuilt = rebuild_index(archive)
    rebuild_rate = rebuilt / (time.perf_counter() - started)
    index_bytes = size_of(data / "whoosh")

    latencies: dict[str, list[float]] = {q: [] for q, _ in QUERIES}
    totals: dict[str, int] = {}
    for _ in range(args.rounds):
        for text, options in QUERIES:
            started = time.perf_counter()
            try:
                found = archive.search(text, **options)
                totals[text] = found["total"]
            except QueryError as exc:
                totals[text] = f"error: {exc}"
            latencies[text].append((time.perf_counter() - started) * 1000)
    every = [v for values in latencies.values() for v in values]
    result = {
        "messages": rebuilt, "raw_mbox_bytes": raw_bytes, "index_bytes": index_bytes,
        "index_build_msgs_per_s": build_rate, "rebuild_msgs_per_s": rebuild_rate,
        "incremental_month_messages": month_report.seen, "incremental_month_s": incremental,
        "search_ms_median": statistics.median(every), "search_ms_p95": percentile(every, 0.95),
        "per_query_ms_median": {q: statistics.median(v) for q, v in latencies.items()},
        "per_query_total": totals,
    }
    args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"| measure ({rebuilt:,} messages) | value |")
    print("| --- | --- |")
    print(f"| index build during ingest | {build_rate:,.0f} msg/s |")
    print(f"| `archiver reindex` (rebuild) | {rebuild_rate:,.0f} msg/s |")
    print(f"| one new month ({month_report.seen:,} messages) ingested and indexed | {incremental:.1f} s |")
    print(f"| index size / raw mbox size | {index_bytes / raw_bytes:.2f} |")
    print(f"| search latency, {len(QUERIES)} queries x {args.rounds}: median / 95th percentile | "
          f"{result['search_ms_median']:.0f} ms / {result['search_ms_p95']:.0f} ms |")
    store.close()


if __name__ == "__main__":
    main()
