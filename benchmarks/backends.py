"""Measure the two deployments side by side: SQLite with Whoosh, and PostgreSQL as store and search.

On the generator's corpus (100,000 messages by default), each backend ingests all but the
newest 3,000 messages, then those as a new month, then everything again (the no-op), with the
same `archiver ingest` command; then the fixed query set is timed in process, the two
backends' answers are compared (totals, and the overlap of the first ten hits), and thread,
topic and search pages are loaded with wrk against `archiver serve` with several gunicorn
workers. PostgreSQL is the server ARCHIVE_BENCH_POSTGRES_URL names (a user that may create
databases), else a throwaway one started as the tests start theirs but durable as the SQLite
store is (fsync and full-page writes on; commits not waited for on disk, as SQLite's WAL with
synchronous=NORMAL) and with PostgreSQL's default memory (128 MB shared buffers). Prints a
Markdown table and writes JSON.

    .venv/bin/python benchmarks/backends.py --messages 100000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import text  # noqa: E402

from benchmarks import web  # noqa: E402
from benchmarks.ingest import ensure_corpus, plain_months  # noqa: E402
from benchmarks import scale  # noqa: E402
from benchmarks.scale import NEW_MONTH, run_cli, split  # noqa: E402
from benchmarks.search import QUERIES, label, percentile, query_latencies, size_of  # noqa: E402

from archiver.query import Archive  # noqa: E402
from archiver.store import Store  # noqa: E402

BACKENDS = ("sqlite", "postgresql")


def postgres_server():
    """The benchmark's PostgreSQL: ARCHIVE_BENCH_POSTGRES_URL's server, else a throwaway one."""
    from postgres import Server, start

    url = os.environ.get("ARCHIVE_BENCH_POSTGRES_URL")
    # Durable as SQLite is (tests/postgres.start): the tests' server is not.
    return Server(url) if url else start(durable=True)


def ingest_all(data: Path, url: str, base: Path, new: Path, held: int) -> dict:
    os.environ["ARCHIVE_DATABASE_URL"] = url
    try:
        args = ["--data", str(data), "ingest"]
        report, wall, rss, _ = run_cli([*args, str(base), "--list", "bench", "--format", "json"])
        update, new_wall, new_rss, _ = run_cli([*args, str(new), "--list", "bench", "--format", "json"])
        noop, noop_wall, _, _ = run_cli([*args, str(base), str(new), "--list", "bench", "--format", "json"])
    finally:
        del os.environ["ARCHIVE_DATABASE_URL"]
    if update["seen"] != held or noop["stored"] != 0:
        raise SystemExit(f"the update read {update['seen']} of {held}, the no-op stored {noop['stored']}")
    return {"messages": report["seen"] + held, "ingest_msgs_per_s": report["seen"] / wall,
            "index_s": report["seconds"].get("index", 0.0),
            "new_month_s": new_wall, "noop_reingest_s": noop_wall, "peak_rss_mb": max(rss, new_rss)}


def sizes(data: Path, archive: Archive) -> dict:
    engine = archive.engine
    if engine.dialect.name == "sqlite":
        return {"store_bytes": sum(p.stat().st_size for p in data.glob("archive.sqlite3*")),
                "index_bytes": size_of(data / "whoosh")}
    with engine.connect() as conn:
        whole = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        search = conn.execute(text("SELECT pg_total_relation_size('search_docs')")).scalar_one()
    return {"store_bytes": whole - search, "index_bytes": search}


def pages(data: Path, url: str, args) -> dict:
    os.environ["ARCHIVE_DATABASE_URL"] = url   # for the server, which runs `archiver serve`
    try:
        return scale.pages(data, args, workers=args.workers, url=url)
    finally:
        del os.environ["ARCHIVE_DATABASE_URL"]


def agreement(archives: dict[str, Archive]) -> dict:
    """Per query: the totals of both, and how many of Whoosh's first ten PostgreSQL has too."""
    found = {}
    for query, options in QUERIES:
        tops = {name: archive.search_ids(query, limit=10, **options) for name, archive in archives.items()}
        whoosh, postgresql = tops["sqlite"], tops["postgresql"]
        found[label(query, options)] = {
            "totals": [whoosh[0], postgresql[0]],
            "top10_shared": len(set(whoosh[1]) & set(postgresql[1])), "top10": len(whoosh[1])}
    return found


