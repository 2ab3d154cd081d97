"""Crashes: the ingester killed (SIGKILL) at random points of a large ingest, again and again,
then run to the end, leaves the same archive as one clean ingest: nothing duplicated or lost,
the same threads, and a search index holding exactly the store's messages.

Real processes: `archiver --data DIR ingest CORPUS --list NAME` over a generated corpus of
3,000 messages, with the store in the data directory (SQLite) or in a database of its own
(PostgreSQL, which then ends the killed process's transaction), killed after seeded random delays spread over a clean run's duration. Only the
ingester's own process is killed, as the kernel or an operator would: its worker processes
must end with it (they hold the data directory's writer lock, inherited when they were forked).
Run with -s to see what each kill hit. benchmarks/crash.py runs the same for longer.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from archiver import schema as s
from archiver.check import check
from archiver.index import SearchIndex
from archiver.query import Archive
from archiver.store import Store
from conftest import BACKENDS

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = int(os.environ.get("CRASH_MESSAGES", 3000))
SERIES = int(os.environ.get("CRASH_SERIES", 3))        # data directories killed into, at most
KILLS = int(os.environ.get("CRASH_KILLS", 8))          # kills per series, at most
BUDGET = float(os.environ.get("CRASH_SECONDS", 20))    # seconds of killing (the test: <1 min)
SEED = int(os.environ.get("CRASH_SEED", 8))
LIST = "bestbits"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="kills and process groups are checked the Linux way")


def archiver_cmd(data: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", "from web.cli import main; main()", "--data", str(data), *args]


def environment(url: str) -> dict:
    # Two workers whatever the machine: the pool (and its forked processes) is part of the test.
    return {**os.environ, "ARCHIVE_WORKERS": "2", "ARCHIVE_BATCH_SIZE": "500", "ARCHIVE_DATABASE_URL": url}


def sqlite_url(data: Path) -> str:
    return f"sqlite:///{data / 'archive.sqlite3'}"


@pytest.fixture
def url_of(backend, store_url):
    """Return the store URL of a data directory: its SQLite file, or a database of its own."""
    made: dict[Path, str] = {}

    def url(data: Path) -> str:
        if data not in made:
            made[data] = sqlite_url(data) if backend == "sqlite" else store_url()
        return made[data]

    return url


def generate(where: Path, messages: int = MESSAGES) -> Path:
    corpus = where / "corpus"
    subprocess.run([sys.executable, str(ROOT / "fixtures" / "generate.py"), "--messages",
                    str(messages), "--out", str(corpus), "--no-html"], check=True,
                   stdout=subprocess.DEVNULL, cwd=ROOT)
    return corpus


def start_ingest(data: Path, url: str, corpus: Path, log: Path) -> subprocess.Popen:
    """Start an ingest in its own process group (so a test can find every process of it)."""
    with open(log, "ab") as out:
        return subprocess.Popen(archiver_cmd(data, "ingest", str(corpus), "--list", LIST,
                                             "--format", "json"),
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env=environment(url), start_new_session=True)


def group_alive(pgid: int) -> list[int]:
    """Return the live (not zombie) processes of a process group."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def wait_group_gone(pgid: int, timeout: float = 5.0) -> list[int]:
    """Wait for a process group to end; return whatever of it is still alive after timeout."""
    deadline = time.monotonic() + timeout
    while (alive := group_alive(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def run_ingest(data: Path, url: str, corpus: Path, log: Path) -> tuple[dict, float]:
    started = time.perf_counter()
    proc = start_ingest(data, url, corpus, log)
    code = proc.wait(timeout=300)
    elapsed = time.perf_counter() - started
    assert code == 0, log.read_text(errors="replace")[-3000:]
    assert not wait_group_gone(proc.pid)
    report = json.loads(log.read_text().strip().splitlines()[-1])
    return report, elapsed


def state(data: Path, url: str) -> dict:
    """What a kill left: messages stored, threaded and marked indexed, documents indexed; and
    that the index then differs from the store only where the store knows an update is due:
    nothing indexed that the store lacks, nothing twice, nothing stale that is marked indexed."""
    store = Store(url)
    archive = Archive(store, index_dir=data / "whoosh")
    try:
        m = s.messages.c
        with store.engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(s.messages)).scalar_one()
            threaded = conn.execute(select(func.count()).where(m.thread_id.is_not(None))).scalar_one()
            waiting = set(conn.execute(select(m.message_id).where(m.indexed.is_(False))).scalars())
        found = check(archive)
    finally:
        archive.index.close()
        store.close()
    assert not found.extra and not found.duplicated and not found.redacted, "\n".join(found.lines())
    assert set(found.missing) | set(found.stale) <= waiting, "\n".join(found.lines())
    return {"stored": stored, "marked": stored - len(waiting), "threaded": threaded,
            "documents": found.documents}


def kill_series(data: Path, url: str, corpus: Path, logs: Path, kills: int, rng: random.Random,
                clean: dict, deadline: float = float("inf"), echo=print) -> list[dict]:
    """Start an ingest into `data` up to `kills` times, each killed with SIGKILL (the ingester's
    process, not its workers) after a random delay unless it finished first; stop when the
    archive is complete or time.monotonic() passes deadline. A delay is drawn over what is
    left to do, estimated from the clean run's timings and what the kills before left, so
    kills land all through the ingest: storing batches, threading, building the index,
    marking rows indexed (a few in the start-up, before any work)."""
    outcomes: list[dict] = []
    data.mkdir(parents=True, exist_ok=True)
    now = state(data, url)
    total = clean["stored"]
    for number in range(kills):
        # Replacing documents costs more than adding them: what is left to index is priced
        # at half a clean index build at least.
        left = (clean["overhead"]
                + clean["store"] * (1 - now["stored"] / total)
                + (clean["index"] * max(0.5, 1 - now["marked"] / total) if now["marked"] < total else 0))
        delay = rng.uniform(0.8 * clean["overhead"], 0.95 * left)
        log = logs / f"{data.name}-{number}.log"
        proc = start_ingest(data, url, corpus, log)
        try:
            try:
                code = proc.wait(timeout=delay)
                killed = False
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)   # the ingester only, not its workers
                code = proc.wait()
                killed = True
            # Its workers must not outlive it: they would hold the writer lock for good.
            survivors = wait_group_gone(proc.pid)
        finally:
            if group_alive(proc.pid):
                os.killpg(proc.pid, signal.SIGKILL)
        assert not survivors, f"processes {survivors} of the killed ingest lived on"
        if not killed:
            assert code == 0, log.read_text(errors="replace")[-3000:]
        now = state(data, url)
        outcomes.append({"run": number, "delay": round(delay, 2), "killed": killed, **now})
        echo(f"  {'killed' if killed else 'finished'} after {delay:.2f} s: {now['stored']} "
             f"stored, {now['threaded']} threaded, {now['documents']} documents, "
             f"{now['marked']} marked indexed")
        if not killed or now["marked"] == total or time.monotonic() > deadline:
            break
    return outcomes


