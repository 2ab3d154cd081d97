"""Concurrency: searches and page views run while an ingest (a real `archiver ingest` process)
commits, and while `archiver reindex` swaps a new index in. No request fails, and readers see
the archive before or after a commit, never half of one:

- a search's total is the one before the ingest or the one after it (the index is updated in
  one commit), and every hit has its record;
- message counts (of the archive, of each list) never go down;
- a thread page lists as many messages as its summary says it has (read in one snapshot), and
  a thread that was merged into another between listing and reading answers 404 (documented:
  "no thread"), never an error;
- during a reindex, every search total stays what it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest

from archiver.query import Archive, open_store
from conftest import BACKENDS, make_app, private_copy

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = 2000
QUERIES = ("internet", "governance delegations", "visa OR travel", "topic:itu-itrs", "list:bestbits")


def archiver_cmd(data: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", "from web.cli import main; main()", "--data", str(data), *args]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A generated corpus of two lists, made once for both databases' runs."""
    corpus = tmp_path_factory.mktemp("concurrency") / "corpus"
    subprocess.run([sys.executable, str(ROOT / "fixtures" / "generate.py"), "--messages",
                    str(MESSAGES), "--out", str(corpus), "--no-html"], check=True,
                   stdout=subprocess.DEVNULL, cwd=ROOT)
    return corpus


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory, build_archive) -> tuple[Path, Path, str]:
    """A corpus, a data directory and a store (SQLite, then PostgreSQL) holding its governance
    list with its index; the tests ingest its bestbits list (about 1,900 messages) while they
    read."""
    data = tmp_path_factory.mktemp("data")
    return corpus, data, build_archive(data, [("governance", [corpus / "governance"])])


class Reader:
    """Reads the archive over and over through the web app (and the facade), recording what
    failed and what each read saw."""

    def __init__(self, data: Path, url: str):
        self.app = make_app(data, url)
        self.client = self.app.test_client()
        self.store = open_store(data, url)
        self.archive = Archive(self.store, index_dir=data / "whoosh")
        self.failures: list[str] = []
        self.totals: dict[str, list[int]] = {q: [] for q in QUERIES}
        self.messages: list[int] = []
        self.lists: list[dict[str, int]] = []
        self.requests = 0
        self.rounds = 0
        self.thread_checks = 0
        self.gone = 0

    def close(self) -> None:
        self.app.extensions["archive"]().index.close()
        self.app.extensions["store"].close()
        self.archive.index.close()
        self.store.close()

    def get(self, url: str, allowed: tuple[int, ...] = (200,)):
        self.requests += 1
        try:
            response = self.client.get(url)
        except Exception:   # TESTING: an error in a view comes here instead of a 500 page
            self.failures.append(f"{url}: {traceback.format_exc(limit=-6)}")
            return None
        if response.status_code not in allowed:
            self.failures.append(f"{url}: {response.status_code} {response.get_data(as_text=True)[:300]}")
            return None
        return response

    def round(self) -> None:
        self.rounds += 1
        for q in QUERIES:
            response = self.get(f"/api/search?q={q}&per_page=20")
            if response is None:
                continue
            found = response.get_json()
            self.totals[q].append(found["total"])
            if len(found["hits"]) != min(found["total"], 20):
                self.failures.append(f"search {q!r}: {found['total']} matches but "
                                     f"{len(found['hits'])} hits with records")
        for url in (("/", "/search?q=internet", "/stats/", "/list/governance/")
                    if self.rounds % 3 == 1 else ()):
            self.get(url)
        try:
            self.messages.append(self.archive.stats()["messages"])
        except Exception:
            self.failures.append(f"stats: {traceback.format_exc(limit=-6)}")
        response = self.get("/api/lists")
        if response is not None:
            self.lists.append({item["name"]: item["messages"] for item in response.get_json()["lists"]})
        for name in ("governance", "bestbits"):
            response = self.get(f"/api/list/{name}/threads", allowed=(200, 404))
            if response is None or response.status_code == 404:
                continue   # bestbits exists once its first batch is stored
            for summary in response.get_json()["threads"][:4]:
                self.thread(summary["thread_id"])
        hits = self.get("/api/search?q=internet&per_page=5")
        if hits is not None:
            for hit in hits.get_json()["hits"][:2]:
                self.get(f"/message/{hit['msg_hash']}/")

    def thread(self, thread_id: str) -> None:
        # Merged into another since the listing: "no thread" (404) is the archive after.
        self.get(f"/thread/{thread_id}/", allowed=(200, 404))
        found = self.get(f"/api/thread/{thread_id}", allowed=(200, 404))
        if found is None or found.status_code == 404:
            self.gone += 1
            return
        data = found.get_json()
        shown = [m for m in data["messages"] if not m.get("missing")]
        size = data["thread"]["size"]
        self.thread_checks += 1
        if data["pages"] == 1 and len(shown) != size:
            self.failures.append(f"thread {thread_id}: its summary says {size} messages, "
                                 f"its page lists {len(shown)}")
        people = sum(p["messages"] for p in data["thread"]["participants"])
        if people != size:
            self.failures.append(f"thread {thread_id}: {size} messages, {people} by its participants")


