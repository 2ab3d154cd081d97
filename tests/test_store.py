"""The store: raw bytes kept byte for byte, messages by Message-ID, lists, sources, rejects, threads."""

from __future__ import annotations

import hashlib
import warnings
from datetime import datetime

import pytest
from sqlalchemy import event, func, literal_column, select

from archiver import schema as s
from archiver.errors import StoreError
from archiver.ids import message_hash, thread_hash
from archiver.models import RawMessage
from archiver.pipeline import prepare
from archiver.query import Archive
from archiver.store import Entry, Store
from archiver.thread import thread
from conftest import BACKENDS, eml


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Every store of this module's tests is made in SQLite and on PostgreSQL."""
    return request.param


def entry(data: bytes, location: str = "test#0", kind: str = "mbox", envelope: str | None = None,
          archive_url: str | None = None) -> Entry:
    raw = RawMessage(data=data, kind=kind, location=location, envelope=envelope, archive_url=archive_url)
    return prepare(raw, hashlib.sha256(data).hexdigest())


def rows(store: Store, table, *columns):
    with store.engine.connect() as conn:
        return conn.execute(select(*(columns or (table,))).order_by(*columns[:1])).all()


def count(store: Store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_store_file_is_created_with_the_schema(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    try:
        assert (tmp_path / "new.sqlite3").is_file()
        assert count(store, s.messages) == 0
    finally:
        store.close()


def test_the_schema_opens_again_and_keeps_bytes_and_naive_utc_dates(store_url):
    url = store_url()
    store = Store(url)
    try:
        store.write_batch("bestbits", [entry(eml("types.1@civil.example", hour=23))])
        store.write_batch("bestbits", [entry(eml("types.2@civil.example"))])
        assert store.generation() == "2"     # counted in SQL: text cast to integer and back
        again = Store(url)                   # the schema is there: created once, version checked
        try:
            with again.engine.connect() as conn:
                data, date = conn.execute(select(s.raws.c.data, s.messages.c.date)
                                          .join(s.messages, s.messages.c.raw_sha256 == s.raws.c.sha256)
                                          .where(s.messages.c.message_id == "types.1@civil.example")).one()
            assert isinstance(data, bytes)
            assert date == datetime(2012, 10, 2, 21, 0) and date.tzinfo is None
        finally:
            again.close()
    finally:
        store.close()


def test_bad_url_is_a_store_error():
    with pytest.raises(StoreError, match="cannot open store"):
        Store("nosuchdialect://nowhere")


def test_raw_bytes_come_back_identical(store):
    tricky = (b"\xef\xbb\xbfFrom: Jos\xc3\xa9 <jose@redes.example>\r\nMessage-ID: <raw.1@redes.example>\r\n"
              b"Subject: caf\xe9\r\n\r\nline with trailing spaces   \r\n\x00\x93\x94\r\n\r\n\r\n")
    item = entry(tricky)
    new_ids, duplicates = store.write_batch("bestbits", [item])
    assert (new_ids, duplicates) == (["raw.1@redes.example"], 0)
    assert store.raw_bytes(hashlib.sha256(tricky).hexdigest()) == tricky
    assert Archive(store).raw("raw.1@redes.example") == tricky
    assert store.raw_bytes("0" * 64) is None
    assert Archive(store).raw("unknown@civil.example") is None


def test_message_row_fields(store):
    item = entry(eml("row.1@civil.example", subject="Re: [bestbits] Topic", refs=("root@civil.example",),
                     body="Yes.\n\n-- \nJane\n"), archive_url="http://lists.bestbits.example/a.html")
    store.write_batch("bestbits", [item])
    (row,) = rows(store, s.messages)
    assert row.message_id == "row.1@civil.example"
    assert row.msg_hash == message_hash("row.1@civil.example")
    assert (row.subject, row.subject_norm, row.is_reply) == ("Re: [bestbits] Topic", "Topic", True)
    assert row.date == datetime(2012, 10, 2, 8, 0) and row.date_offset == 120
    assert (row.refs, row.in_reply_to) == ("root@civil.example", "root@civil.example")
    (texts,) = rows(store, s.texts)
    (raw,) = rows(store, s.raws)
    unpacked = store.unpack_texts(texts.data, raw.data)
    assert texts.message == row.id and (unpacked["own_text"], unpacked["signature"]) == ("Yes.", "--\nJane")
    assert row.archive_url == "http://lists.bestbits.example/a.html"
    assert unpacked["attachments"] == [] and row.degraded == ""
    assert [r.ref_id for r in rows(store, s.refs)] == ["root@civil.example"]


def test_known_reports_stored_raws_and_the_places_read_before(store):
    item = entry(eml("known.1@civil.example"), location="a.mbox#0")
    store.write_batch("bestbits", [item])
    other = entry(eml("known.2@civil.example"), location="a.mbox#900")
    stored, here = store.known("bestbits", [(item.sha256, "a.mbox#0"), (item.sha256, "b.mbox#0"),
                                            (other.sha256, "a.mbox#0"), ("f" * 64, "a.mbox#0")])
    assert stored == {item.sha256}
    assert here == {(item.sha256, "a.mbox#0")}          # not its other place, nor other bytes there
    assert store.known("governance", [(item.sha256, "a.mbox#0")]) == ({item.sha256}, set())
    assert store.stored([item.sha256, other.sha256, item.sha256]) == {item.sha256}


def test_same_id_different_bytes_in_one_batch(store):
    first, second = entry(eml("dup.1@civil.example")), entry(eml("dup.1@civil.example", body="Other.\n"), "b#0")
    new_ids, duplicates = store.write_batch("bestbits", [first, second])
    assert (new_ids, duplicates) == (["dup.1@civil.example"], 1)
    assert count(store, s.messages) == 1
    assert count(store, s.raws) == 2
    assert {(r.raw_sha256, r.message_id) for r in rows(store, s.sources)} == {
        (first.sha256, "dup.1@civil.example"), (second.sha256, "dup.1@civil.example")}
    (row,) = rows(store, s.messages)
    assert row.raw_sha256 == first.sha256        # the first version seen is the message


def test_a_batchs_later_copy_gives_a_new_message_its_archive_url(store):
    # The first copy came from an mbox (no URL), a second from the list's web archive.
    data = eml("url.1@civil.example")
    first = entry(data, "a.mbox#0")
    second = entry(data + b"\n", "2012-October/000001.html",
                   archive_url="http://lists.bestbits.example/2012-October/000001.html")
    other = entry(eml("url.2@civil.example"), "a.mbox#1")
    assert store.write_batch("bestbits", [first, second, other]) == (
        ["url.1@civil.example", "url.2@civil.example"], 1)
    found = {r.message_id: (r.archive_url, r.indexed)
             for r in rows(store, s.messages, s.messages.c.message_id, s.messages.c.archive_url,
                           s.messages.c.indexed)}
    assert found == {"url.1@civil.example": ("http://lists.bestbits.example/2012-October/000001.html", False),
                     "url.2@civil.example": (None, False)}


def test_a_raw_message_seen_again_on_another_list_counts_in_its_threads_list(store):
    # The same bytes on a second list (no new message row): add_sources puts the threaded
    # message in that list, and its thread then counts there.
    root, reply = (entry(eml("seen.1@civil.example", subject="Budget", hour=9)),
                   entry(eml("seen.2@civil.example", subject="Re: Budget", refs=("seen.1@civil.example",),
                             hour=10), "test#1"))
    new_ids, _ = store.write_batch("bestbits", [root, reply])
    store.write_threads(thread(store.thread_inputs(new_ids)))
    store.add_sources("governance", [reply])
    found = Archive(store).threads(list_name="governance")
    assert [(t["subject"], t["matching"], t["matching_first"]) for t in found["threads"]] == [
        ("Budget", 1, "2012-10-02T08:00:00Z")]


def test_an_archives_counts_are_kept_until_its_next_write(store_url):
    # Counts over a whole archive are kept per store and generation: a write shows at once,
    # and another store at the same generation has counts of its own.
    first, second = Store(store_url("first")), Store(store_url("second"))
    try:
        first.write_batch("bestbits", [entry(eml("count.1@civil.example"))])
        second.write_batch("governance", [entry(eml("count.2@civil.example")),
                                          entry(eml("count.3@civil.example"), "test#1")])
        ones, twos = Archive(first), Archive(second)
        assert first.generation() == second.generation()
        assert (ones.stats()["messages"], twos.stats()["messages"]) == (1, 2)
        assert [x["name"] for x in ones.lists()] == ["bestbits"]
        ones.stats()["lists"].clear()          # a caller's copy: what is kept stays whole
        first.write_batch("bestbits", [entry(eml("count.4@civil.example"))])
        assert ones.stats()["messages"] == 2 and ones.lists() == [{"name": "bestbits", "messages": 2}]
        assert [x["messages"] for x in ones.months()] == [2]
        # The earlier generation's counts are dropped, the other store's are kept.
        from archiver.browse import _COUNTS
        kept = {(k[0], k[3]) for k in _COUNTS if k[0] in (str(first.engine.url), str(second.engine.url))}
        assert kept == {(str(first.engine.url), first.generation()), (str(second.engine.url), second.generation())}
    finally:
        first.close()
        second.close()


def test_a_lists_page_leaves_out_redacted_messages_and_shows_a_cross_post_once_threaded(store):
    items = [entry(eml("page.1@civil.example", subject="Budget", hour=9)),
             entry(eml("page.2@civil.example", subject="Re: Budget", refs=("page.1@civil.example",), hour=10)),
             entry(eml("page.3@civil.example", subject="Visas", hour=11), "test#1")]
    new_ids, _ = store.write_batch("bestbits", items)
    store.write_threads(thread(store.thread_inputs(new_ids)))
    archive = Archive(store)

    def page(name: str) -> list[tuple[str, int, str]]:
        found = archive.threads(list_name=name)
        assert found["total"] == len(found["threads"])
        return [(t["subject"], t["matching"], t["matching_last"]) for t in found["threads"]]
    assert page("bestbits") == [("Visas", 1, "2012-10-02T09:00:00Z"), ("Budget", 2, "2012-10-02T08:00:00Z")]
    assert page("governance") == []
    store.write_batch("governance", [items[1]])       # the reply, cross-posted, already threaded
    assert page("governance") == [("Budget", 1, "2012-10-02T08:00:00Z")]
    assert store.redact("page.2@civil.example", "asked by its author")
    assert page("bestbits") == [("Visas", 1, "2012-10-02T09:00:00Z"), ("Budget", 1, "2012-10-02T07:00:00Z")]
    assert page("governance") == []


def test_rejected_entry_keeps_reason_and_bytes(store):
    junk = b"no headers, only words\n"
    item = entry(junk, location="c.mbox#99")
    assert item.message is None and item.reason == "parse: no headers"
    assert store.write_batch("bestbits", [item]) == ([], 0)
    assert Archive(store).rejected() == [{"raw_sha256": item.sha256, "reason": "parse: no headers",
                                          "list": "bestbits", "location": "c.mbox#99"}]
    assert store.raw_bytes(item.sha256) == junk
    (source,) = rows(store, s.sources)
    assert source.message_id is None


def test_add_sources_links_a_second_list(store):
    item = entry(eml("x.1@civil.example"), location="a.mbox#0")
    store.write_batch("bestbits", [item])
    again = Entry(raw=RawMessage(data=item.raw.data, kind="mbox", location="g.mbox#0"), sha256=item.sha256)
    store.add_sources("governance", [again])
    assert Archive(store).lists() == [{"name": "bestbits", "messages": 1}, {"name": "governance", "messages": 1}]
    assert sorted((r.list, r.location, r.message_id) for r in rows(store, s.sources)) == [
        ("bestbits", "a.mbox#0", "x.1@civil.example"), ("governance", "g.mbox#0", "x.1@civil.example")]
    store.add_sources("governance", [again])      # the same place twice is one source
    assert count(store, s.sources) == 2


def test_write_threads_stores_placements_dummies_and_summaries(store):
    items = [entry(eml("t.b@civil.example", "Re: Topic", ("t.gone@civil.example",)), "a#1"),
             entry(eml("t.c@civil.example", "Re: Topic", ("t.gone@civil.example",)), "a#2")]
    new_ids, _ = store.write_batch("bestbits", items)
    store.write_threads(thread(store.thread_inputs(new_ids)))
    tid = thread_hash("t.gone@civil.example")
    assert [(r.message_id, r.thread_id, r.parent_id, r.depth) for r in rows(store, s.dummies)] == [
        ("t.gone@civil.example", tid, None, 0)]
    assert {(r.message_id, r.thread_id, r.parent_id, r.depth)
            for r in rows(store, s.messages, s.messages.c.message_id, s.messages.c.thread_id,
                          s.messages.c.parent_id, s.messages.c.depth)} == {
        ("t.b@civil.example", tid, "t.gone@civil.example", 1),
        ("t.c@civil.example", tid, "t.gone@civil.example", 1)}
    (summary,) = rows(store, s.threads)
    assert (summary.thread_id, summary.size, summary.subject_norm) == (tid, 2, "Topic")


def test_thread_inputs_follow_references_both_ways(store):
    batch = [entry(eml("r.root@civil.example"), "a#0"),
             entry(eml("r.child@civil.example", "Re: Topic", ("r.root@civil.example",)), "a#1"),
             entry(eml("r.other@civil.example", "Unrelated"), "a#2")]
    ids, _ = store.write_batch("bestbits", batch)
    store.write_threads(thread(store.thread_inputs(ids)))
    grandchild = entry(eml("r.grand@civil.example", "Re: Topic", ("r.root@civil.example", "r.child@civil.example")))
    new_ids, _ = store.write_batch("bestbits", [grandchild])
    touched = {i.message_id for i in store.thread_inputs(new_ids)}
    assert touched == {"r.root@civil.example", "r.child@civil.example", "r.grand@civil.example"}


def test_store_emits_no_deprecation_warnings(store):
    # SQLAlchemy 2.1 deprecated Result.tuples(); setup.cfg allows any 2.x.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        new_ids, _ = store.write_batch("bestbits", [entry(eml("w.1@civil.example"))])
        store.write_threads(thread(store.thread_inputs(new_ids)))
    assert [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)] == []


def test_a_new_thread_takes_over_the_later_replies_without_references_of_its_subject(store):
    """Replies that lost their references join the latest thread of their subject begun before
    them (else the first): a thread arriving in a later batch takes over exactly those it now
    hosts, as threading everything at once would have it."""
    def add(*items):
        new_ids, _ = store.write_batch("bestbits", list(items))
        store.write_threads(thread(store.thread_inputs(new_ids)))

    def threads() -> dict[str, str]:
        return {mid: tid for mid, tid in rows(store, s.messages, s.messages.c.message_id, s.messages.c.thread_id)}

    early = entry(eml("stray.early@civil.example", subject="Re: [bestbits] Visas", hour=6))
    late = entry(eml("stray.late@civil.example", subject="Re: [bestbits] Visas", hour=12))
    first = entry(eml("a@civil.example", subject="[bestbits] Visas", hour=8))
    add(first, early, late)
    assert threads()["stray.late@civil.example"] == threads()["stray.early@civil.example"] == thread_hash("a@civil.example")
    add(entry(eml("b@civil.example", subject="[bestbits] Visas", hour=10)))
    # The 10:00 thread hosts the 12:00 reply; the 06:00 one, before every thread, stays with the first.
    assert threads()["stray.late@civil.example"] == thread_hash("b@civil.example")
    assert threads()["stray.early@civil.example"] == thread_hash("a@civil.example")
    add(entry(eml("c@civil.example", subject="[bestbits] Visas", hour=4)),
        entry(eml("other@civil.example", subject="[bestbits] Hotels", hour=9)))
    assert threads()["stray.early@civil.example"] == thread_hash("c@civil.example")
    assert threads()["stray.late@civil.example"] == thread_hash("b@civil.example")
    every = [p for p in thread(store.thread_inputs(list(threads()))) if not p.dummy]
    assert {p.message_id: p.thread_id for p in every} == threads()
    summaries = {r.thread_id: r.size for r in rows(store, s.threads)}
    assert summaries == {thread_hash("a@civil.example"): 1, thread_hash("b@civil.example"): 2,
                         thread_hash("c@civil.example"): 2, thread_hash("other@civil.example"): 1}


def test_a_server_that_is_not_there_is_a_store_error_without_the_password(tmp_path):
    pytest.importorskip("psycopg")
    url = f"postgresql+psycopg://archiver:secret-pw@/archive?host={tmp_path}&connect_timeout=2"
    with pytest.raises(StoreError, match="cannot open store") as raised:
        Store(url)
    assert "secret-pw" not in str(raised.value)


def test_a_readers_connection_is_one_snapshot_while_an_ingest_commits(store):
    store.write_batch("bestbits", [entry(eml("snap.1@civil.example"))])
    with store.engine.connect() as reader:
        before = reader.execute(select(func.count()).select_from(s.messages)).scalar_one()
        store.write_batch("bestbits", [entry(eml("snap.2@civil.example"))])   # commits meanwhile
        assert reader.execute(select(func.count()).select_from(s.messages)).scalar_one() == before == 1
    assert count(store, s.messages) == 2


def _dated(mid: str, subject: str, when: str | None, refs: tuple[str, ...] = ()) -> Entry:
    head = f"From: Jane Doe <jane.doe@civil.example>\nMessage-ID: <{mid}>\nSubject: {subject}\n"
    if when:
        head += f"Date: {when}\n"
    if refs:
        head += f"References: {' '.join(f'<{r}>' for r in refs)}\nIn-Reply-To: <{refs[-1]}>\n"
    return entry((head + "\nBody.\n").encode())


@pytest.mark.parametrize("case", ["reply-before-its-root", "undated-posts", "replies-without-a-post",
                                  "reply-before-a-hosts-root", "undated-hosts"])
def test_incremental_subject_grouping_equals_threading_everything_at_once(store, case):
    """Cases where a thread's first date is not its host's date (a reply dated before its
    root, posts without a date), or where the subject has no post to host its replies without
    references (each is a thread of its own, and a new post takes all of them, whatever their
    dates). A new message must still go where threading everything at once puts it."""
    if case == "reply-before-its-root":
        before = [_dated("h0@x.example", "[bestbits] Budget", "Sat, 01 Dec 2012 10:00:00 +0000"),
                  _dated("ha@x.example", "[bestbits] Budget", "Tue, 01 Jan 2013 10:00:00 +0000"),
                  _dated("hb@x.example", "[bestbits] Budget", "Sun, 20 Jan 2013 10:00:00 +0000"),
                  _dated("r@x.example", "Re: [bestbits] Budget", "Sat, 05 Jan 2013 10:00:00 +0000", ("hb@x.example",)),
                  _dated("x@x.example", "Re: [bestbits] Budget", "Tue, 15 Jan 2013 10:00:00 +0000")]
        new = _dated("n@x.example", "[bestbits] Budget", "Thu, 10 Jan 2013 10:00:00 +0000")
    elif case == "replies-without-a-post":
        before = [_dated(f"x{day}@x.example", "Re: [bestbits] Budget", f"{day} Jan 2013 10:00:00 +0000")
                  for day in (5, 8, 9)]
        new = _dated("n@x.example", "[bestbits] Budget", "Wed, 02 Jan 2013 10:00:00 +0000")
    elif case == "reply-before-a-hosts-root":
        # The stand-in's thread begins on 1 January by its reply's date, but threading sorts it
        # by its first message (8 January): the 3 January reply belongs to the 7 January post.
        before = [_dated("p@x.example", "[bestbits] Budget", "Tue, 08 Jan 2013 10:00:00 +0000", ("gone@x.example",)),
                  _dated("q@x.example", "Re: [bestbits] Budget", "Tue, 01 Jan 2013 10:00:00 +0000", ("gone@x.example", "p@x.example")),
                  _dated("h@x.example", "[bestbits] Budget", "Mon, 07 Jan 2013 10:00:00 +0000")]
        new = _dated("n@x.example", "Re: [bestbits] Budget", "Thu, 03 Jan 2013 10:00:00 +0000")
    elif case == "undated-hosts":
        # Undated posts sort before every dated message, whatever their replies' dates: the
        # later one hosts the 3 January reply, and a post of 1 January takes it over.
        before = [_dated("h0@x.example", "[bestbits] Budget", None),
                  _dated("h1@x.example", "[bestbits] Budget", None),
                  _dated("a@x.example", "Re: [bestbits] Budget", "Fri, 04 Jan 2013 10:00:00 +0000", ("h0@x.example",)),
                  _dated("r@x.example", "Re: [bestbits] Budget", "Thu, 03 Jan 2013 10:00:00 +0000")]
        new = _dated("n@x.example", "[bestbits] Budget", "Tue, 01 Jan 2013 10:00:00 +0000")
    else:
        before = [_dated("u1@x.example", "[bestbits] Budget", None),
                  _dated("u2@x.example", "[bestbits] Budget", None),
                  _dated("h@x.example", "[bestbits] Budget", "Fri, 01 Mar 2013 10:00:00 +0000"),
                  _dated("x@x.example", "Re: [bestbits] Budget", "Fri, 01 Feb 2013 10:00:00 +0000")]
        new = _dated("n@x.example", "[bestbits] Budget", None)
    for batch in (before, [new]):
        new_ids, _ = store.write_batch("bestbits", batch)
        store.write_threads(thread(store.thread_inputs(new_ids)))
    stored = {mid: tid for mid, tid in rows(store, s.messages, s.messages.c.message_id, s.messages.c.thread_id)}
    at_once = {p.message_id: p.thread_id for p in thread(store.thread_inputs(list(stored))) if not p.dummy}
    assert stored == at_once
    if case == "reply-before-its-root":
        assert stored["x@x.example"] == thread_hash("n@x.example")
    elif case == "replies-without-a-post":
        assert {stored[f"x{day}@x.example"] for day in (5, 8, 9)} == {thread_hash("n@x.example")}
    elif case == "reply-before-a-hosts-root":
        assert stored["n@x.example"] == thread_hash("h@x.example")
    elif case == "undated-hosts":
        assert stored["r@x.example"] == thread_hash("n@x.example")


def test_a_batch_of_far_apart_dates_rethreads_only_the_threads_active_at_them(store):
    """New posts of one subject years apart (a batch that ends one list's archive and begins
    the next) bring the threads active at each of their dates, not every thread between; and
    they still take over the replies without references that threading at once gives them."""
    def add(batch):
        new_ids, _ = store.write_batch("bestbits", batch)
        store.write_threads(thread(store.thread_inputs(new_ids)))
        return new_ids

    for year in range(2013, 2033):
        add([_dated(f"p{year}@x.example", "[bestbits] Budget", f"Tue, 01 Jan {year} 10:00:00 +0000"),
             _dated(f"r{year}@x.example", "Re: [bestbits] Budget", f"Fri, 04 Jan {year} 10:00:00 +0000")])
    new = [_dated("n2013@x.example", "[bestbits] Budget", "Wed, 02 Jan 2013 10:00:00 +0000"),
           _dated("n2032@x.example", "[bestbits] Budget", "Fri, 02 Jan 2032 10:00:00 +0000")]
    new_ids, _ = store.write_batch("bestbits", new)
    inputs = store.thread_inputs(new_ids)
    # The two new posts, the threads of 2013 (the first) and 2032, and the ones their replies
    # without references may move to (a year either side): none of the sixteen between.
    found = {i.message_id for i in inputs}
    assert {"n2013@x.example", "n2032@x.example", "p2013@x.example", "p2032@x.example"} <= found
    assert not found & {f"{kind}{year}@x.example" for kind in "pr" for year in range(2015, 2031)}
    store.write_threads(thread(inputs))
    stored = {mid: tid for mid, tid in rows(store, s.messages, s.messages.c.message_id, s.messages.c.thread_id)}
    at_once = {p.message_id: p.thread_id for p in thread(store.thread_inputs(list(stored))) if not p.dummy}
    assert stored == at_once
    assert stored["r2013@x.example"] == thread_hash("n2013@x.example")
    assert stored["r2032@x.example"] == thread_hash("n2032@x.example")
    assert stored["r2020@x.example"] == thread_hash("p2020@x.example")


def test_the_threads_active_in_a_run_of_dates_are_found_whatever_their_span(store):
    """Threading asks for a subject's threads active within a run of new dates: ended from its
    start on, hosted by its end. SQLite answers it by span class (a month, a year, longer),
    each a bounded range of host dates; the answer is the plain question's, for threads of
    every class and runs anywhere among them."""
    from datetime import timedelta
    spans = (0, 5, 30, 31, 40, 200, 365, 366, 500, 900)   # days, and an hour more: each side of each bound
    start = datetime(2013, 1, 1, 10)
    batch = []
    for i in range(30):
        begun, span = start + timedelta(days=45 * i), spans[i % len(spans)]
        batch.append(_dated(f"p{i}@span.example", "[bestbits] Budget", f"{begun:%a, %d %b %Y %H:%M:%S} +0000"))
        ended = begun + timedelta(days=span, hours=1)
        batch.append(_dated(f"r{i}@span.example", "Re: [bestbits] Budget", f"{ended:%a, %d %b %Y %H:%M:%S} +0000",
                            (f"p{i}@span.example",)))
    new_ids, _ = store.write_batch("bestbits", batch)
    store.write_threads(thread(store.thread_inputs(new_ids)))
    t = s.threads.c
    with store.engine.connect() as conn:
        [key] = conn.execute(select(t.subject_key).distinct()).scalars().all()
        if conn.dialect.name == "sqlite":
            classes = conn.execute(select(func.count()).select_from(s.threads)
                                   .group_by(literal_column(s.SPAN_CLASS))).scalars().all()
            assert len(classes) == 3   # threads of each class
        first = conn.execute(select(t.thread_id).order_by(t.host_date).limit(1)).scalar_one()
        asked: list[tuple[str, tuple]] = []

        def heard(_conn, _cursor, statement, parameters, _context, _many):
            if "julianday" in statement:
                asked.append((statement, parameters))

        event.listen(store.engine, "before_cursor_execute", heard)
        low = start - timedelta(days=40)
        while low < start + timedelta(days=45 * 30 + 1000):
            for length in (timedelta(0), timedelta(days=20)):
                high = low + length
                plain = set(conn.execute(select(t.thread_id).where(
                    t.subject_key == key, t.last_date >= low, t.host_date <= high)).scalars())
                found, whole = store._subject_threads(conn, key, [low, high])
                assert not whole and set(found) == plain | {first}, (low, high)
            low += timedelta(days=5)
        event.remove(store.engine, "before_cursor_execute", heard)
        if conn.dialect.name == "sqlite":
            # Each class's range is read through the index: the expression is written as it is.
            statement, parameters = asked[0]
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            used = [row[-1] for row in plan if row[-1].startswith("SEARCH")]
            assert len(used) == 3 and all("ix_threads_subject_span" in step for step in used), plan
        else:
            assert asked == []
