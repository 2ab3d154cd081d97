"""ingest(): idempotence, cross-posts, duplicates, rejects, incremental re-threading, report counts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from archiver import schema as s
from archiver.errors import SourceError
from archiver.ids import thread_hash
from archiver.pipeline import STAGES, ingest
from archiver.query import Archive
from conftest import BACKENDS, eml


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Every store of this module's tests is made in SQLite and on PostgreSQL."""
    return request.param


MESSAGES = Path(__file__).resolve().parent.parent / "fixtures" / "messages"


def mbox(*messages: bytes) -> bytes:
    return b"".join(b"From jane.doe@civil.example Tue Oct  2 10:00:00 2012\n" + m + b"\n" for m in messages)


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def records(store) -> dict[str, dict]:
    return {r["message_id"]: r for r in Archive(store).messages()}


def count(store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def assert_adds_up(report) -> None:
    assert report.seen == report.stored + report.duplicates + report.unchanged + report.rejected


def test_stage_order_is_data():
    assert [name for name, _ in STAGES] == ["parse", "clean", "language", "topics"]


def test_ingest_twice_changes_nothing(store, tmp_path):
    source = write(tmp_path / "a.mbox", mbox(eml("a.1@civil.example"),
                                             eml("a.2@civil.example", "Re: Topic", ("a.1@civil.example",)),
                                             b"no headers here\n"))
    first = ingest(store, [source], "bestbits")
    assert (first.seen, first.stored, first.rejected, first.duplicates, first.unchanged) == (3, 2, 1, 0, 0)
    before = (count(store, s.messages), count(store, s.raws), count(store, s.sources), count(store, s.rejected))
    second = ingest(store, [source], "bestbits")
    assert second.as_dict() | {"seconds": {}} == {
        "seen": 3, "stored": 0, "duplicates": 0, "unchanged": 3, "degraded": 0, "rejected": 0,
        "rethreaded": 0, "indexed": 0, "rejected_reasons": {}, "degraded_reasons": {},
        "skipped_files": [], "seconds": {}}
    after = (count(store, s.messages), count(store, s.raws), count(store, s.sources), count(store, s.rejected))
    assert after == before == (2, 3, 3, 1)


def test_same_message_in_two_lists(store, tmp_path):
    data = mbox(eml("x.1@civil.example"))
    ingest(store, [write(tmp_path / "bestbits.mbox", data)], "bestbits")
    report = ingest(store, [write(tmp_path / "governance.mbox", data)], "governance")
    assert (report.seen, report.duplicates, report.stored) == (1, 1, 0)
    (record,) = records(store).values()
    assert record["lists"] == ["bestbits", "governance"]
    assert sorted((x["list"], Path(x["location"]).name) for x in record["sources"]) == [
        ("bestbits", "bestbits.mbox#0"), ("governance", "governance.mbox#0")]
    assert count(store, s.raws) == 1
    assert Archive(store).lists() == [{"name": "bestbits", "messages": 1}, {"name": "governance", "messages": 1}]


def test_same_message_id_with_different_bytes(store, tmp_path):
    original, variant = eml("d.1@civil.example"), eml("d.1@civil.example", body="Footer added by a relay.\n")
    ingest(store, [write(tmp_path / "one.eml", original)], "bestbits")
    report = ingest(store, [write(tmp_path / "two.eml", variant)], "bestbits")
    assert (report.seen, report.duplicates, report.stored) == (1, 1, 0)
    assert count(store, s.messages) == 1
    assert count(store, s.raws) == 2
    archive = Archive(store)
    assert archive.raw("d.1@civil.example") == original
    (record,) = records(store).values()
    assert sorted(Path(x["location"]).name for x in record["sources"]) == ["one.eml", "two.eml"]
    assert {store.raw_bytes(sha) for sha in _raw_shas(store)} == {original, variant}


def _raw_shas(store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(s.raws.c.sha256)).scalars())