def snapshot(data: Path, url: str) -> dict:
    """Everything the comparison needs of an archive, read through the store and the index."""
    store = Store(url)
    archive = Archive(store, index_dir=data / "whoosh")
    try:
        m = s.messages.c
        with store.engine.connect() as conn:
            ids = list(conn.execute(select(m.message_id)).scalars())
            members: dict[str, set] = {}
            parents = {}
            for mid, tid, parent in conn.execute(select(m.message_id, m.thread_id, m.parent_id)):
                members.setdefault(tid, set()).add(mid)
                parents[mid] = parent
            raws = set(conn.execute(select(s.raws.c.sha256, s.raws.c.size)).all())
            sources = set(conn.execute(select(s.sources.c.raw_sha256, s.sources.c.list,
                                              s.sources.c.location, s.sources.c.message_id)).all())
            rejected = set(conn.execute(select(s.rejected.c.raw_sha256)).scalars())
            summaries = set(conn.execute(select(s.threads.c.thread_id, s.threads.c.root_id,
                                                s.threads.c.size)).all())
            thread_topics = set(conn.execute(select(s.thread_topics.c.thread_id,
                                                    s.thread_topics.c.topic,
                                                    s.thread_topics.c.weight)).all())
            pending = conn.execute(select(func.count()).where(m.indexed.is_(False))).scalar_one()
        records = {r["message_id"]: SearchIndex.fingerprint(r) for r in archive.messages()}
        documents = archive.index.fingerprints()
        report = check(archive)
    finally:
        archive.index.close()
        store.close()
    return {"ids": ids, "threads": {tid: frozenset(v) for tid, v in members.items()},
            "parents": parents, "raws": raws, "sources": sources, "rejected": rejected,
            "summaries": summaries, "thread_topics": thread_topics, "pending": pending,
            "records": records, "documents": documents, "check": report}


