"""Measure page latency of the web app under concurrent load on the generator's corpus."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from http.client import HTTPConnection, HTTPException
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import ensure_corpus, run_ingest  # noqa: E402
from benchmarks.search import QUERIES, percentile  # noqa: E402

from archiver import schema  # noqa: E402
from archiver.index import SearchIndex  # noqa: E402
from archiver.query import Archive  # noqa: E402
from archiver.store import Store  # noqa: E402

AIMS_MS = {"thread": 50, "search": 150}      # 95th percentile aims of the web issue
KINDS = ("thread", "topic", "list", "search")
# Browsers ask for gzip, and the app compresses pages: measure that work too.
HEADERS = {"Accept-Encoding": "gzip", "User-Agent": "archiver-bench"}
WRK_SCRIPT = """
local paths = {%(paths)s}
local threads = {}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  -- Each wrk thread starts at its own place in the rotation: no lockstep on one page.
  n = id * 7
  bad = 0
  wrk.headers["Accept-Encoding"] = "gzip"
end
function request()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local non2xx = 0
  for _, t in ipairs(threads) do non2xx = non2xx + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "non2xx": %%d, "socket_errors": %%d, ' ..
    '"median_us": %%d, "p95_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, non2xx, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency.max))
end
"""


# --- the archive to serve --------------------------------------------------------------------
def usable(data: Path, corpus: Path) -> bool:
    """A data directory that holds this corpus, fully ingested and indexed, in this schema."""
    db = data / "archive.sqlite3"
    if not db.exists() or not (data / "whoosh").is_dir():
        return False
    try:
        # Read-only and without the Store: opening an old store with it would add tables.
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            version = conn.execute("select value from meta where key = 'schema_version'").fetchone()
            messages = conn.execute("select count(*) from messages").fetchone()[0]
            ends = conn.execute("select location from sources where id in "
                                "((select min(id) from sources), (select max(id) from sources))").fetchall()
    except sqlite3.Error:
        return False
    if not version or version[0] != str(schema.SCHEMA_VERSION) or not messages or not ends:
        return False
    # Sources name the mbox files they came from (symlinks included): both ends in this corpus.
    inside = all(Path(loc.partition("#")[0]).resolve().is_relative_to(corpus.resolve()) for loc, in ends)
    return inside and SearchIndex(data / "whoosh").doc_count() == messages


def ingested(corpus: Path, work: Path) -> Path:
    """Reuse a data directory that another benchmark left (ingest.py's data-0, search.py's
    search-data) or this one's own; else ingest the corpus once, as ingest.py does."""
    own = work / f"web-data-{corpus.name.removeprefix('corpus-')}"
    for data in (own, work / "data-0", work / "search-data"):
        # Checked each time: a schema change since the last run makes a directory unusable.
        if (data != own or (own / ".complete").exists()) and usable(data, corpus):
            return data
    shutil.rmtree(own, ignore_errors=True)
    print(f"ingesting {corpus} into {own} (once; later runs reuse it)", file=sys.stderr)
    run_ingest(corpus, own)
    (own / ".complete").touch()
    return own


def page_paths(data: Path, threads: int, seed: int, url: str | None = None) -> tuple[dict[str, list[str]], int]:
    """Return the paths of each kind of page, and the archive's message count (the store is
    the data directory's SQLite file unless url names another)."""
    store = Store(url or f"sqlite:///{data / 'archive.sqlite3'}")
    try:
        archive = Archive(store)
        listed = archive.threads(limit=max(threads * 20, 500))["threads"]
        chosen = random.Random(seed).sample(listed, min(threads, len(listed)))
        messages = archive.stats()["messages"]
        paths = {
            "thread": [f"/thread/{t['thread_id']}/" for t in chosen],
            "topic": [f"/topic/{t['slug']}/" for t in archive.topics()],
            # A list's first ten pages of threads, latest activity first.
            "list": [f"/list/{item['name']}/?page={page}" for item in archive.lists() for page in range(1, 11)],
            "search": [search_path(text, options) for text, options in QUERIES],
        }
    finally:
        store.close()
    return paths, messages


def search_path(text: str, options: dict) -> str:
    params = {"q": text, **{k: ("1" if v is True else v) for k, v in options.items()}}
    return "/search?" + urllib.parse.urlencode(params)


# --- the server ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data: Path, port: int, workers: int, threads: int, log: Path) -> subprocess.Popen:
    """Serve the app as users do, with `archiver serve` (gunicorn), in a child process."""
    command = [sys.executable, "-c", "from web.cli import main; main()", "--data", str(data), "serve",
               "--port", str(port), "--workers", str(workers), "--threads", str(threads)]
    with log.open("wb") as out:
        # The load comes from one client: the per-client rate limits would refuse most of it.
        env = {**os.environ, "ARCHIVE_SEARCH_RATE": "10000000 per minute",
               "ARCHIVE_EXPORT_RATE": "10000000 per minute"}
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        try:
            get(port, "/")
            return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the server did not answer within 120 s")


def get(port: int, path: str, conn: HTTPConnection | None = None) -> int:
    """One GET, body read to the end; returns the status."""
    own = conn is None
    conn = conn or HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=HEADERS)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        if own:
            conn.close()


def warm_up(port: int, paths: dict[str, list[str]], connections: int) -> list[str]:
    """Fetch every page once (each server thread opens its own searcher on first use);
    return the pages that did not answer 2xx, for the report."""
    def status(path: str) -> str:
        try:
            return str(get(port, path))
        except (OSError, HTTPException) as exc:
            return type(exc).__name__

    every = [p for kind in paths.values() for p in kind] * 2
    with ThreadPoolExecutor(connections) as pool:
        found = list(pool.map(lambda p: (p, status(p)), every))
    return sorted({f"{code} {path}" for path, code in found if not code.startswith("2")})