def test_rejected_messages_are_kept_with_reason_and_bytes(store):
    report = ingest(store, [str(MESSAGES / "rejected-no-headers.mbox")], "bestbits")
    assert (report.seen, report.stored, report.rejected) == (2, 1, 1)
    assert report.reasons == {"parse: no headers": 1}
    (rejected,) = Archive(store).rejected()
    assert rejected["reason"] == "parse: no headers"
    assert rejected["location"].endswith("rejected-no-headers.mbox#" + rejected["location"].rsplit("#")[1])
    assert store.raw_bytes(rejected["raw_sha256"]) == b"this chunk has no header lines at all, only text\n"


def test_raw_bytes_of_every_fixture_come_back_identical(store, tmp_path):
    folder = tmp_path / "eml"
    folder.mkdir()
    for path in sorted(MESSAGES.glob("*.eml")):
        shutil.copy(path, folder / path.name)
    report = ingest(store, [str(folder)], "bestbits")
    assert report.rejected == 0 and report.skipped_files == []
    archive = Archive(store)
    for record in archive.messages():
        (source,) = record["sources"]
        assert archive.raw(record["message_id"]) == Path(source["location"]).read_bytes()


def test_degraded_messages_are_counted_with_reasons(store, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("missing-message-id.eml", "bad-date.eml", "koi8r-unlabelled.eml", "html-only.eml"):
        shutil.copy(MESSAGES / name, folder / name)
    report = ingest(store, [str(folder)], "bestbits")
    assert (report.stored, report.degraded) == (4, 3)
    assert report.degraded_reasons == {"no-message-id": 1, "no-date": 1, "charset-guessed": 1}
    degraded = {r["subject"]: r["degraded"] for r in records(store).values()}
    assert degraded == {"No id here": ["no-message-id"], "Agenda for Baku": ["no-date"],
                        "Vstrecha": ["charset-guessed"], "HTML only": []}


def test_bad_date_in_an_mbox_uses_the_from_line(store, tmp_path):
    data = b"From jane.doe@civil.example Tue Oct  2 10:00:00 2012\n" + (MESSAGES / "bad-date.eml").read_bytes()
    ingest(store, [write(tmp_path / "bad.mbox", data)], "bestbits")
    (record,) = records(store).values()
    assert (record["date"], record["date_offset_minutes"]) == ("2012-10-02T10:00:00Z", None)
    assert record["degraded"] == ["date-from-envelope"]


def test_reply_first_then_parent_is_rethreaded(store, tmp_path):
    # Unrelated messages first, so that the second ingests re-thread only what they touch.
    ingest(store, [write(tmp_path / "pad.mbox", mbox(*(eml(f"pad.{i}@civil.example", f"Pad {i}")
                                                       for i in range(10))))], "bestbits")
    reply = write(tmp_path / "reply.eml", eml("r.1@civil.example", "Re: Topic", ("p.1@civil.example",), hour=11))
    first = ingest(store, [reply], "bestbits")
    assert first.rethreaded == 1
    placed = records(store)["r.1@civil.example"]
    assert (placed["parent_id"], placed["depth"], placed["thread_id"]) == (None, 0, thread_hash("r.1@civil.example"))

    parent = write(tmp_path / "parent.eml", eml("p.1@civil.example", "Topic"))
    second = ingest(store, [parent], "bestbits")
    assert second.rethreaded == 2
    now = records(store)
    assert (now["r.1@civil.example"]["parent_id"], now["r.1@civil.example"]["depth"]) == ("p.1@civil.example", 1)
    assert now["r.1@civil.example"]["thread_id"] == now["p.1@civil.example"]["thread_id"] == thread_hash("p.1@civil.example")
    assert now["p.1@civil.example"]["parent_id"] is None
    assert now["pad.3@civil.example"]["thread_id"] == thread_hash("pad.3@civil.example")
    with store.engine.connect() as conn:
        threads = dict(conn.execute(select(s.threads.c.thread_id, s.threads.c.size)).all())
    assert threads[thread_hash("p.1@civil.example")] == 2
    assert thread_hash("r.1@civil.example") not in threads          # the old thread is gone
    assert len(threads) == 11


def test_missing_parent_dummy_becomes_the_real_parent(store, tmp_path):
    replies = write(tmp_path / "replies.mbox", mbox(
        eml("s.1@civil.example", "Re: Topic", ("gone@civil.example",), hour=11),
        eml("s.2@civil.example", "Re: Topic", ("gone@civil.example",), hour=12)))
    ingest(store, [replies], "bestbits")
    with store.engine.connect() as conn:
        assert conn.execute(select(s.dummies.c.message_id)).scalars().all() == ["gone@civil.example"]
    ingest(store, [write(tmp_path / "gone.eml", eml("gone@civil.example", "Topic", hour=9))], "bestbits")
    now = records(store)
    assert {k: (v["parent_id"], v["depth"]) for k, v in now.items()} == {
        "gone@civil.example": (None, 0), "s.1@civil.example": ("gone@civil.example", 1),
        "s.2@civil.example": ("gone@civil.example", 1)}
    assert {v["thread_id"] for v in now.values()} == {thread_hash("gone@civil.example")}
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(s.dummies)).scalar_one() == 0


