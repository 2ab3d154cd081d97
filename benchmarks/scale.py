"""Measure the archive at several sizes side by side: ingest, a new month, a no-op re-ingest,
search and page latency, memory and sizes, beside the stdlib parse ceiling.

For each size the generator's corpus is decompressed to plain month files. Its newest 3,000
messages are held out; the rest is ingested (the index is built as the ingest's last step),
then the held-out messages as one new month, then everything again (nothing new: the no-op).
Search is timed in process on the fixed query set; pages are loaded with wrk (or a Python
client) against `archiver serve`. Prints a Markdown table and writes JSON.

    .venv/bin/python benchmarks/scale.py --sizes 10000,100000 --repeat 3
    .venv/bin/python benchmarks/scale.py --sizes 1000000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import mailbox
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import ceiling, ensure_corpus, plain_months  # noqa: E402
from benchmarks.search import percentile, query_latencies, size_of  # noqa: E402
from benchmarks import web  # noqa: E402

from archiver.query import Archive  # noqa: E402
from archiver.store import Store  # noqa: E402

NEW_MONTH = 3000
# A pipermail or mbox From_ line that starts a message (not a "From " inside a body).
FROM_LINE = re.compile(rb"From \S.* \d\d:\d\d:\d\d \d{4}\r?\n")
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


# --- the corpus, split --------------------------------------------------------------------
def month_key(path: Path) -> tuple[int, int, str]:
    """Order plain month files (named list-YYYY-Month.txt) by their month."""
    found = re.search(r"(\d{4})-([A-Z][a-z]+)\.txt$", path.name)
    return (int(found[1]), MONTHS.index(found[2]), path.name) if found else (0, 0, path.name)


def split(files: list[Path], where: Path, hold: int) -> tuple[Path, Path, int]:
    """Write base/ (every message but the newest `hold`) and new/ (those), as month files;
    return both folders and the number held out. Cut only at a real From_ line."""
    base, new = where / "base", where / "new"
    if (where / ".complete").exists():
        return base, new, int((where / ".complete").read_text())
    shutil.rmtree(where, ignore_errors=True)
    base.mkdir(parents=True)
    new.mkdir()
    left, held = hold, 0
    for path in sorted(files, key=month_key, reverse=True):
        data = path.read_bytes()
        cut = len(data)
        if left > 0:
            box = mailbox.mbox(str(path), create=False)
            box._generate_toc()   # the stdlib's own message boundaries
            starts = sorted(start for start, _ in box._toc.values()
                            if FROM_LINE.match(data, start))
            box.close()
            taken = starts[-left:] if left < len(starts) else starts
            cut = taken[0] if taken else cut
            left -= len(taken)
            held += len(taken)
            if cut < len(data):
                (new / path.name).write_bytes(data[cut:])
        if cut:
            (base / path.name).write_bytes(data[:cut])
    (where / ".complete").write_text(str(held))
    return base, new, held


# --- running the CLI, with its memory watched ----------------------------------------------
def _tree(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                text = Path(f"/proc/{current}/task/{task}/children").read_text()
                stack.extend(int(c) for c in text.split())
        except OSError:
            continue
    return found


def _kb(pid: int, file: str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class MemoryWatch:
    """Sample a process tree every 0.2 s until stopped: the largest single process's peak
    resident set (its VmHWM) and the peak of the tree's summed proportional set size (PSS:
    pages a forked worker shares count once), both in MB."""

    def __init__(self, pid: int):
        self.pid, self.rss, self.pss, self.anon = pid, 0, 0, 0
        self.at_peak: list[int] = []                      # each process's PSS at the tree's peak, MB
        self.timeline: list[tuple[float, list[int]]] = []  # every 5 s: seconds, each process's PSS
        self.running = True
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        started, noted = time.perf_counter(), -5.0
        while self.running and Path(f"/proc/{self.pid}").exists():
            tree = _tree(self.pid)
            self.rss = max([self.rss] + [_kb(p, "status", "VmHWM:") for p in tree])
            each = [_kb(p, "smaps_rollup", "Pss:") for p in tree]
            if sum(each) > self.pss:
                self.pss, self.at_peak = sum(each), [kb // 1024 for kb in each]
            # Anonymous memory only: what the processes hold of their own, without the pages
            # of files they map (the search index), which are the system's file cache.
            self.anon = max(self.anon, sum(_kb(p, "smaps_rollup", "Pss_Anon:") for p in tree))
            now = time.perf_counter() - started
            if now - noted >= 5:
                self.timeline.append((round(now, 1), [kb // 1024 for kb in each]))
                noted = now
            time.sleep(0.2)

    def stop(self) -> tuple[float, float]:
        self.running = False
        self.thread.join()
        return self.rss / 1024, self.pss / 1024


def run_cli(args: list[str]) -> tuple[dict | None, float, float, float]:
    """Run `archiver ARGS`; return its JSON report, wall seconds, and its MemoryWatch peaks."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "archiver.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE)
    watch = MemoryWatch(proc.pid)
    out, _ = proc.communicate()
    wall = time.perf_counter() - started
    rss, pss = watch.stop()
    if proc.returncode != 0:
        raise SystemExit(f"archiver {' '.join(args)} failed with exit code {proc.returncode}")
    try:
        report = json.loads(out)
    except ValueError:   # a command without a JSON report
        report = {"output": out.decode(errors="replace")}
    # Where the memory was: the main process first, then its workers or index builders.
    report["memory"] = {"at_peak_pss_mb": watch.at_peak, "timeline_pss_mb": watch.timeline,
                        "anon_pss_mb": watch.anon / 1024}
    return report, wall, rss, pss


