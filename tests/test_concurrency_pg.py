"""Several processes at once: two ingesters on two lists whose archives share cross-posts, with
readers reading meanwhile, on SQLite and on PostgreSQL; and web workers reading a replica.

After two `archiver ingest` processes started together have finished, the store holds what
ingesting the same mail one list after the other holds: every message once, every list's
memberships and sources, the same thread placements, stand-ins, summaries and topics, and
(PostgreSQL, whose search table both ingesters share) an index that `archiver check` finds
in agreement. That comparison rests on threading a batch at a time giving the same trees
whichever list came first, tested here too. Concurrent commits each count in the generation,
and an index update holds back the writes that would change what it indexes. The web app
given replica_url reads a hot standby of the server, and nothing it does writes there.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
import traceback
import zlib
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from archiver import schema as s
from archiver.errors import StoreError
from archiver.models import RawMessage
from archiver.pipeline import ingest, prepare, update_index
from archiver.query import Archive, open_replica
from archiver.store import Store
from conftest import BACKENDS, SAMPLE, eml

ROOT = Path(__file__).resolve().parent.parent
LISTS = ("alpha", "beta")
BATCH = 20          # small batches: many transactions of each ingester interleave
THREADS = 260       # about 1,200 messages, a third of them cross-posted


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


# --- the mail ---------------------------------------------------------------------------------
def write_corpus(where: Path, threads: int = THREADS, seed: int = 9) -> dict[str, set[str]]:
    """Write one mbox per list and return the Message-IDs each list holds.

    Threads start on either list or both; each reply goes to either list or both, whatever
    its parent's lists, so replies cross from one list to the other. Some cross-posts carry
    each list's header and footer (other bytes, same Message-ID), others are the same bytes
    in both archives. Some replies name a parent no archive holds (a stand-in), some lost
    their references (grouped by subject), and some subjects recur across threads. Every
    message has a date of its own, so nothing depends on the order rows were stored in; and
    each archive is in an order of its own (shuffled), so the two ingesters meet the same
    cross-posts and threads at any time, not one always ahead of the other."""
    rng = random.Random(seed)
    start = datetime(2013, 3, 1, tzinfo=timezone.utc)
    taken: set[int] = set()

    def minute(at: int) -> int:
        while at in taken:
            at += 1
        taken.add(at)
        return at

    def lists() -> tuple[str, ...]:
        roll = rng.random()
        return ("alpha",) if roll < 0.35 else ("beta",) if roll < 0.7 else LISTS

    recurring = ["Agenda", "Registration", "Visa letters", "Call for comments"]
    messages: list[dict] = []
    for number in range(threads):
        subject = rng.choice(recurring) if rng.random() < 0.25 else f"Thread {number} on the draft"
        root = {"mid": f"t{number}.0@civil.example", "at": minute(rng.randrange(60 * 24 * 50)),
                "subject": subject, "refs": (), "lists": lists(), "same": rng.random() < 0.3}
        posted = [root]
        for reply in range(1, rng.randint(1, 8)):
            parent = rng.choice(posted)
            message = {"mid": f"t{number}.{reply}@civil.example",
                       "at": minute(parent["at"] + rng.randint(5, 900)), "subject": "Re: " + subject,
                       "refs": parent["refs"] + (parent["mid"],), "lists": lists(),
                       "same": rng.random() < 0.3}
            roll = rng.random()
            if roll < 0.08:
                message["refs"] = ()                     # a reply that lost its references
            elif roll < 0.16:
                message["refs"] += (f"gone{number}.{reply}@elsewhere.example",)   # a stand-in
            posted.append(message)
        messages.extend(posted)
    held: dict[str, set[str]] = {name: set() for name in LISTS}
    for name in LISTS:
        chunks = []
        for message in messages:
            if name in message["lists"]:
                held[name].add(message["mid"])
                chunks.append(_mbox_entry(message, name, start + timedelta(minutes=message["at"])))
        rng.shuffle(chunks)
        (where / f"{name}.mbox").write_bytes(b"".join(chunks))
    return held


def _mbox_entry(message: dict, list_name: str, date: datetime) -> bytes:
    sender = f"person{zlib.crc32(message['mid'].encode()) % 40}"
    head = [f"From {sender}@civil.example {date.strftime('%a %b %d %H:%M:%S %Y')}",
            f"From: Person {sender[6:]} <{sender}@civil.example>",
            f"Message-ID: <{message['mid']}>", f"Date: {format_datetime(date)}",
            f"Subject: {message['subject']}"]
    if message["refs"]:
        head += [f"References: {' '.join(f'<{r}>' for r in message['refs'])}",
                 f"In-Reply-To: <{message['refs'][-1]}>"]
    body = [f"On the draft ({message['mid']}): internet governance, visas and the agenda.", ""]
    if not message["same"]:
        # The list server's own additions: other bytes in each archive, one Message-ID.
        head.append(f"List-Id: <{list_name}.lists.example>")
        body += ["_______________________________________________", f"{list_name} mailing list"]
    return ("\n".join(head) + "\n\n" + "\n".join(body) + "\n\n").encode()


# --- what a store holds -------------------------------------------------------------------------
def snapshot(url: str) -> dict:
    """Everything two stores of the same mail must agree on (row ids and times aside)."""
    store = Store(url)
    m, ml, src = s.messages.c, s.message_lists.c, s.sources.c
    try:
        with store.engine.connect() as conn:
            rows = lambda query: set(map(tuple, conn.execute(query)))  # noqa: E731
            return {
                "messages": conn.execute(select(func.count()).select_from(s.messages)).scalar_one(),
                "placements": rows(select(m.message_id, m.thread_id, m.parent_id, m.depth)),
                "dummies": rows(select(s.dummies)),
                # A thread's host_order is its head's row id, which the order of storing
                # gives: compared as the head's Message-ID.
                "threads": rows(select(*(c for c in s.threads.c if c.name != "host_order"), m.message_id)
                                .join(s.messages, m.id == s.threads.c.host_order)),
                "thread_topics": {(t, topic, round(w, 9)) for t, topic, w in conn.execute(select(s.thread_topics))},
                "thread_lists": rows(select(s.thread_lists.c.thread_id, s.lists.c.name, s.thread_lists.c.size,
                                            s.thread_lists.c.first_date, s.thread_lists.c.last_date)
                                     .join(s.lists, s.lists.c.id == s.thread_lists.c.list)),
                "memberships": rows(select(s.lists.c.name, m.message_id)
                                    .join(s.message_lists, ml.list == s.lists.c.id)
                                    .join(s.messages, m.id == ml.message)),
                "sources": rows(select(src.list, src.location, src.message_id, src.raw_sha256)),
                "raws": rows(select(s.raws.c.sha256)),
                "unthreaded": list(store.unthreaded()),
            }
    finally:
        store.close()


def ingest_serially(url: str, corpus: Path, order=LISTS) -> None:
    store = Store(url)
    try:
        for name in order:
            ingest(store, [str(corpus / f"{name}.mbox")], name, batch_size=BATCH, workers=1)
    finally:
        store.close()


class Reader(threading.Thread):
    """Reads the archive over and over while the ingesters run (stats, lists, thread pages),
    recording failures and what each round saw."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.done = threading.Event()
        self.failures: list[str] = []
        self.seen: list[tuple[int, int, dict[str, int]]] = []   # (generation, messages, lists)

    def run(self) -> None:
        store = Store(self.url)
        archive = Archive(store)
        try:
            while not self.done.is_set():
                try:
                    generation = int(store.generation())
                    stats = archive.stats()
                    counts = {item["name"]: item["messages"] for item in stats["lists"]}
                    self.seen.append((generation, stats["messages"], counts))
                    for name in counts:
                        for summary in archive.threads(list_name=name, limit=3)["threads"]:
                            page = archive.thread(summary["thread_id"])
                            # A thread merged into another since the listing is gone, not broken.
                            if page is not None:
                                shown = [x for x in page["messages"] if not x.get("missing")]
                                if len(shown) != page["thread"]["size"]:
                                    self.failures.append(f"thread {summary['thread_id']}: size "
                                                         f"{page['thread']['size']}, {len(shown)} shown")
                except Exception:
                    self.failures.append(traceback.format_exc(limit=-4))
                time.sleep(0.02)   # two shared cores: leave the ingesters most of them
        finally:
            store.close()