def measure(args) -> dict:
    corpus = ensure_corpus(args.messages, args.work)
    files = plain_months(corpus, args.work)
    raw_bytes = sum(p.stat().st_size for p in files)
    base, new, held = split(files, args.work / f"split-{args.messages}", NEW_MONTH)
    server = postgres_server()
    results: dict[str, dict] = {}
    archives: dict[str, Archive] = {}
    try:
        for backend in BACKENDS:
            data = args.work / f"backends-{backend}-{args.messages}"
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(parents=True)
            url = (f"sqlite:///{data / 'archive.sqlite3'}" if backend == "sqlite"
                   else server.create_database())
            print(f"{backend}: ingesting", file=sys.stderr)
            result = ingest_all(data, url, base, new, held)
            archive = Archive(Store(url), index_dir=data / "whoosh")
            archive.search("kangaroo")   # the searcher opened once, as a server does
            latencies, _ = query_latencies(archive, args.rounds)
            every = [v for values in latencies.values() for v in values]
            result.update(search_ms_median=statistics.median(every), search_ms_p95=percentile(every, 0.95),
                          raw_mbox_bytes=raw_bytes, **sizes(data, archive))
            if args.duration > 0:
                print(f"{backend}: pages under load", file=sys.stderr)
                result["pages"] = pages(data, url, args)
            results[backend] = result
            archives[backend] = archive
        results["agreement"] = agreement(archives)
    finally:
        for archive in archives.values():
            archive.store.close()
        server.close()
    results["settings"] = {"workers": args.workers, "connections": args.connections,
                           "duration_s": args.duration, "rounds": args.rounds}
    return results


ROWS = [
    ("ingest end to end, index included", lambda r: f"{r['ingest_msgs_per_s']:,.0f} msg/s"),
    ("of which indexing", lambda r: f"{r['index_s']:.0f} s"),
    ("new month (3,000 messages)", lambda r: f"{r['new_month_s']:.1f} s"),
    ("no-op re-ingest", lambda r: f"{r['noop_reingest_s']:.1f} s"),
    ("peak memory, largest process (RSS)", lambda r: f"{r['peak_rss_mb']:,.0f} MB"),
    ("search, median / 95th percentile", lambda r: f"{r['search_ms_median']:.0f} / {r['search_ms_p95']:.0f} ms"),
    ("store / raw mbox", lambda r: f"{r['store_bytes'] / r['raw_mbox_bytes']:.2f}"),
    ("search index / raw mbox", lambda r: f"{r['index_bytes'] / r['raw_mbox_bytes']:.2f}"),
]


def print_table(results: dict) -> None:
    print(f"| {results['sqlite']['messages']:,} messages | SQLite + Whoosh | PostgreSQL (store and search) |")
    print("| --- | --- | --- |")
    for name, cell in ROWS:
        print(f"| {name} | {cell(results['sqlite'])} | {cell(results['postgresql'])} |")
    settings = results["settings"]
    for kind in web.KINDS:
        if "pages" not in results["sqlite"]:
            break
        cells = [results[b]["pages"][kind] for b in BACKENDS]
        print(f"| {kind} pages, {settings['workers']} workers, {settings['connections']} connections: "
              "p50 / p95, requests/s, errors | "
              + " | ".join(f"{c['median_ms']:.0f} / {c['p95_ms']:.0f} ms, {c['requests_per_s']:.0f}/s, "
                           f"{c['errors']}" for c in cells) + " |")
    agree = results["agreement"]
    same = sum(a["totals"][0] == a["totals"][1] for a in agree.values())
    shared = [a["top10_shared"] / a["top10"] for a in agree.values() if a["top10"]]
    print(f"\nFixed queries with equal totals: {same} of {len(agree)}; of Whoosh's first ten hits, "
          f"PostgreSQL's first ten hold {100 * statistics.mean(shared):.0f}% on average "
          f"(median {100 * statistics.median(shared):.0f}%).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the 20 queries")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers serving pages")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per page kind (0: none)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "archiver-bench")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "backends-latest.json")
    parser.add_argument("--report", action="store_true", help="print the table of the JSON and stop")
    args = parser.parse_args()
    if args.report:
        print_table(json.loads(args.json.read_text()))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = measure(args)
    results["wall_s"] = time.perf_counter() - started
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


if __name__ == "__main__":
    main()