@pytest.mark.parametrize("batch_size", [1, 2, 500])
def test_report_counts_add_up(store, tmp_path, batch_size):
    data = mbox(eml("c.1@civil.example"), eml("c.2@civil.example", "Re: Topic", ("c.1@civil.example",)),
                eml("c.1@civil.example"),                                      # same bytes again
                eml("c.2@civil.example", body="Different bytes.\n"),           # same id, other bytes
                b"no headers at all\n", eml("c.3@civil.example"))
    source = write(tmp_path / "mixed.mbox", data)
    first = ingest(store, [source], "bestbits", batch_size=batch_size)
    assert_adds_up(first)
    assert (first.seen, first.stored, first.duplicates, first.rejected, first.unchanged) == (6, 3, 2, 1, 0)
    second = ingest(store, [source], "bestbits", batch_size=batch_size)
    assert_adds_up(second)
    assert (second.seen, second.unchanged) == (6, 6)
    third = ingest(store, [source, str(MESSAGES / "no-from-line.txt")], "governance", batch_size=batch_size)
    assert_adds_up(third)
    assert (third.seen, third.stored, third.duplicates) == (7, 1, 6)


def test_skipped_files_are_reported(store):
    report = ingest(store, [str(MESSAGES / "not-mail.txt")], "bestbits")
    assert (report.seen, report.skipped_files) == (0, [f"{MESSAGES / 'not-mail.txt'}: not mail"])


def test_progress_is_called_per_batch(store, tmp_path):
    source = write(tmp_path / "p.mbox", mbox(*(eml(f"p.{i}@civil.example") for i in range(5))))
    calls: list[int] = []
    ingest(store, [source], "bestbits", progress=calls.append, batch_size=2)
    assert calls == [2, 2, 1]


def test_report_as_dict_has_stage_timings(store, tmp_path):
    report = ingest(store, [write(tmp_path / "t.eml", eml("t.1@civil.example"))], "bestbits")
    data = report.as_dict()
    assert {"read", "parse", "clean", "store", "thread"} <= set(data["seconds"])
    assert all(v >= 0 for v in data["seconds"].values())


def test_pipermail_mirror_with_scrubbed_html(store, tmp_path):
    root = tmp_path / "bestbits"
    root.mkdir()
    (root / "2012-October.txt").write_bytes(b"From jane.doe at civil.example  Tue Oct  2 10:00:00 2012\n"
                                            + (MESSAGES / "pipermail-scrubbed-html.eml").read_bytes() + b"\n")
    page = root / "attachments" / "20121002" / "4f1c2e9a" / "attachment.html"
    page.parent.mkdir(parents=True)
    page.write_bytes(b"<html><body><p>We, the undersigned, support the statement.</p></body></html>")
    ingest(store, [str(root)], "bestbits")
    (record,) = records(store).values()
    assert record["own_text"] == "We, the undersigned, support the statement."
    assert record["from_name"] == "Jane Doe"
    assert record["subject_norm"] == "Statement text"
    assert record["attachments"][0]["url"].endswith("/20121002/4f1c2e9a/attachment.html")
    assert record["degraded"] == []