def read_while(proc: subprocess.Popen, reader: Reader, after: int = 2) -> int:
    rounds = 0
    while proc.poll() is None:
        reader.round()
        rounds += 1
    for _ in range(after):
        reader.round()
        rounds += 1
    return rounds


def never_down(values: list) -> bool:
    return all(a <= b for a, b in zip(values, values[1:]))


def run_reading(data: Path, url: str, args: list[str], log: Path) -> tuple[Reader, int, float, int]:
    reader = Reader(data, url)
    try:
        reader.round()   # the archive before
        with open(log, "wb") as out:
            started = time.perf_counter()
            proc = subprocess.Popen(archiver_cmd(data, *args), stdout=out, stderr=subprocess.STDOUT,
                                    cwd=ROOT, env={**os.environ, "ARCHIVE_WORKERS": "2",
                                                   "ARCHIVE_DATABASE_URL": url})
            try:
                rounds = read_while(proc, reader)
            finally:
                code = proc.wait(timeout=300)
            seconds = time.perf_counter() - started
    finally:
        reader.close()
    return reader, rounds, seconds, code


def test_reads_while_an_ingest_commits_see_before_or_after(prepared, tmp_path):
    corpus, data, url = prepared
    reader, rounds, seconds, code = run_reading(
        data, url, ["ingest", str(corpus / "bestbits"), "--list", "bestbits"], tmp_path / "ingest.log")
    assert code == 0, (tmp_path / "ingest.log").read_text()
    print(f"\n{reader.requests} requests in {rounds} rounds during a {seconds:.1f} s ingest; "
          f"{reader.thread_checks} thread pages checked, {reader.gone} merged away")
    assert reader.failures == [], "\n".join(reader.failures[:20])
    assert rounds >= 5, "the ingest ended before the readers got going"

    for q, seen in reader.totals.items():
        assert never_down(seen), (q, seen)
        # One commit: the total before, or the total after, nothing between.
        assert set(seen) <= {seen[0], seen[-1]}, (q, sorted(set(seen)))
    assert reader.totals["internet"][-1] > reader.totals["internet"][0]
    assert never_down(reader.messages) and reader.messages[-1] > reader.messages[0]
    for name in ("governance", "bestbits"):
        counts = [lists.get(name, 0) for lists in reader.lists]
        assert never_down(counts), (name, counts)
    # The readers saw the store between the first batch and the last (not only before/after).
    assert len(set(reader.messages)) > 2, sorted(set(reader.messages))


def test_searches_while_the_index_is_rebuilt_see_the_same_totals(prepared, tmp_path):
    _, data, url = prepared
    reader, rounds, seconds, code = run_reading(data, url, ["reindex"], tmp_path / "reindex.log")
    assert code == 0, (tmp_path / "reindex.log").read_text()
    print(f"\n{reader.requests} requests in {rounds} rounds during a {seconds:.1f} s reindex")
    assert reader.failures == [], "\n".join(reader.failures[:20])
    for q, seen in reader.totals.items():
        assert len(set(seen)) == 1, (q, seen)


@pytest.fixture(params=BACKENDS)
def copied(request, tmp_path, web_datas, monkeypatch):
    """A private copy of the sample archive, in SQLite and on PostgreSQL."""
    return private_copy(request, tmp_path, web_datas, monkeypatch)


def test_a_page_reads_one_snapshot_of_the_store(copied):
    """A commit landing between two reads of one page (a thread's summary, then its messages)
    is not seen by the second: each reader's connection reads one snapshot."""
    from dataclasses import replace

    from sqlalchemy import event

    from archiver.thread import thread as jwz

    data = copied
    reading, writing = open_store(data), open_store(data)
    try:
        archive = Archive(reading)
        chosen = max(archive.threads(list_name="bestbits", limit=100)["threads"], key=lambda t: t["size"])
        before = archive.thread(chosen["thread_id"])
        moved = next(m for m in before["messages"] if m.get("depth") == 1)["message_id"]
        reads = []

        def between(conn, cursor, statement, *args):
            reads.append(statement)
            if len(reads) == 2:
                # An ingest re-threads: one message leaves the thread for a thread of its own.
                placements = [replace(p, thread_id="z" * 32, root_id=moved, parent_id=None, depth=0)
                              if p.message_id == moved else p
                              for p in jwz(writing.thread_inputs([moved]))]
                writing.write_threads(placements)

        event.listen(reading.engine, "after_cursor_execute", between)
        during = archive.thread(chosen["thread_id"])
        event.remove(reading.engine, "after_cursor_execute", between)
        after = archive.thread(chosen["thread_id"])
    finally:
        reading.close()
        writing.close()
    assert len(reads) > 2
    listed = [m for m in during["messages"] if not m.get("missing")]
    # The archive before the commit, whole: its summary and its messages agree.
    assert during["thread"]["size"] == len(listed) == chosen["size"]
    assert moved in {m["message_id"] for m in listed}
    assert after["thread"]["size"] == chosen["size"] - 1