# --- the load --------------------------------------------------------------------------------
def wrk_load(port: int, paths: list[str], connections: int, duration: float, work: Path) -> dict:
    """Drive the pages with wrk (a Lua script rotates the paths); return the measures."""
    script = work / "web-bench.lua"
    # Paths are percent-encoded ASCII, so a JSON string is also a Lua one (LuaJIT has no \u).
    script.write_text(WRK_SCRIPT % {"paths": ", ".join(json.dumps(p) for p in paths if p.isascii())})
    out = subprocess.run(["wrk", "-t", str(min(connections, 2)), "-c", str(connections),
                          "-d", f"{max(1, round(duration))}s", "--timeout", "10s", "-s", str(script),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    found = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT ")).split(" ", 1)[1])
    return {"requests": found["requests"], "non2xx": found["non2xx"],
            "socket_errors": found["socket_errors"], "seconds": found["duration_us"] / 1e6,
            "median_ms": found["median_us"] / 1000, "p95_ms": found["p95_us"] / 1000,
            "max_ms": found["max_us"] / 1000}


def python_load(port: int, paths: list[str], connections: int, duration: float) -> dict:
    """The fallback client, run in its own process: one keep-alive connection per thread,
    each rotating through the paths from its own place."""
    def worker(offset: int) -> tuple[list[float], int, int]:
        times, non2xx, errors = [], 0, 0
        conn = HTTPConnection("127.0.0.1", port, timeout=10)
        n, deadline = offset * 7, time.monotonic() + duration
        while time.monotonic() < deadline:
            n += 1
            started = time.perf_counter()
            try:
                status = get(port, paths[n % len(paths)], conn)
            except (OSError, HTTPException):
                errors += 1
                conn.close()
                conn = HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            times.append((time.perf_counter() - started) * 1000)
            non2xx += not 200 <= status < 300
        conn.close()
        return times, non2xx, errors

    started = time.monotonic()
    with ThreadPoolExecutor(connections) as pool:
        results = list(pool.map(worker, range(connections)))
    seconds = time.monotonic() - started
    times = [t for r in results for t in r[0]]
    return {"requests": len(times), "non2xx": sum(r[1] for r in results),
            "socket_errors": sum(r[2] for r in results), "seconds": seconds,
            "median_ms": statistics.median(times) if times else 0.0,
            "p95_ms": percentile(times, 0.95) if times else 0.0, "max_ms": max(times, default=0.0)}


def measure(client: str, port: int, paths: list[str], connections: int, duration: float,
            work: Path) -> dict:
    if client == "wrk":
        found = wrk_load(port, paths, connections, duration, work)
    else:
        # A separate process: the client's own GIL must not slow the measured server.
        with ProcessPoolExecutor(1) as pool:
            found = pool.submit(python_load, port, paths, connections, duration).result()
    found["errors"] = found["non2xx"] + found["socket_errors"]
    found["requests_per_s"] = found["requests"] / found["seconds"] if found["seconds"] else 0.0
    found["pages"] = len(paths)
    return found


# --- the report ------------------------------------------------------------------------------
def verdict(kind: str, found: dict) -> str:
    aim = AIMS_MS.get(kind)
    notes = [] if aim is None else [f"p95 < {aim} ms: {'met' if found['p95_ms'] < aim else 'missed'}"]
    notes.append("no errors: " + ("met" if not found["errors"] else "missed"))
    return "; ".join(notes)


def print_table(result: dict) -> None:
    print(f"| page ({result['messages']:,} messages; {result['connections']} connections to "
          f"{result['workers']} server processes x {result['server_threads']} threads, "
          f"{result['duration_s']:g} s each, {result['client']}) | pages | requests | errors | "
          f"median | 95th percentile | requests/s | aim |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind, found in result["kinds"].items():
        print(f"| {kind} | {found['pages']} | {found['requests']:,} | {found['errors']} "
              f"({found['non2xx']} non-2xx, {found['socket_errors']} socket) | "
              f"{found['median_ms']:.0f} ms | {found['p95_ms']:.0f} ms | {found['requests_per_s']:.1f} | "
              f"{verdict(kind, found)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=20, help="seconds of load per kind of page")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=0, help="server processes (0: one per core)")
    parser.add_argument("--server-threads", type=int, default=2, help="threads per server process")
    parser.add_argument("--threads", type=int, default=50, help="random thread pages to rotate")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated: " + ", ".join(KINDS))
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "archiver-bench")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "web-latest.json")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    if not kinds or set(kinds) - set(KINDS):
        parser.error(f"--kinds takes some of {', '.join(KINDS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    client = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "python")
    data = ingested(ensure_corpus(args.messages, args.work), args.work)
    paths, messages = page_paths(data, args.threads, args.seed)
    port = free_port()
    server = start_server(data, port, args.workers, args.server_threads, args.work / "web-server.log")
    try:
        failing = warm_up(port, {k: paths[k] for k in kinds}, args.connections)
        results = {k: measure(client, port, paths[k], args.connections, args.duration, args.work)
                   for k in kinds}
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = {"messages": messages, "data_dir": data.name, "client": client,
              "connections": args.connections, "workers": args.workers or os.cpu_count(),
              "server_threads": args.server_threads,
              "duration_s": args.duration, "aims_p95_ms": AIMS_MS, "warm_up_failures": failing,
              "kinds": results}
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    for line in failing[:10]:
        print(f"warning: during warm-up, {line}", file=sys.stderr)


if __name__ == "__main__":
    main()