def test_max_mime_parts_setting_is_honoured(store, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVE_MAX_MIME_PARTS", "3")
    parts = b"".join(b"--z\nContent-Type: application/octet-stream\n\nxx\n" for _ in range(10))
    data = eml("parts.1@civil.example").replace(
        b"\n\nBody.\n", b'\nContent-Type: multipart/mixed; boundary="z"\n\n' + parts + b"--z--\n")
    report = ingest(store, [write(tmp_path / "parts.eml", data)], "bestbits")
    assert report.degraded_reasons == {"mime-parts-truncated": 1}


def test_missing_source_does_not_leave_messages_unthreaded(store, tmp_path):
    good = write(tmp_path / "good.mbox", mbox(
        eml("u.1@civil.example"), eml("u.2@civil.example", "Re: Topic", ("u.1@civil.example",)),
        *(eml(f"u.{i}@civil.example", f"Other {i}") for i in range(3, 6))))
    with pytest.raises(SourceError):
        ingest(store, [good, str(tmp_path / "typo.mbox")], "bestbits", batch_size=1)
    ingest(store, [good], "bestbits", batch_size=1)
    threads = {k: v["thread_id"] for k, v in records(store).items()}
    assert len(threads) == 5
    assert threads["u.1@civil.example"] == threads["u.2@civil.example"] == thread_hash("u.1@civil.example")
    assert None not in threads.values()


def test_worker_processes_give_the_same_archive(make_store, tmp_path, monkeypatch):
    messages = [eml(f"w.{i}@civil.example", "Re: Topic" if i else "Topic",
                    (f"w.{i - 1}@civil.example",) if i else (), hour=i % 24) for i in range(40)]
    source = write(tmp_path / "w.mbox", mbox(*messages, b"no headers\n"))
    results = []
    for workers in ("1", "2"):
        monkeypatch.setenv("ARCHIVE_WORKERS", workers)
        store = make_store(f"workers{workers}")
        report = ingest(store, [source], "bestbits", batch_size=10)
        data = report.as_dict()
        data.pop("seconds")
        results.append((data, {k: (v["parent_id"], v["depth"], v["thread_id"], v["own_text"])
                               for k, v in records(store).items()}))
    assert results[0] == results[1]
    assert results[0][0]["stored"] == 40 and results[0][0]["rejected"] == 1
    assert results[0][1]["w.39@civil.example"][:2] == ("w.38@civil.example", 39)


def _dated(mid: str, subject: str, month: int, refs: tuple[str, ...] = ()) -> bytes:
    return eml(mid, subject, refs).replace(b"Tue, 02 Oct 2012", f"Mon, 0{month} Oct 2012".encode())


def test_orphaned_reply_moves_to_a_later_stored_host(store, tmp_path):
    """A reply without references joins the latest thread of its subject begun before it,
    whichever order the messages arrive in (here the better host comes in a later ingest)."""
    a = write(tmp_path / "a.mbox", mbox(_dated("a@x.example", "Agenda", 1)))
    r = write(tmp_path / "r.mbox", mbox(_dated("r@x.example", "Re: Agenda", 5)))
    b = write(tmp_path / "b.mbox", mbox(_dated("b@x.example", "Agenda", 3)))
    ingest(store, [a, r], "bestbits")
    ingest(store, [b], "bestbits")
    parents = {rec["message_id"]: rec["parent_id"] for rec in Archive(store).messages()}
    assert parents["r@x.example"] == "b@x.example"


def test_thread_subject_is_its_roots(store, tmp_path):
    child = write(tmp_path / "c.mbox", mbox(_dated("c@x.example", "Re: Hotel in Baku", 2, ("a@x.example",))))
    root = write(tmp_path / "a.mbox", mbox(_dated("a@x.example", "Agenda", 1)))
    ingest(store, [child], "bestbits")
    ingest(store, [root], "bestbits")
    with store.engine.connect() as conn:
        assert conn.execute(select(s.threads.c.subject_norm)).scalars().all() == ["Agenda"]


def test_orphaned_reply_finds_a_host_whose_subject_differs_in_accented_case(store, tmp_path):
    host = write(tmp_path / "h.mbox", mbox(_dated("h@x.example", "Éducation numérique", 1)))
    reply = write(tmp_path / "r.mbox", mbox(_dated("r@x.example", "Re: éducation numérique", 4)))
    ingest(store, [reply], "bestbits")
    ingest(store, [host], "bestbits")
    parents = {rec["message_id"]: rec["parent_id"] for rec in Archive(store).messages()}
    assert parents["r@x.example"] == "h@x.example"


def test_nul_characters_in_headers_are_stored_and_found_again(store, tmp_path):
    """Hostile headers carrying NUL (which PostgreSQL's text cannot hold): stored, read back as
    sent, threaded, known again; a private-use character (the escape there) is kept too."""
    root = (b"From: Ja\x00ne <jane@civil.example>\nMessage-ID: <nul\x00.1@civil.example>\n"
            b"Date: Tue, 02 Oct 2012 10:00:00 +0200\nSubject: Sub\x00ject \xee\x80\x800\n\nBody.\n")
    reply = eml("nul.2@civil.example", "Re: Subject", ("nul\x00.1@civil.example",), hour=11)
    source = write(tmp_path / "nul.mbox", mbox(root, reply))
    first = ingest(store, [source], "bestbits")
    assert (first.stored, first.rejected) == (2, 0)
    assert ingest(store, [source], "bestbits").unchanged == 2
    stored = records(store)
    assert stored["nul.2@civil.example"]["parent_id"] == "nul\x00.1@civil.example"
    assert stored["nul\x00.1@civil.example"]["subject"] == "Sub\x00ject \ue0000"
    assert stored["nul\x00.1@civil.example"]["from_name"] == "Ja\x00ne"
    assert root in {store.raw_bytes(sha) for sha in _raw_shas(store)}
    # The same id with other bytes, from another list: one message, now in both lists.
    crossed = ingest(store, [write(tmp_path / "x.mbox", mbox(root.replace(b"Body.", b"Body, again.")))],
                     "governance")
    assert (crossed.stored, crossed.duplicates) == (0, 1)
    assert records(store)["nul\x00.1@civil.example"]["lists"] == ["bestbits", "governance"]


def test_undated_messages_sort_first_going_up_and_last_going_down(store, tmp_path):
    undated = eml("undated.1@civil.example", "Undated").replace(b"Date: Tue, 02 Oct 2012 10:00:00 +0200\n", b"")
    # A single message: an mbox's From_ line would give it a date.
    ingest(store, [write(tmp_path / "dated.eml", eml("dated.1@civil.example", "Dated")),
                   write(tmp_path / "undated.eml", undated)], "bestbits")
    archive = Archive(store)
    assert [r["message_id"] for r in archive.messages()] == ["undated.1@civil.example", "dated.1@civil.example"]
    assert [r["message_id"] for r in archive.latest()] == ["dated.1@civil.example", "undated.1@civil.example"]


def test_headers_of_many_kilobytes_are_stored_and_grouped(store, tmp_path):
    """A 15 kB subject and a 12 kB From (under the 16 kB header bound), which no compression
    shortens: stored whole, and a reply without references still finds its subject's thread
    (PostgreSQL's btree indexes would refuse such keys)."""
    import random
    import string

    pick = random.Random(5)
    subject = " ".join("".join(pick.choice(string.ascii_letters) for _ in range(19)) for _ in range(750))
    sender = "".join(pick.choice(string.ascii_lowercase) for _ in range(12_000)) + "@civil.example"
    host = eml("long.1@civil.example", subject).replace(b"jane.doe@civil.example", sender.encode())
    reply = _dated("long.2@civil.example", "Re: " + subject, 5)
    ingest(store, [write(tmp_path / "long.mbox", mbox(host, reply))], "bestbits")
    stored = records(store)
    assert stored["long.1@civil.example"]["subject"] == subject
    assert stored["long.1@civil.example"]["from_address"] == sender
    assert stored["long.2@civil.example"]["parent_id"] == "long.1@civil.example"


def test_an_ingest_gives_only_its_own_connections_a_larger_page_cache(tmp_path, monkeypatch):
    """The ingest's inserts into hash-keyed indexes need more than SQLite's 2 MB of cache at a
    million messages; the web's connections, and the index builders it forks, keep 2 MB."""
    import os

    from archiver.store import Store
    monkeypatch.setenv("ARCHIVE_INGEST_CACHE_MB", "24")
    url = f"sqlite:///{tmp_path / 'archive.sqlite3'}"
    store, reader = Store(url), Store(url)

    def cache(of: Store) -> int:
        with of.engine.connect() as conn:
            return conn.exec_driver_sql("PRAGMA cache_size").scalar_one()

    try:
        assert cache(store) == -2000   # SQLite's default: 2,000 KiB
        ingest(store, [write(tmp_path / "a.mbox", mbox(eml("c.1@civil.example")))], "alpha", workers=1)
        assert cache(store) == -24 * 1024 and cache(reader) == -2000
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 24 * 256
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:   # a forked index builder opens connections of its own
            try:
                store.engine.dispose(close=False)
                os.write(write_end, str(cache(store)).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        os.waitpid(child, 0)
        assert int(os.read(read_end, 64)) == -2000
        os.close(read_end)
    finally:
        store.close()
        reader.close()


def test_rethread_mends_a_reply_threading_once_put_in_the_wrong_thread(store, tmp_path):
    """`archiver rethread` threads every message again: a reply without references that an
    earlier archiver left in a thread of its own (as revision 0003 mends) joins its host, and
    the index is brought up to date with the move; a second run moves nothing."""
    from archiver.pipeline import rethread, update_index
    from archiver.thread import thread

    archive = Archive(store, index_dir=tmp_path / "whoosh")
    ingest(store, [write(tmp_path / "a.mbox", mbox(_dated("host@x.example", "Agenda", 1),
                                                   _dated("stray@x.example", "Re: Agenda", 5)))],
           "bestbits", archive=archive)
    right = records(store)["stray@x.example"]["thread_id"]
    assert right == thread_hash("host@x.example")
    alone = [i for i in store.thread_inputs(["stray@x.example"]) if i.message_id == "stray@x.example"]
    store.write_threads(thread(alone))   # threaded without its host, as a batch once could
    update_index(archive)
    assert records(store)["stray@x.example"]["thread_id"] == thread_hash("stray@x.example")
    assert archive.search("agenda", by_thread=True)["total"] == 2   # threads, as the index has them
    assert rethread(archive, batch_size=1) == {"messages": 2, "moved": 1, "recounted": 0, "indexed": 1}
    assert records(store)["stray@x.example"]["thread_id"] == right
    assert archive.search("agenda", by_thread=True)["total"] == 1
    assert rethread(archive) == {"messages": 2, "moved": 0, "recounted": 0, "indexed": 0}
    # Counts per list that drifted (here, by hand) are counted anew: a wrong row (as it was
    # and as it is now) and one left over are three rows that differ.
    tl = s.thread_lists.c
    with store.engine.begin() as conn:
        good = conn.execute(select(s.thread_lists)).all()
        conn.execute(s.thread_lists.update().values(size=tl.size + 5))
        conn.execute(s.thread_lists.insert().values(thread_id="x" * 32, list=good[0].list, size=1))
    assert rethread(archive)["recounted"] == 3
    with store.engine.connect() as conn:
        assert conn.execute(select(s.thread_lists)).all() == good