def compare(crashed: dict, clean: dict) -> None:
    """Assert a crashed-and-resumed archive is the clean one."""
    assert len(crashed["ids"]) == len(set(crashed["ids"])), "a Message-ID is stored twice"
    assert len(crashed["ids"]) == len(clean["ids"])
    assert set(crashed["ids"]) == set(clean["ids"]), "messages lost or added"
    assert crashed["raws"] == clean["raws"], "raw messages lost or changed"
    assert crashed["sources"] == clean["sources"]
    assert crashed["rejected"] == clean["rejected"]
    assert None not in crashed["threads"], "messages left without a thread"
    assert set(crashed["threads"].values()) == set(clean["threads"].values()), "threads differ"
    assert crashed["threads"] == clean["threads"], "thread ids differ"
    assert crashed["parents"] == clean["parents"]
    assert crashed["summaries"] == clean["summaries"]
    assert crashed["thread_topics"] == clean["thread_topics"]
    # What each message's document should hold (thread, lists, topics, ...) is the same...
    assert crashed["records"] == clean["records"]
    # ...and the index holds exactly that: every stored message once, nothing else.
    found = crashed["check"]
    assert found.agree, "\n".join(found.lines())
    documents = [mid for mid, _ in crashed["documents"]]
    assert len(documents) == len(set(documents)) == len(crashed["ids"])
    assert set(documents) == set(crashed["ids"])
    assert sorted(crashed["documents"]) == sorted(clean["documents"])
    assert crashed["pending"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_ingests_then_one_to_the_end_equal_a_clean_ingest(tmp_path, backend, url_of):
    corpus = generate(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    clean_data = tmp_path / "clean"
    report, span = run_ingest(clean_data, url_of(clean_data), corpus, logs / "clean.log")
    assert report["stored"] > 0.9 * MESSAGES
    # Once more: nothing changes, and this is what an ingest costs before it does any work.
    again, overhead = run_ingest(clean_data, url_of(clean_data), corpus, logs / "again.log")
    assert again["stored"] == again["indexed"] == 0 and again["unchanged"] == report["seen"]
    index = report["seconds"]["index"]
    clean = {"stored": report["stored"], "overhead": overhead, "index": index,
             "store": max(0.5, span - overhead - index)}
    expected = snapshot(clean_data, url_of(clean_data))

    rng = random.Random(SEED)
    kills = 0
    print(f"\n{MESSAGES} messages: a clean ingest {span:.1f} s (index {index:.1f} s), "
          f"a repeated one {overhead:.1f} s; up to {SERIES} series of up to {KILLS} kills "
          f"in {BUDGET:.0f} s (seed {SEED})")
    deadline = time.monotonic() + BUDGET
    series = 0
    # Past the deadline only while fewer than three ingests were killed: a slower store (or
    # machine) must not leave the test with too few kills to mean anything.
    while series < SERIES and (not series or time.monotonic() < deadline or kills < 3):
        data = tmp_path / f"crashed-{series}"
        outcomes = kill_series(data, url_of(data), corpus, logs, KILLS, rng, clean, deadline)
        kills += sum(o["killed"] for o in outcomes)
        final, seconds = run_ingest(data, url_of(data), corpus, logs / f"{data.name}-final.log")
        print(f"  then to the end in {seconds:.1f} s: {final['stored']} stored, "
              f"{final['unchanged']} unchanged, {final['indexed']} indexed")
        compare(snapshot(data, url_of(data)), expected)
        # `archiver check` agrees.
        done = subprocess.run(archiver_cmd(data, "check"), capture_output=True, text=True,
                              cwd=ROOT, env=environment(url_of(data)))
        assert done.returncode == 0 and "store and index agree" in done.stdout, \
            done.stdout + done.stderr
        series += 1
    print(f"  {kills} kills in {series} series")
    assert kills >= 3, f"only {kills} ingests were killed before they finished"