def ingest(data: Path, sources: list[Path]) -> tuple[dict, float, float, float]:
    return run_cli(["--data", str(data), "ingest", *map(str, sources), "--list", "bench",
                    "--format", "json"])


# --- one size -------------------------------------------------------------------------------
def measure_size(size: int, args) -> dict:
    corpus = ensure_corpus(size, args.work)
    files = plain_months(corpus, args.work)
    raw_bytes = sum(p.stat().st_size for p in files)
    base, new, held = split(files, args.work / f"split-{size}", NEW_MONTH)
    runs = []
    for i in range(args.repeat):
        # Ceiling and ingest interleaved: machine noise falls on both alike.
        count, seconds = ceiling(files)
        data = args.work / f"scale-data-{size}-{i}"
        shutil.rmtree(data, ignore_errors=True)
        report, wall, rss, pss = ingest(data, [base])
        update, new_wall, new_rss, new_pss = ingest(data, [new])
        noop, noop_wall, noop_rss, noop_pss = ingest(data, [base, new])
        if update["seen"] != held or noop["stored"] != 0:
            raise SystemExit(f"the update read {update['seen']} of {held} messages, the no-op stored {noop['stored']}")
        # Memory is the largest over the three ingests: an update must fit too.
        phases = {name: {"rss_mb": r, "pss_mb": p, **out["memory"]} for name, r, p, out in (
            ("ingest", rss, pss, report), ("update", new_rss, new_pss, update), ("noop", noop_rss, noop_pss, noop))}
        rss, pss = max(rss, new_rss, noop_rss), max(pss, new_pss, noop_pss)
        runs.append({"ceiling": count / seconds, "ingest": report["seen"] / wall, "report": report,
                     "rss_mb": rss, "pss_mb": pss, "phases": phases,
                     "new_month_s": new_wall, "noop_s": noop_wall,
                     "store_bytes": sum(p.stat().st_size for p in data.glob("archive.sqlite3*")),
                     "index_bytes": size_of(data / "whoosh"), "data": data})
    middle = sorted(runs, key=lambda r: r["ingest"])[len(runs) // 2]
    data = middle["data"]
    for run in runs:   # keep one data directory per size: the median run's
        if run["data"] != data:
            shutil.rmtree(run["data"], ignore_errors=True)
    report = middle["report"]
    result = {
        "messages": report["seen"] + held, "raw_mbox_bytes": raw_bytes, "runs": args.repeat,
        "stdlib_ceiling_msgs_per_s": statistics.median(r["ceiling"] for r in runs),
        "ingest_msgs_per_s": statistics.median(r["ingest"] for r in runs),
        "stage_msgs_per_s": {k: report["seen"] / v for k, v in report["seconds"].items() if v},
        "new_month_messages": held,
        "new_month_s": statistics.median(r["new_month_s"] for r in runs),
        "noop_reingest_s": statistics.median(r["noop_s"] for r in runs),
        "peak_rss_mb": max(r["rss_mb"] for r in runs),
        "peak_pss_mb": max(r["pss_mb"] for r in runs),
        # per ingest of the run kept: the largest process's RSS, the tree's PSS, and where it was
        "phase_memory": middle["phases"],
        "store_bytes": middle["store_bytes"], "index_bytes": middle["index_bytes"],
        "data": data.name,   # under --work: the JSON names no path of the machine it ran on
    }
    result["ratio_to_ceiling"] = result["ingest_msgs_per_s"] / result["stdlib_ceiling_msgs_per_s"]
    result["store_and_index_to_raw"] = (result["store_bytes"] + result["index_bytes"]) / raw_bytes
    result.update(search(data, args.rounds))
    if args.duration > 0:
        result["pages"] = pages(data, args)
    return result


def remeasure(size: int, args) -> dict:
    """Measure again what reads an ingested size (its median run's data directory, kept): an
    index rebuild as `archiver reindex` (rate, memory; a first ingest builds the same way),
    search and pages. For a change that leaves ingest alone, without ingesting again."""
    previous = json.loads(args.json.read_text())[str(size)]
    data = args.work / previous["data"]
    output, wall, rss, pss = run_cli(["--data", str(data), "reindex"])
    indexed = int(re.search(r"indexed (\d+)", output["output"])[1])
    result = {**previous, "reindex_msgs_per_s": indexed / wall,
              "reindex_peak_rss_mb": rss, "reindex_peak_pss_mb": pss,
              "index_bytes": size_of(data / "whoosh")}
    result["store_and_index_to_raw"] = (result["store_bytes"] + result["index_bytes"]) / result["raw_mbox_bytes"]
    result.update(search(data, args.rounds))
    if args.duration > 0:
        result["pages"] = pages(data, args)
    result["remeasured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return result


def search(data: Path, rounds: int) -> dict:
    store = Store(f"sqlite:///{data / 'archive.sqlite3'}")
    try:
        archive = Archive(store, index_dir=data / "whoosh")
        archive.search("kangaroo")   # opening the index once, as a server does
        latencies, _ = query_latencies(archive, rounds)
    finally:
        store.close()
    every = [v for values in latencies.values() for v in values]
    return {"search_ms_median": statistics.median(every), "search_ms_p95": percentile(every, 0.95)}


def pages(data: Path, args, workers: int = 0, url: str | None = None) -> dict:
    """Load thread, topic, list and search pages with wrk against `archiver serve` (workers 0: one
    per core) over the data directory, or over the store at url (which the server is given)."""
    client = "wrk" if shutil.which("wrk") else "python"
    paths, _ = web.page_paths(data, 50, 1, url=url)
    port = web.free_port()
    server = web.start_server(data, port, workers, 2, args.work / "scale-server.log")
    watch = MemoryWatch(server.pid)
    try:
        web.warm_up(port, paths, args.connections)
        found = {kind: web.measure(client, port, paths[kind], args.connections, args.duration, args.work)
                 for kind in web.KINDS}
        found["server_peak_rss_mb"], found["server_peak_pss_mb"] = watch.stop()
        found["server_peak_anon_pss_mb"] = watch.anon / 1024
        return found
    finally:
        watch.stop()
        server.terminate()
        server.wait(timeout=30)


# --- the report -----------------------------------------------------------------------------
ROWS = [
    ("ingest runs (median)", lambda r: f"{r['runs']}"),
    ("stdlib mailbox + compat32 parse (ceiling)", lambda r: f"{r['stdlib_ceiling_msgs_per_s']:,.0f} msg/s"),
    ("ingest end to end, index included", lambda r: f"{r['ingest_msgs_per_s']:,.0f} msg/s"),
    ("ratio to the ceiling", lambda r: f"{r['ratio_to_ceiling']:.3f}"),
    ("new month ({n} messages)", lambda r: f"{r['new_month_s']:.1f} s"),
    ("no-op re-ingest", lambda r: f"{r['noop_reingest_s']:.1f} s"),
    ("peak memory: largest process (RSS)", lambda r: f"{r['peak_rss_mb']:,.0f} MB"),
    ("peak memory: all processes (PSS)", lambda r: f"{r['peak_pss_mb']:,.0f} MB"),
    ("peak memory (RSS / PSS): first ingest, update, no-op", lambda r: ", ".join(
        f"{m['rss_mb']:,.0f} / {m['pss_mb']:,.0f} MB" for m in r["phase_memory"].values()) if "phase_memory" in r else "-"),
    ("PSS of each process at the first ingest's peak (main first)", lambda r: " + ".join(
        f"{mb}" for mb in r["phase_memory"]["ingest"]["at_peak_pss_mb"]) + " MB" if "phase_memory" in r else "-"),
    ("peak memory (RSS / PSS / anonymous PSS): web server under load", lambda r:
     f"{r['pages']['server_peak_rss_mb']:,.0f} / {r['pages']['server_peak_pss_mb']:,.0f} / "
     f"{r['pages'].get('server_peak_anon_pss_mb', 0):,.0f} MB" if "server_peak_pss_mb" in r.get("pages", {}) else "-"),
    ("store / raw mbox", lambda r: f"{r['store_bytes'] / r['raw_mbox_bytes']:.2f}"),
    ("index / raw mbox", lambda r: f"{r['index_bytes'] / r['raw_mbox_bytes']:.2f}"),
    ("store + index / raw mbox", lambda r: f"{r['store_and_index_to_raw']:.2f}"),
    ("`archiver reindex` (remeasured)", lambda r: f"{r['reindex_msgs_per_s']:,.0f} msg/s, "
     f"{r['reindex_peak_rss_mb']:,.0f} MB / {r['reindex_peak_pss_mb']:,.0f} MB" if "reindex_msgs_per_s" in r else "-"),
    ("search, median / 95th percentile", lambda r: f"{r['search_ms_median']:.0f} / {r['search_ms_p95']:.0f} ms"),
]


def print_table(results: dict[int, dict]) -> None:
    sizes = list(results)
    print("| measure | " + " | ".join(f"{results[n]['messages']:,} messages" for n in sizes) + " |")
    print("| --- |" + " --- |" * len(sizes))
    for name, show in ROWS:
        cells = [show(results[n]) for n in sizes]
        if set(cells) != {"-"}:   # a measure no size has (reindex, unless remeasured) says nothing
            print(f"| {name.format(n=NEW_MONTH)} | " + " | ".join(cells) + " |")
    stages = sorted({s for n in sizes for s in results[n]["stage_msgs_per_s"]})
    for stage in stages:
        print(f"| stage `{stage}` alone | " + " | ".join(
            f"{results[n]['stage_msgs_per_s'].get(stage, 0):,.0f} msg/s" for n in sizes) + " |")
    for kind in web.KINDS:
        if all(kind in results[n].get("pages", {}) for n in sizes):
            print(f"| {kind} page under load, median / 95th percentile | " + " | ".join(
                f"{results[n]['pages'][kind]['median_ms']:.0f} / {results[n]['pages'][kind]['p95_ms']:.0f} ms"
                f" ({results[n]['pages'][kind]['errors']} errors)" for n in sizes) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated corpus sizes")
    parser.add_argument("--repeat", type=int, default=3, help="ingest runs per size (median)")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the 20 queries")
    parser.add_argument("--duration", type=float, default=20, help="seconds of page load per kind (0: none)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "archiver-bench")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "scale-latest.json")
    parser.add_argument("--remeasure", action="store_true",
                        help="ingest nothing: rebuild the index of each size's kept data directory "
                             "and measure search and pages again (ingest figures are kept)")
    parser.add_argument("--report", action="store_true",
                        help="measure nothing: print the table of every size in the JSON file")
    args = parser.parse_args()
    if args.repeat % 2 == 0:
        parser.error("--repeat must be odd: the median run's figures and data directory are kept")
    if args.report:
        stored = json.loads(args.json.read_text())
        print_table({int(n): r for n, r in sorted(stored.items(), key=lambda kv: int(kv[0]))})
        return
    args.work.mkdir(parents=True, exist_ok=True)
    sizes = sorted(int(n) for n in args.sizes.split(","))
    results = {}
    for size in sizes:
        results[size] = remeasure(size, args) if args.remeasure else measure_size(size, args)
        print(f"size {size:,} done", file=sys.stderr)
    previous = json.loads(args.json.read_text()) if args.json.exists() else {}
    previous.update({str(n): r for n, r in results.items()})
    args.json.write_text(json.dumps(previous, indent=2) + "\n")
    print_table(results)


if __name__ == "__main__":
    main()