def never_down(values: list[int]) -> bool:
    return all(a <= b for a, b in zip(values, values[1:]))


def run_ingesters(url: str, corpus: Path, where: Path) -> tuple[list[dict], Reader]:
    """Start one `archiver ingest` per list at once (each with a data directory of its own, as
    on two hosts, and the same store), read while they run; return their reports."""
    env = {**os.environ, "ARCHIVE_DATABASE_URL": url, "ARCHIVE_BATCH_SIZE": str(BATCH),
           "ARCHIVE_WORKERS": "1", "PYTHONPATH": str(ROOT)}
    reader = Reader(url)
    reader.start()
    procs = []
    for name in LISTS:
        data = where / f"data-{name}"
        data.mkdir()
        command = [sys.executable, "-c", "from web.cli import main; main()", "--data", str(data),
                   "ingest", str(corpus / f"{name}.mbox"), "--list", name, "--format", "json"]
        procs.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = [proc.communicate(timeout=600) for proc in procs]
    time.sleep(0.1)
    reader.done.set()
    reader.join(timeout=60)
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, f"an ingester failed:\n{err[-3000:]}"
    return [json.loads(out) for out, _ in outputs], reader


@pytest.mark.parametrize("attempt", [1, 2])
def test_two_ingesters_on_two_lists_store_what_one_after_the_other_stores(
        attempt, backend, store_url, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    held = write_corpus(corpus, seed=attempt)
    serial, together = store_url("serial"), store_url("together")
    ingest_serially(serial, corpus)
    expected = snapshot(serial)
    # The reference does not depend on which list came first: any result a schedule of the
    # two ingesters may give is comparable with it.
    other = store_url("reversed")
    ingest_serially(other, corpus, order=tuple(reversed(LISTS)))
    assert {k: v for k, v in snapshot(other).items() if k != "sources"} == \
        {k: v for k, v in expected.items() if k != "sources"}

    reports, reader = run_ingesters(together, corpus, tmp_path)
    found = snapshot(together)

    assert reader.failures == [], "\n".join(reader.failures[:5])
    everything = held["alpha"] | held["beta"]
    assert found["messages"] == len(everything) == expected["messages"]
    assert sum(r["stored"] for r in reports) == len(everything)
    # Each cross-post was stored by one and found stored by the other; and both found some,
    # so the two really wrote the same messages, each first at times.
    assert sum(r["duplicates"] for r in reports) == len(held["alpha"] & held["beta"])
    assert all(r["duplicates"] > 0 for r in reports), reports
    assert found["memberships"] == {(name, mid) for name in LISTS for mid in held[name]}
    assert found["memberships"] == expected["memberships"]
    assert found["sources"] == expected["sources"] and found["raws"] == expected["raws"]
    assert found["unthreaded"] == []
    for part in ("placements", "dummies", "threads", "thread_topics", "thread_lists"):
        assert found[part] == expected[part], (part, sorted(found[part] ^ expected[part])[:6])

    # The readers saw the two ingests at work at the same time, and never went back.
    generations = [g for g, _, _ in reader.seen]
    assert never_down(generations) and never_down([n for _, n, _ in reader.seen])
    final = {name: len(held[name]) for name in LISTS}
    assert any(all(0 < counts.get(name, 0) < final[name] for name in LISTS)
               for _, _, counts in reader.seen), "the two ingests never overlapped"
    # Each batch counted in the generation; none of the concurrent counts was lost.
    store = Store(together)
    try:
        generation = int(store.generation())
    finally:
        store.close()
    batches = sum(-(-final[name] // BATCH) for name in LISTS)
    assert generation >= batches and generation >= max(generations)

    if backend == "postgresql":
        # One search table for both: the index holds every message as the store has it now.
        command = [sys.executable, "-c", "from web.cli import main; main()", "--data",
                   str(tmp_path / "data-check"), "check", "--format", "json"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "ARCHIVE_DATABASE_URL": together})
        report = json.loads(done.stdout)
        assert done.returncode == 0 and report["agree"], done.stdout + done.stderr
        assert report["pending"] == 0 and report["unthreaded"] == 0
        assert report["documents"] == len(everything)


def message(mid: str, at: str, subject: str, refs: tuple[str, ...] = ()) -> RawMessage:
    head = f"From: A <a@civil.example>\nMessage-ID: <{mid}>\nDate: Thu, 18 Apr 2013 {at}:00 +0000\n"
    if refs:
        head += f"References: {' '.join(f'<{r}>' for r in refs)}\nIn-Reply-To: <{refs[-1]}>\n"
    return RawMessage(data=(head + f"Subject: {subject}\n\nText.\n").encode(), kind="eml", location=mid)


# Replies without references are filed by subject, under the thread begun last before them.
# Stored one message a batch in these orders, the incremental threading once kept them where a
# partial view had put them: (1) c first joins a thread whose root is missing (a stand-in,
# dated by a1, 22:13); a0's arrival (13:00) makes b0's thread (13:26) the later one, and c
# must follow. (2) r1 and r3 are stored before any thread of their subject, each beginning a
# thread of its own; t0's arrival must take in both, not only the subject's first.
SCENARIOS = {
    "a stand-in root gets its real, earlier root": (
        [message("e0@x", "08:00", "Agenda"), message("e1@x", "09:00", "Re: Agenda", ("e0@x",)),
         message("b0@x", "13:26", "Agenda"), message("a1@x", "22:13", "Re: Agenda", ("a0@x",)),
         message("c@x", "22:32", "Re: Agenda"), message("a0@x", "13:00", "Agenda")],
        {"c@x": "b0@x", "a1@x": "a0@x"}),
    "replies stored before their host": (
        [message("r1@x", "10:24", "Re: Topic"), message("r2@x", "11:12", "Re: Topic", ("r1@x",)),
         message("r3@x", "10:04", "Re: Topic"), message("t0@x", "05:47", "Topic")],
        {"r1@x": "t0@x", "r2@x": "r1@x", "r3@x": "t0@x"}),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_threading_a_batch_at_a_time_in_any_order_gives_the_one_pass_trees(scenario, backend, make_store):
    """The comparison above rests on this: which list (or batch) comes first does not change
    the trees, where replies without references are filed by subject."""
    from archiver.pipeline import ingest_raws
    from archiver.thread import thread

    raws, parents = SCENARIOS[scenario]
    store = make_store()
    ingest_raws(store, raws, "l", batch_size=1, workers=1)
    with store.engine.connect() as conn:
        stored = {mid: (tid, pid) for mid, tid, pid in conn.execute(
            select(s.messages.c.message_id, s.messages.c.thread_id, s.messages.c.parent_id))}
    at_once = {p.message_id: (p.thread_id, p.parent_id) for p in thread(store.thread_inputs(list(stored)))
               if not p.dummy}
    assert stored == at_once
    assert {mid: stored[mid][1] for mid in parents} == parents


def test_concurrent_writes_each_count_in_the_generation(backend, store_url):
    """Writers in several threads commit at once; the generation counts every commit."""
    url = store_url()
    stores = [Store(url) for _ in range(4)]
    before = int(stores[0].generation())
    failures: list[str] = []

    def write(store: Store) -> None:
        try:
            for _ in range(15):
                store.redact("nobody@nowhere.example", "a write that finds nothing, and counts")
        except Exception:
            failures.append(traceback.format_exc(limit=-3))

    workers = [threading.Thread(target=write, args=(store,)) for store in stores]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    try:
        assert failures == []
        assert int(stores[0].generation()) == before + 4 * 15
    finally:
        for store in stores:
            store.close()


def test_two_batches_of_the_same_messages_in_opposite_orders_commit_both(postgres_server, monkeypatch):
    """Two writers insert the same two messages at once, in opposite orders, one row a
    statement: each stores its first, then waits for the other's. PostgreSQL breaks the circle
    by aborting one, which runs again and finds both stored: each message is stored once, and
    is in both lists."""
    import archiver.store
    from sqlalchemy import event

    real = archiver.store._chunks
    monkeypatch.setattr(archiver.store, "_chunks", lambda items, size=1: real(items, 1))
    url = postgres_server.create_database()
    stores = [Store(url), Store(url)]
    # Each list's copy has bytes of its own (its footer): only the Message-IDs collide.
    batches = [[prepare(raw, hashlib.sha256(raw.data).hexdigest()) for raw in
                (RawMessage(data=eml(f"{n}@civil.example", body=f"Body.\n-- \nlist{number}\n"),
                            kind="eml", location=n) for n in ("x", "y"))] for number in (0, 1)]
    together = threading.Barrier(2, timeout=20)
    results: dict[int, tuple] = {}
    failures: list[str] = []
    aborted: list[str] = []
    met: set[int] = set()

    def meet(conn, cursor, statement, parameters, context, executemany):
        # After each batch's first message is in (the first attempt only), the two go on together.
        if statement.startswith("INSERT INTO messages") and threading.get_ident() not in met:
            met.add(threading.get_ident())
            together.wait()

    def write(number: int) -> None:
        try:
            batch = batches[number] if number == 0 else batches[number][::-1]
            results[number] = stores[number].write_batch(f"list{number}", batch)
        except Exception:
            failures.append(traceback.format_exc(limit=-3))

    for store in stores:
        event.listen(store.engine, "after_cursor_execute", meet)
        event.listen(store.engine, "handle_error",
                     lambda context: aborted.append(str(context.original_exception)))
    workers = [threading.Thread(target=write, args=(n,)) for n in (0, 1)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert failures == []
        assert aborted and all("deadlock detected" in reason for reason in aborted), aborted
        assert sorted(len(new) for new, _ in results.values()) == [0, 2]
        assert sorted(duplicates for _, duplicates in results.values()) == [0, 2]
        with stores[0].engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(s.messages)).scalar_one() == 2
            assert conn.execute(select(func.count()).select_from(s.message_lists)).scalar_one() == 4
    finally:
        for store in stores:
            store.close()
        postgres_server.drop_database(url)


def test_an_index_update_holds_back_writes_that_change_what_it_indexes(postgres_server):
    """While one process brings the index up to date (read rows, index them, mark them), a
    batch that would add messages or move them waits for it, in PostgreSQL; then goes on."""
    url = postgres_server.create_database()
    updating, writing = Store(url), Store(url)
    data = eml("late@civil.example")
    entry = prepare(RawMessage(data=data, kind="mbox", location="x#0"), hashlib.sha256(data).hexdigest())
    done = threading.Event()
    try:
        with updating.indexing():
            worker = threading.Thread(target=lambda: (writing.write_batch("alpha", [entry]), done.set()))
            worker.start()
            # The batch waits on the advisory lock (seen from the server), and stays unwritten.
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND wait_event = 'advisory'"
            deadline = time.monotonic() + 10
            with postgres_server.admin.connect() as conn:
                while not conn.execute(text(waiting), {"db": make_url(url).database}).scalar_one():
                    assert time.monotonic() < deadline and not done.is_set(), "the batch did not wait"
                    time.sleep(0.05)
            assert not done.is_set()
        assert done.wait(30)
        worker.join()
        assert writing.unindexed() and writing.unindexed()[0][1] == "late@civil.example"
    finally:
        updating.close()
        writing.close()
        postgres_server.drop_database(url)


# --- replicas -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def standby(postgres_server):
    """A hot standby of the test server (skipped, saying why, where none can be started)."""
    try:
        return postgres_server.standby()
    except RuntimeError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def primary(postgres_server, tmp_path_factory):
    """(data directory, primary URL) of the sample's bestbits list on PostgreSQL, with the
    search table in the same database."""
    data = tmp_path_factory.mktemp("primary")
    url = postgres_server.create_database()
    store = Store(url)
    archive = Archive(store, index_dir=data / "whoosh")
    try:
        ingest(store, [str(SAMPLE / "bestbits")], "bestbits", archive=archive)
        update_index(archive)
    finally:
        store.close()
    yield data, url
    postgres_server.drop_database(url)


def make_replica_app(data: Path, replica: str):
    """The web app reading the replica; its primary's URL is one nobody can reach, so any use
    of the primary would fail."""
    from web import create_app

    return create_app({"DATA_DIR": str(data), "TESTING": True, "REPLICA_URL": replica,
                       "DATABASE_URL": "postgresql+psycopg://nobody@/nowhere?host=/nonexistent",
                       "SEARCH_RATE": "100000 per minute", "EXPORT_RATE": "100000 per minute"})


def pages_served(app, archive: Archive) -> dict:
    """Fetch the list, thread, search and stats pages; return what they said."""
    client = app.test_client()
    thread = archive.threads(list_name="bestbits", limit=1)["threads"][0]
    for url in ("/", "/list/bestbits/", f"/thread/{thread['thread_id']}/", "/search?q=internet",
                "/stats/"):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    found = client.get("/api/search?q=internet&per_page=5").get_json()
    lists = {item["name"]: item["messages"] for item in client.get("/api/lists").get_json()["lists"]}
    return {"total": found["total"], "lists": lists}


def test_the_web_reads_a_hot_standby_and_never_writes(primary, standby, postgres_server, tmp_path):
    data, url = primary
    postgres_server.wait_replayed()
    app = make_replica_app(data, standby.url_of(url))
    store = Store(url)
    archive = Archive(store, index_dir=data / "whoosh")
    try:
        reader = app.extensions["store"]
        assert reader.read_only and reader.engine.url.query["host"] == str(standby.socket)
        seen = pages_served(app, archive)
        assert seen["lists"] == {"bestbits": archive.stats()["messages"]}
        assert seen["total"] == archive.search("internet", per_page=5)["total"] > 0
        generation = reader.generation()

        # Mail the primary takes is served once the standby has replayed it.
        ingest(store, [str(SAMPLE / "governance")], "governance", archive=archive)
        postgres_server.wait_replayed()
        after = pages_served(app, archive)
        assert after["lists"] == {item["name"]: item["messages"] for item in archive.lists()}
        assert "governance" in after["lists"] and after["total"] > seen["total"]
        assert reader.generation() != generation

        # Nothing is written through it: the store refuses before SQL, the standby after.
        with pytest.raises(StoreError, match="read-only"):
            reader.redact("anything@example", "no")
        with pytest.raises(Exception, match="read-only transaction|recovery"):
            with reader.engine.begin() as conn:
                conn.execute(insert(s.meta).values(key="written", value="by the web"))
    finally:
        app.extensions["store"].close()
        store.close()


def test_a_read_only_second_url_of_the_same_database_serves_and_refuses_writes(primary):
    """Without a standby, replica_url may name the primary itself: its sessions are read-only."""
    data, url = primary
    app = make_replica_app(data, url)
    store = Store(url)
    archive = Archive(store, index_dir=data / "whoosh")
    try:
        reader = app.extensions["store"]
        seen = pages_served(app, archive)
        assert seen["lists"] == {item["name"]: item["messages"] for item in archive.lists()}
        before = store.generation()
        with pytest.raises(Exception, match="read-only transaction"):
            with reader.engine.begin() as conn:
                conn.execute(insert(s.meta).values(key="written", value="by the web"))
        with pytest.raises(StoreError, match="read-only"):
            reader.write_thread_topics({})
        assert store.generation() == before
    finally:
        app.extensions["store"].close()
        store.close()


def test_opening_a_replica_writes_nothing(postgres_server, tmp_path):
    """A replica of an empty database is refused without making a table (the primary's
    first ingest makes them); nor is a missing SQLite file made."""
    url = postgres_server.create_database()
    try:
        with pytest.raises(StoreError, match="no store yet"):
            open_replica(url)
        engine = create_engine(url, poolclass=NullPool)
        try:
            assert inspect(engine).get_table_names() == []
        finally:
            engine.dispose()
    finally:
        postgres_server.drop_database(url)
    missing = tmp_path / "none.sqlite3"
    with pytest.raises(StoreError):
        open_replica(f"sqlite:///{missing}")
    assert not missing.exists()


def test_a_sqlite_replica_reads_and_refuses_writes(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    writer = Store(url)
    writer.close()
    reader = open_replica(url)
    try:
        assert reader.generation() == "0"
        with pytest.raises(Exception, match="readonly|read-only|query_only"):
            with reader.engine.begin() as conn:
                conn.execute(insert(s.meta).values(key="written", value="by the web"))
    finally:
        reader.close()
