"""The store: SQL through SQLAlchemy Core (SQLite by default), and its only writer."""

from __future__ import annotations

import base64
import os
import random
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Callable, Iterable, Iterator, TypeVar

from sqlalchemy import (Boolean, DateTime, Integer, Text, bindparam, case, cast, create_engine, event,
                        func, literal_column, or_, select, true, tuple_, union_all, update)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from . import schema as s
from .packing import pack, pack_texts, train, unpack, unpack_texts
from .errors import StoreError
from .ids import message_hash, person_key
from .migrations import prepare as prepare_schema
from .models import Message, Placement, RawMessage, ThreadInput

CHUNK = 500  # bound on IN (...) lists: SQLite allows 32,766 parameters, PostgreSQL 65,535
# Keys of PostgreSQL advisory locks (per database; "archthr" and "archidx" in ASCII, apart from
# the schema lock's "archive" in migrations): one threading step at a time, and no write that
# changes what the search index must hold while an index update runs (see _write).
THREADING_LOCK = 0x61726368746872
INDEX_LOCK = 0x61726368696478
# A write transaction PostgreSQL aborted to break a deadlock (40P01) or a serialisation conflict
# (40001) is run again, this many times at most: it wrote nothing, and it is idempotent.
RETRIES = 5
# The date thread.py sorts an undated host by (its epoch), naive UTC as the store keeps dates.
UNDATED = datetime(1970, 1, 1)
_RETRYABLE = frozenset({"40001", "40P01"})
T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One raw message of a batch, with what parsing made of it."""

    raw: RawMessage
    sha256: str
    message: Message | None = None
    is_reply: bool = False
    reason: str | None = None      # why it was rejected, when message is None
    packed: bytes | None = None    # pack(raw.data), when a worker process made it already
    packed_texts: bytes | None = None   # pack_texts(...) of the message, likewise


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _stored(conn: Connection, shas: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for part in _chunks(sorted(set(shas))):
        found.update(conn.execute(select(s.raws.c.sha256).where(s.raws.c.sha256.in_(part))).scalars())
    return found


def _naive_utc(value: datetime | None) -> datetime | None:
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value else None


class Store:
    """Open (and create) the store at a database URL."""

    def __init__(self, url: str):
        self.engine, shown = _engine(url, "store", read_only=False)
        try:
            # An empty database gets the schema; any other must be at this archiver's revision.
            prepare_schema(self.engine)
        except Exception as exc:
            self.engine.dispose()   # a store refused keeps no connection open
            if isinstance(exc, OperationalError):   # a server that is down, a database that is not there
                raise StoreError(f"cannot open store {shown}: {exc.orig}") from exc
            raise
        self._zdict = b""

    # --- writing --------------------------------------------------------------------------
    read_only = False   # a store opened by ReadOnlyStore refuses writes before any reaches SQL

    def _write(self, work: Callable[[Connection], T], index: bool = False, threads: bool = False,
               touch: bool = True) -> T:
        """Run work in one write transaction, counted in the generation unless touch is False.

        index: the work changes what the search index must hold (messages, their lists,
        threads or tags, redactions), so it waits while an index update runs (indexing()).
        threads: the work writes placements, summaries, dummies or thread topics: one such
        transaction at a time (see rethread)."""
        if self.read_only:
            raise StoreError("this store was opened read-only (a replica): nothing is written to it")
        postgres = self.engine.dialect.name == "postgresql"
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.engine.connect() as conn:
                    # Readers keep REPEATABLE READ (a page is one snapshot); writers run at READ
                    # COMMITTED. There INSERT ... ON CONFLICT waits for a concurrent insert of the
                    # same key and then sees it, where REPEATABLE READ fails with a serialisation
                    # error; an UPDATE of a row another writer changed waits for its commit and
                    # applies to what it committed. In SQLite the transaction begins IMMEDIATE
                    # (_sqlite_begin): writers queue on the file's lock from their first
                    # statement, instead of failing when their snapshot is older than another
                    # writer's commit.
                    conn.execution_options(**({"isolation_level": "READ COMMITTED"} if postgres
                                              else {"store_write": True}))
                    with conn.begin():
                        if postgres and index:
                            conn.execute(select(func.pg_advisory_xact_lock_shared(INDEX_LOCK)))
                        if postgres and threads:
                            conn.execute(select(func.pg_advisory_xact_lock(THREADING_LOCK)))
                        result = work(conn)
                        if touch:
                            self._touch(conn)
                return result
            except DBAPIError as exc:
                # Writers take keys and rows in one order where they can (raw keys and
                # memberships sorted, messages' rows updated in row order), so they seldom wait
                # on each other in a circle; when PostgreSQL breaks one (or reports a
                # serialisation failure) the transaction was rolled back whole, and every write
                # path is idempotent: run it again, after a short random pause.
                if attempt == RETRIES or _sqlstate(exc) not in _RETRYABLE:
                    raise
            time.sleep(random.uniform(0.0, 0.05 * 2 ** attempt))

    @contextmanager
    def indexing(self) -> Iterator[None]:
        """Hold the store's index lock while the search index is brought up to date.

        An index update reads rows not yet indexed, indexes them, and only then marks them
        indexed, in separate transactions. A write landing in between (another ingester
        moving one of those messages to another thread, adding it to its list, or storing a
        message whose row id falls in the range being marked) would be marked indexed without
        ever reaching the index. In PostgreSQL such writes take this advisory lock shared
        (_write with index=True) and the update holds it alone, on a connection of its own, so
        they wait for each other; two updates wait for each other too. In SQLite the data
        directory's writer lock already keeps a second writer out."""
        if self.engine.dialect.name != "postgresql":
            yield
            return
        with self.engine.connect() as conn:
            # AUTOCOMMIT: a connection held for the whole update must hold no snapshot.
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(select(func.pg_advisory_lock(INDEX_LOCK)))
            try:
                yield
            finally:
                try:
                    conn.execute(select(func.pg_advisory_unlock(INDEX_LOCK)))
                except DBAPIError:
                    conn.invalidate()   # a broken session: its locks went with it

    # --- what readers may cache by ------------------------------------------------------
    def _touch(self, conn: Connection) -> None:
        """Count a write in the store's generation (readers key their caches by it)."""
        # One upsert, the transaction's last statement: a concurrent writer's count waits for
        # this commit and adds to it (none is lost), and holds the row only until its commit.
        value = s.meta.c.value
        conn.execute(self._insert(s.meta).values(key="generation", value="1").on_conflict_do_update(
            index_elements=[s.meta.c.key], set_={"value": cast(cast(value, Integer) + 1, Text)}))

    def generation(self) -> str:
        """Return the store's write generation: it changes whenever an ingest, retag or
        redaction commits."""
        with self.engine.connect() as conn:
            return conn.execute(select(s.meta.c.value).where(s.meta.c.key == "generation")).scalar() or "0"

    # --- packing --------------------------------------------------------------------------
    def zdict(self) -> bytes:
        """Return the store's preset dictionary for packing (empty until the first ingest made
        one; once made it never changes, so it is cached)."""
        if not self._zdict:
            with self.engine.connect() as conn:
                found = conn.execute(select(s.meta.c.value).where(s.meta.c.key == "zdict")).scalar()
            self._zdict = base64.b64decode(found) if found else b""
        return self._zdict

    def ensure_zdict(self, samples: list[bytes]) -> bytes:
        """Return the store's dictionary, made from these sample messages when it has none.
        Two ingests racing to make one both end up with the one stored first."""
        if self.zdict() or not samples:
            return self._zdict
        made = base64.b64encode(train(samples)).decode("ascii")
        self._write(lambda conn: conn.execute(self._insert_ignore(s.meta), [{"key": "zdict", "value": made}]),
                    touch=False)
        return self.zdict()

    def close(self) -> None:
        self.engine.dispose()

    def bulk_cache(self, megabytes: int) -> None:
        """Give this process's SQLite connections to the store a page cache of megabytes, and a
        write-ahead log as large before it is copied back, from now on (an ingest's). Others
        keep SQLite's 2 MB and 4 MB: the web's, and the index builders an ingest forks, which
        read every row once."""
        if self.engine.dialect.name != "sqlite" or megabytes <= 0 or self._bulk:
            return
        self._bulk = True
        event.listen(self.engine, "connect", _sqlite_cache(megabytes, os.getpid()))
        self.engine.pool.dispose()   # idle connections reopen with it

    _bulk = False

    def _insert(self, table):
        """Return the store's dialect's INSERT (which has ON CONFLICT)."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def _insert_ignore(self, table):
        """Return INSERT ... ON CONFLICT DO NOTHING for the store's dialect."""
        return self._insert(table).on_conflict_do_nothing()

    # --- ingest ---------------------------------------------------------------------------
    def stored(self, shas: Iterable[str]) -> set[str]:
        """Return which of these raw hashes are stored (read before, anywhere)."""
        with self.engine.connect() as conn:
            return _stored(conn, shas)

    def known(self, list_name: str, places: list[tuple[str, str]]) -> tuple[set[str], set[tuple[str, str]]]:
        """Of these (raw hash, location) pairs read for a list, return the hashes already
        stored, and the pairs already recorded for this list (read there before)."""
        here: set[tuple[str, str]] = set()
        c = s.sources.c
        with self.engine.connect() as conn:
            stored = _stored(conn, (sha for sha, _ in places))
            wanted = set(places)
            for part in _chunks(sorted({where for _, where in places})):
                here.update((sha, where) for sha, where in conn.execute(
                    select(c.raw_sha256, c.location).where(c.list == list_name, c.location.in_(part)))
                    if (sha, where) in wanted)
        return stored, here

    def write_batch(self, list_name: str, entries: list[Entry]) -> tuple[list[str], int]:
        """Store a batch in one transaction; return (ids of new messages, duplicates).

        What is new is the database's answer (unique keys, INSERT ... ON CONFLICT DO NOTHING),
        not a look made before: a message another ingester stores meanwhile (a cross-post) is
        stored once, and counted here as a duplicate that joins this list."""
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        return self._write(lambda conn: self._write_batch(conn, list_name, entries, now), index=True)

    def _write_batch(self, conn: Connection, list_name: str, entries: list[Entry],
                     now: datetime) -> tuple[list[str], int]:
        list_id = self._list_id(conn, list_name)
        # Raw keys go in sorted order: two writers wanting the same keys take them in the same
        # order, so one waits for the other instead of both for each other. Messages go in the
        # batch's order, as their row ids record the order of arrival (threading's tie-break,
        # the index's document order); two lists' archives hold their cross-posts in date
        # order alike, and a deadlock another order makes is broken by PostgreSQL and retried.
        raws = {e.sha256: e for e in entries}
        for part in _chunks(sorted(raws)):
            conn.execute(self._insert_ignore(s.raws), [
                {"sha256": k, "size": len(raws[k].raw.data),
                 "data": raws[k].packed or pack(raws[k].raw.data, self.zdict()),
                 "message_id": raws[k].message.message_id if raws[k].message else None}
                for k in part])
        parsed = [e for e in entries if e.message is not None]
        first: dict[str, Entry] = {}   # a Message-ID seen again in the batch is a duplicate
        for entry in parsed:
            first.setdefault(entry.message.message_id, entry)
        rows = {mid: _message_row(entry) for mid, entry in first.items()}
        m = s.messages.c
        pks: dict[str, int] = {}
        for part in _chunks(list(rows)):
            # RETURNING yields the rows inserted, not those another writer had stored first.
            pks.update(conn.execute(self._insert_ignore(s.messages).returning(m.message_id, m.id),
                                    [rows[mid] for mid in part]).all())
        new = [mid for mid in first if mid in pks]   # in the batch's order
        pks.update(self._pks(conn, [mid for mid in first if mid not in pks]))
        if new:
            conn.execute(s.texts.insert(), [
                {"message": pks[mid], "data": first[mid].packed_texts or self._pack_texts(first[mid])}
                for mid in new])
        ref_rows = [{"message": pks[mid], "ref_id": ref} for mid in new for ref in rows[mid]["refs"].split()]
        if ref_rows:
            conn.execute(self._insert_ignore(s.refs), ref_rows)
        tag_rows = [{"message": pks[mid], "topic": slug, "score": score}
                    for mid in new for slug, score in first[mid].message.topics]
        if tag_rows:
            conn.execute(self._insert_ignore(s.message_topics), tag_rows)
        # A message stored without an archive URL takes the first one the batch has for it
        # (a message stored now has its first entry's already).
        urls: dict[int, str] = {}
        inserted = set(new)
        for entry in parsed:
            mid = entry.message.message_id
            if entry.raw.archive_url and not (mid in inserted and entry is first[mid]):
                urls.setdefault(pks[mid], entry.raw.archive_url)
        self._add_memberships(conn, list_id, set(pks.values()), urls,
                              fresh={pks[mid] for mid in new})
        source_rows = [{"raw_sha256": e.sha256, "list": list_name, "kind": e.raw.kind,
                        "location": e.raw.location, "envelope": e.raw.envelope,
                        "archive_url": e.raw.archive_url, "seen_at": now,
                        "message_id": e.message.message_id if e.message else None,
                        "message": pks[e.message.message_id] if e.message else None}
                       for e in entries]
        conn.execute(self._insert_ignore(s.sources), source_rows)
        rejects = [{"raw_sha256": e.sha256, "reason": e.reason, "list": list_name,
                    "location": e.raw.location, "seen_at": now}
                   for e in entries if e.message is None]
        if rejects:
            conn.execute(self._insert_ignore(s.rejected), rejects)
        return new, len(parsed) - len(new)

    @staticmethod
    def _pack_texts(entry: Entry) -> bytes:
        msg = entry.message
        return pack_texts(msg.own_text, msg.quoted_text, msg.signature, msg.footer,
                          attachment_list(msg), entry.raw.data)

    def add_sources(self, list_name: str, entries: list[Entry]) -> None:
        """Record a new place (list, location) for raw messages already stored."""
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        self._write(lambda conn: self._add_sources(conn, list_name, entries, now), index=True)

    def _add_sources(self, conn: Connection, list_name: str, entries: list[Entry], now: datetime) -> None:
        list_id = self._list_id(conn, list_name)
        ids: dict[str, str | None] = {}
        r = s.raws.c
        for part in _chunks(sorted({e.sha256 for e in entries})):
            ids.update(conn.execute(select(r.sha256, r.message_id).where(r.sha256.in_(part))).all())
        pks = self._pks(conn, [m for m in ids.values() if m])
        rows = [{"raw_sha256": e.sha256, "list": list_name, "kind": e.raw.kind,
                 "location": e.raw.location, "envelope": e.raw.envelope,
                 "archive_url": e.raw.archive_url, "seen_at": now, "message_id": ids.get(e.sha256),
                 "message": pks.get(ids.get(e.sha256))}
                for e in entries]
        conn.execute(self._insert_ignore(s.sources), rows)
        self._add_memberships(conn, list_id, set(pks.values()))

    def _add_memberships(self, conn: Connection, list_id: int, pks: set[int],
                         urls: dict[int, str] | None = None, fresh: set[int] = frozenset()) -> None:
        """Put messages in a list, and give those that have no archive URL the one in urls.
        A message new to the list must be indexed again (its lists grew), unless it is fresh:
        stored in this transaction, so not indexed yet."""
        ml, m = s.message_lists.c, s.messages.c
        urls = urls or {}
        grew: set[int] = set()
        for part in _chunks(sorted(pks)):
            grew.update(conn.execute(self._insert_ignore(s.message_lists).returning(ml.message),
                                     [{"message": pk, "list": list_id} for pk in part]).scalars())
        # A threaded message new to the list changes its thread's counts there. Under the
        # threading lock (PostgreSQL), taken before any row of messages is updated here (a
        # re-threading writer may be waiting for one): a message another ingester stored and
        # is threading now is threaded once the lock is ours, and counted here; or it is not
        # yet, and that writer's threading, after this commits, counts this list too.
        joined = sorted(grew - fresh)
        if joined and self.engine.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(THREADING_LOCK)))
        threaded = {tid for part in _chunks(joined) for tid in conn.execute(
            select(m.thread_id).where(m.id.in_(part), m.thread_id.is_not(None))).scalars()}
        if threaded:
            self._summarise_lists(conn, threaded)
        # One pass over the messages' rows, in key order (two passes in two orders could wait
        # in a circle on a re-threading writer's row locks).
        changed = sorted(set(joined) | set(urls))
        if changed:
            grown = bindparam("grew", type_=Boolean)
            conn.execute(update(s.messages).where(m.id == bindparam("pk"))
                         .where(or_(grown, m.archive_url.is_(None)))
                         .values(indexed=case((grown, False), else_=m.indexed),
                                 archive_url=func.coalesce(m.archive_url, bindparam("url"))),
                         [{"pk": pk, "grew": pk in grew, "url": urls.get(pk)} for pk in changed])

    def _list_id(self, conn: Connection, name: str) -> int:
        query = select(s.lists.c.id).where(s.lists.c.name == name)
        found = conn.execute(query).scalar()
        if found is None:
            # A list two ingesters begin at once is made once: the second insert waits for the
            # first's commit, does nothing, and the select after it sees the row.
            conn.execute(self._insert_ignore(s.lists), [{"name": name}])
            found = conn.execute(query).scalar_one()
        return found

    def _pks(self, conn: Connection, message_ids: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for part in _chunks(list(dict.fromkeys(message_ids))):
            found.update(conn.execute(select(s.messages.c.message_id, s.messages.c.id)
                                      .where(s.messages.c.message_id.in_(part))).all())
        return found

    # --- threading ------------------------------------------------------------------------
    def unthreaded(self) -> Iterator[str]:
        """Yield ids of stored messages that have no thread yet (an ingest was interrupted)."""
        m = s.messages.c
        with self.engine.connect() as conn:
            found = conn.execute(select(m.message_id).where(m.thread_id.is_(None))).scalars().all()
        yield from found

    def thread_inputs(self, new_ids: list[str]) -> list[ThreadInput]:
        """Return the threading inputs of the new messages and of every thread they touch."""
        with self.engine.connect() as conn:
            return self._thread_inputs(conn, new_ids)

    def rethread(self, new_ids: list[str], place: Callable[[list[ThreadInput]], list[Placement]],
                 topics: Callable[[dict[str, list[dict[str, float]]]],
                                  dict[str, dict[str, float]]] | None = None) -> tuple[int, int]:
        """Re-thread what new messages touch in one transaction: read the threading inputs,
        place them (place is the threader), write what moved (as write_threads). Return how
        many messages were threaded, and how many placements changed.

        One threading step runs at a time, in PostgreSQL under an advisory lock. A step reads
        a set of threads (found through references and subjects, not through rows it could
        lock), threads them in Python and writes their placements, summaries and stand-ins
        whole. Two ingesters doing that at once for one thread (a cross-posted message, a
        reply on one list to a post on the other) would each see the thread without the
        other's new messages, and the later commit would write its partial tree over the
        earlier one's, or collide on the summary's key. Under the lock the second step reads
        after the first committed (at READ COMMITTED each statement sees the latest commit;
        REPEATABLE READ would keep the snapshot taken when the lock was asked for). In SQLite
        the transaction holds the file's write lock from its start, to the same effect."""
        def work(conn: Connection) -> tuple[int, int]:
            inputs = self._thread_inputs(conn, new_ids)
            return len(inputs), self._write_threads(conn, place(inputs), topics)
        return self._write(work, index=True, threads=True)

    def _thread_inputs(self, conn: Connection, new_ids: list[str]) -> list[ThreadInput]:
        """The threading inputs of the new messages and of every thread they touch.

        Stored threads are closed under references (JWZ links every message that names the same
        id), so one step finds them all: threads holding an id the new messages name, threads of
        messages naming a new message, and, for subject grouping, the threads a new message's
        subject may move a reply without references into or out of (see _subject_threads)."""
        m, r = s.messages.c, s.refs.c
        wanted = set(self._pks(conn, new_ids).values())
        names: set[str] = set(new_ids)
        hosts: dict[str, list[datetime | None]] = {}
        for part in _chunks(sorted(wanted)):
            for refs_text, subject, reply, date in conn.execute(
                    select(m.refs, m.subject_norm, m.is_reply, m.date).where(m.id.in_(part))):
                names.update(refs_text.split())
                if subject and not (reply and not refs_text):
                    hosts.setdefault(subject.lower(), []).append(date)
        threads: set[str] = set()
        for part in _chunks(sorted(names)):
            threads.update(conn.execute(select(m.thread_id).where(m.message_id.in_(part))).scalars())
            threads.update(conn.execute(select(s.dummies.c.thread_id)
                                        .where(s.dummies.c.message_id.in_(part))).scalars())
            for pk, tid in conn.execute(select(m.id, m.thread_id).join(s.refs, r.message == m.id)
                                        .where(r.ref_id.in_(part))):
                wanted.add(pk)
                threads.add(tid)
        whole: set[str] = set()   # subjects every thread of which is an input already
        for key, dates in hosts.items():
            found, entire = self._subject_threads(conn, key, dates)
            threads.update(found)
            if entire:
                whole.add(key)
        threads.discard(None)
        for part in _chunks(sorted(threads)):
            wanted.update(conn.execute(select(m.id).where(m.thread_id.in_(part))).scalars())
        # Every reply without references among them (a new one, or one in a thread a new
        # message changes) brings the threads it may join: a new message can change which of
        # its subject's threads began last before it (a stand-in root, keyed by its first
        # reply's date, gets its real and earlier root), and then it moves.
        others: set[str] = set()
        for part in _chunks(sorted(wanted)):
            for subject, date, pk in conn.execute(select(m.subject_norm, m.date, m.id).where(m.id.in_(part))
                                                  .where(m.is_reply, m.refs == "")):
                if subject.lower() not in whole:
                    others.update(self._host_threads(conn, subject, date, pk, threads))
        others -= threads | {None}
        for part in _chunks(sorted(others)):
            wanted.update(conn.execute(select(m.id).where(m.thread_id.in_(part))).scalars())
        return self._inputs(conn, sorted(wanted))

    def _host_threads(self, conn: Connection, subject: str, date: datetime | None, pk: int,
                      besides: set[str] = frozenset()) -> list[str]:
        """Return the threads a reference-less reply (dated date, row pk) may join: of its
        subject, the latest host that sorts before it and the first (thread.py picks between
        them, by the key it sorts hosts by, which threads keep as host_date and host_order),
        passing over those in besides (inputs already, whose beginnings new messages may move)."""
        found = []
        values = {"key": subject.lower(), "date": date or UNDATED, "order": pk,
                  # At most len(besides) rows are passed over before one that is not among them.
                  "n": len(besides) + 1}
        for query in (_ASKED.first_hosts, _ASKED.hosts_before):
            found += [tid for tid in conn.execute(query, values).scalars() if tid not in besides][:1]
        return found

    def _subject_threads(self, conn: Connection, key: str, dates: list[datetime | None]) -> tuple[list[str], bool]:
        """Return the threads whose replies without references new messages of this subject
        may take over, and whether they are all the subject's threads. Such a reply lives in
        its host's thread, and a new message can only take the replies dated after it from a
        host that sorts before it (by host_date, as thread.py sorts hosts): so, for each run
        of the new messages' dates, the threads of the subject that hold a message dated from
        the run's start on and whose host sorts by its end (and the subject's first thread,
        host of replies older than every thread, and its undated threads). Bounded by the
        batch's dates, not by how often a subject recurs. Undated messages sort before all
        others: with one among the new messages, every thread of the subject."""
        asked = {"key": key}
        known = [d for d in dates if d is not None]
        if len(known) < len(dates):
            return list(conn.execute(_ASKED.subject, asked).scalars()), True
        head = conn.execute(_ASKED.head, asked).first()
        if head is None:
            return [], True
        # A subject with no post to host its replies without references leaves each of them a
        # thread of its own, whatever its date, and a new post takes every one: so when the
        # first thread's root is such a reply (as then every thread's is), all of them.
        if conn.execute(_ASKED.stray_root, {"root": head.root_id}).first():
            return list(conn.execute(_ASKED.subject, asked).scalars()), True
        first = [head.thread_id]
        # Ranges of one index each, not one query with OR: undated threads, then for each run of
        # new dates those active within it, which (in SQLite) (subject, span class, host date)
        # finds without reading every later or earlier thread of a common subject.
        found = first + list(conn.execute(_ASKED.undated, asked).scalars())
        spans = conn.dialect.name == "sqlite"
        for low, high in _date_runs(known):
            values = {"key": key, "low": low, "high": high}
            if spans:
                # A thread of span class c is hosted at most SPAN_DAYS[c] days before its last
                # date, so at most that (and a day to spare) before low.
                values.update({f"low{kind}": low - timedelta(days=days + 1) for kind, days in s.SPAN_DAYS.items()})
            found += conn.execute(_ASKED.active_spans if spans else _ASKED.active, values).scalars()
        return found, False

    def _inputs(self, conn: Connection, pks: list[int]) -> list[ThreadInput]:
        m = s.messages.c
        cols = (m.message_id, m.refs, m.subject_norm, m.is_reply, m.date, m.id)
        rows = (row for part in _chunks(pks) for row in
                conn.execute(select(*cols).where(m.id.in_(part)).order_by(m.id)))
        return [ThreadInput(message_id=mid, refs=tuple(refs.split()), subject_norm=subj,
                            is_reply=bool(reply), date=_aware(date), order=pk)
                for mid, refs, subj, reply, date, pk in rows]

    def write_threads(self, placements: list[Placement],
                      topics: Callable[[dict[str, list[dict[str, float]]]],
                                       dict[str, dict[str, float]]] | None = None) -> None:
        """Write placements: message thread/parent/depth, dummies, and thread summaries; with
        topics (per thread, its messages' tags -> the thread's topics), the topics of the
        threads too, in the same transaction: a crash never leaves a thread that changed with
        the topics of what it was before, which nothing would mend."""
        self._write(lambda conn: self._write_threads(conn, placements, topics), index=True, threads=True)

    def _write_threads(self, conn: Connection, placements: list[Placement], topics) -> int:
        """Write placements (see write_threads); return how many changed (thread, parent or depth)."""
        m = s.messages.c
        real = [p for p in placements if not p.dummy]
        placed: dict[str, tuple] = {}
        row: dict[str, int] = {}
        for part in _chunks([p.message_id for p in real]):
            for pk, mid, tid, pid, depth in conn.execute(
                    select(m.id, m.message_id, m.thread_id, m.parent_id, m.depth).where(m.message_id.in_(part))):
                placed[mid], row[mid] = (tid, pid, depth), pk
        # Only what moved is written: a batch re-threads every thread it touches, and most
        # of their messages stay where they were (rewriting them made threading the
        # slowest stage of an ingest). In row order, as every writer updates messages' rows.
        moved = sorted((p for p in real if placed.get(p.message_id) != (p.thread_id, p.parent_id, p.depth)),
                       key=lambda p: row.get(p.message_id, 0))
        old = {placed[p.message_id][0] for p in moved if p.message_id in placed} - {None}
        new = {p.thread_id for p in moved}
        affected = sorted(old | new)
        for part in _chunks(affected):
            conn.execute(s.dummies.delete().where(s.dummies.c.thread_id.in_(part)))
            conn.execute(s.threads.delete().where(s.threads.c.thread_id.in_(part)))
        if moved:
            conn.execute(update(s.messages).where(m.message_id == bindparam("mid"))
                         .values(thread_id=bindparam("tid"), parent_id=bindparam("pid"),
                                 depth=bindparam("dep"),
                                 # the index holds the thread id: a move means re-indexing
                                 indexed=case((m.thread_id == bindparam("tid"), m.indexed),
                                              else_=False)),
                         [{"mid": p.message_id, "tid": p.thread_id, "pid": p.parent_id,
                           "dep": p.depth} for p in moved])
        dummies = [{"message_id": p.message_id, "thread_id": p.thread_id,
                    "parent_id": p.parent_id, "depth": p.depth}
                   for p in placements if p.dummy and p.thread_id in old | new]
        if dummies:
            conn.execute(self._insert_ignore(s.dummies), dummies)
        # A thread nothing moved in or out of keeps its summary, stand-ins and topics; one
        # that lost all its messages keeps none.
        self._summarise(conn, affected)
        self._summarise_lists(conn, affected)
        if topics is not None:
            tags = self._tags_by_thread(conn, affected)
            self._write_thread_topics(conn, topics(tags), gone=set(affected) - set(tags))
        return len(moved)

    def _summarise(self, conn: Connection, thread_ids: list[str]) -> None:
        m = s.messages.c
        rows = []
        for part in _chunks(thread_ids):
            stats = conn.execute(select(m.thread_id, func.count(), func.min(m.date), func.max(m.date))
                                 .where(m.thread_id.in_(part)).group_by(m.thread_id)).all()
            # The thread's subject is its root's, or (under a stand-in) its earliest message's.
            # It is also the thread's key as a host of replies without references, as
            # thread.py sorts hosts: the root, or under a stand-in its first reply.
            first: dict[str, int] = {}
            hosted: dict[str, datetime] = {}
            for tid, pk, depth, date in conn.execute(
                    select(m.thread_id, m.id, m.depth, m.date).where(m.thread_id.in_(part))
                    .order_by(m.thread_id, m.depth, func.coalesce(m.date, UNDATED), m.id)):
                if tid not in first:
                    first[tid], hosted[tid] = pk, date or UNDATED
            roots = dict(conn.execute(select(m.thread_id, m.message_id)
                                      .where(m.thread_id.in_(part)).where(m.depth == 0)).all())
            heads = {pk: (subj, norm) for pk, subj, norm in conn.execute(
                select(m.id, m.subject, m.subject_norm).where(m.id.in_(list(first.values()))))}
            for tid, count, low, high in stats:
                subject, norm = heads[first[tid]]
                rows.append({"thread_id": tid, "root_id": roots.get(tid, ""), "subject": subject,
                             "subject_norm": norm, "subject_key": norm.lower(), "size": count,
                             "first_date": low, "last_date": high,
                             "host_date": hosted[tid], "host_order": first[tid]})
        if rows:
            conn.execute(s.threads.insert(), rows)

    def recount_lists(self) -> int:
        """Count every thread's messages in each list anew (thread_lists), as revision 0004
        filled them; return how many rows changed. What threading, memberships and
        redactions keep up to date, made whole again (`archiver rethread` ends with it)."""
        tl = s.thread_lists.c
        columns = (tl.thread_id, tl.list, tl.size, tl.first_date, tl.last_date)

        def work(conn: Connection) -> int:
            before = set(map(tuple, conn.execute(select(*columns))))
            conn.execute(s.thread_lists.delete())
            self._summarise_lists(conn, conn.execute(select(s.threads.c.thread_id)).scalars())
            return len(before ^ set(map(tuple, conn.execute(select(*columns)))))
        # Under the threading lock (PostgreSQL): threading writes these rows too. What the
        # index holds does not change.
        return self._write(work, threads=True)

    def _summarise_lists(self, conn: Connection, thread_ids: Iterable[str]) -> None:
        """Count these threads' messages in each list anew (thread_lists), leaving out the
        redacted ones, as a list's page does."""
        m, ml, tl = s.messages.c, s.message_lists.c, s.thread_lists.c
        for part in _chunks(sorted(set(thread_ids))):
            conn.execute(s.thread_lists.delete().where(tl.thread_id.in_(part)))
            conn.execute(s.thread_lists.insert().from_select(
                ["thread_id", "list", "size", "first_date", "last_date"],
                select(m.thread_id, ml.list, func.count(), func.min(m.date), func.max(m.date))
                .join(s.message_lists, ml.message == m.id)
                .where(m.thread_id.in_(part), m.message_id.not_in(select(s.redactions.c.message_id)))
                .group_by(m.thread_id, ml.list)))

    # --- topics -------------------------------------------------------------------------
    def message_tags_by_thread(self, thread_ids: list[str]) -> dict[str, list[dict[str, float]]]:
        """Return, per thread, one {topic: score} per message (empty for untagged messages)."""
        with self.engine.connect() as conn:
            return self._tags_by_thread(conn, thread_ids)

    def _tags_by_thread(self, conn: Connection, thread_ids: list[str]) -> dict[str, list[dict[str, float]]]:
        m, mt = s.messages.c, s.message_topics.c
        out: dict[str, dict[int, dict[str, float]]] = {}
        for part in _chunks(thread_ids):
            for tid, pk, topic, score in conn.execute(
                    select(m.thread_id, m.id, mt.topic, mt.score)
                    .outerjoin(s.message_topics, mt.message == m.id)
                    .where(m.thread_id.in_(part))):
                tags = out.setdefault(tid, {}).setdefault(pk, {})
                if topic is not None:
                    tags[topic] = score
        return {tid: list(by_pk.values()) for tid, by_pk in out.items()}

    def write_thread_topics(self, topics: dict[str, dict[str, float]]) -> None:
        self._write(lambda conn: self._write_thread_topics(conn, topics), threads=True)

    def retopic(self, thread_ids: list[str], topics: Callable[[dict[str, list[dict[str, float]]]],
                                                              dict[str, dict[str, float]]]) -> None:
        """Give threads the topics `topics` makes of their messages' tags, read and written in
        one threading transaction (see rethread): a thread an ingest changes meanwhile gets
        the topics of what it holds after, not of what it held before."""
        self._write(lambda conn: self._write_thread_topics(conn, topics(self._tags_by_thread(conn, thread_ids))),
                    threads=True)

    def _write_thread_topics(self, conn: Connection, topics: dict[str, dict[str, float]],
                             gone: set[str] = frozenset()) -> None:
        tt = s.thread_topics.c
        for part in _chunks(sorted(set(topics) | set(gone))):
            conn.execute(s.thread_topics.delete().where(tt.thread_id.in_(part)))
        rows = [{"thread_id": tid, "topic": slug, "weight": weight}
                for tid, tags in topics.items() for slug, weight in tags.items()]
        if rows:
            conn.execute(s.thread_topics.insert(), rows)

    def iter_texts(self, chunk: int = 2000) -> Iterator[list[tuple[int, str, str]]]:
        """Yield (row id, own words, subject) of every message, a chunk at a time."""
        m = s.messages.c
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = [(pk, self.unpack_texts(data, raw)["own_text"], subject)
                        for pk, data, raw, subject in conn.execute(
                            select(m.id, s.texts.c.data, s.raws.c.data, m.subject)
                            .outerjoin(s.texts, s.texts.c.message == m.id)
                            .outerjoin(s.raws, s.raws.c.sha256 == m.raw_sha256)
                            .where(m.id > last).order_by(m.id).limit(chunk))]
            if not rows:
                return
            last = rows[-1][0]
            yield rows

    def replace_message_tags(self, tags: dict[int, dict[str, float]]) -> int:
        """Store new tags for messages whose tags changed (and mark them for re-indexing)."""
        return self._write(lambda conn: self._replace_message_tags(conn, tags), index=True)

    def _replace_message_tags(self, conn: Connection, tags: dict[int, dict[str, float]]) -> int:
        mt = s.message_topics.c
        old: dict[int, dict[str, float]] = {}
        for part in _chunks(sorted(tags)):
            for pk, topic, score in conn.execute(select(mt.message, mt.topic, mt.score)
                                                 .where(mt.message.in_(part))):
                old.setdefault(pk, {})[topic] = score
        changed = sorted(pk for pk, new in tags.items() if new != old.get(pk, {}))
        for part in _chunks(changed):
            conn.execute(s.message_topics.delete().where(mt.message.in_(part)))
            conn.execute(update(s.messages).where(s.messages.c.id.in_(part)).values(indexed=False))
        rows = [{"message": pk, "topic": slug, "score": score}
                for pk in changed for slug, score in tags[pk].items()]
        if rows:
            # An upsert: a second retag at once may have put the same pair back since the delete.
            insert = self._insert(s.message_topics)
            conn.execute(insert.on_conflict_do_update(index_elements=[mt.message, mt.topic],
                                                      set_={"score": insert.excluded.score}), rows)
        return len(changed)

    def thread_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(s.threads.c.thread_id)).scalars())

    # --- the search index's bookkeeping ---------------------------------------------------
    def unindexed(self, after: int = 0, limit: int = 1000, upto: int | None = None,
                  every: bool = False) -> list[tuple[int, str]]:
        """Return up to limit (row id, Message-ID) of messages the index does not hold as they
        are (with every, of all messages), in row order after the given row id (up to upto)."""
        m = s.messages.c
        query = select(m.id, m.message_id).where(m.id > after)
        if not every:
            query = query.where(m.indexed.is_(False))
        if upto is not None:
            query = query.where(m.id <= upto)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query.order_by(m.id).limit(limit))]

    def last_row(self) -> int:
        """The highest message row id (0 in an empty store). Rows are never deleted (a
        redaction keeps its row), so no later message gets a lower one."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(s.messages.c.id))).scalar_one() or 0

    def row_hash(self, pk: int) -> str | None:
        """The msg_hash of the message in a row (None: no such row)."""
        with self.engine.connect() as conn:
            return conn.execute(select(s.messages.c.msg_hash).where(s.messages.c.id == pk)).scalar()

    def id_ranges(self, parts: int, every: bool = False) -> list[tuple[int, int]]:
        """Split the messages not indexed as they are (with every, all messages) into at most
        parts ranges of row ids holding about as many each."""
        m = s.messages.c
        wanted = true() if every else m.indexed.is_(False)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(s.messages).where(wanted)).scalar_one()
            if not total:
                return []
            starts = sorted({conn.execute(select(m.id).where(wanted).order_by(m.id).limit(1)
                                          .offset(i * total // parts)).scalar_one()
                             for i in range(parts)})
            last = conn.execute(select(func.max(m.id)).where(wanted)).scalar_one()
        return [(low, high - 1) for low, high in zip(starts, starts[1:])] + [(starts[-1], last)]

    def mark_indexed(self, low: int, high: int) -> None:
        """Mark the messages of a row id range as indexed (inside indexing(): no write that
        changes what the index must hold lands between the index's commit and this)."""
        m = s.messages.c
        self._write(lambda conn: conn.execute(update(s.messages).where(m.id.between(low, high))
                                              .where(m.indexed.is_(False)).values(indexed=True)),
                    touch=False)

    def mark_all_indexed(self) -> None:
        self._write(lambda conn: conn.execute(update(s.messages).values(indexed=True)), touch=False)

    # --- redaction ----------------------------------------------------------------------
    def redact(self, message_id: str, reason: str, expunge: bool = False) -> bool:
        """Hide a message (and with expunge, delete its raw bytes and texts); log it. Return
        False when no such message is stored. The row stays, so it can never come back."""
        return self._write(lambda conn: self._redact(conn, message_id, reason, expunge), index=True,
                           threads=True)   # it changes its thread's counts (thread_lists)

    def _redact(self, conn: Connection, message_id: str, reason: str, expunge: bool) -> bool:
        m, r = s.messages.c, s.redactions.c
        row = conn.execute(select(m.id, m.raw_sha256, m.thread_id).where(m.message_id == message_id)).first()
        if row is None:
            return False
        # The latest redaction's reason wins; one of the same message at once waits for it.
        values = {"message_id": message_id, "reason": reason, "expunged": expunge,
                  "redacted_at": datetime.now(timezone.utc).replace(tzinfo=None)}
        conn.execute(self._insert(s.redactions).values(**values).on_conflict_do_update(
            index_elements=[r.message_id], set_=values))
        if expunge:
            conn.execute(update(s.texts).where(s.texts.c.message == row.id)
                         .values(data=pack_texts("", "", "", "", [], b"")))
            # The sha256 row stays (the same bytes seen again are known, not new).
            conn.execute(update(s.raws).where(s.raws.c.sha256 == row.raw_sha256)
                         .values(data=pack(b""), size=0))
        # The index must drop it: the next index update deletes what is redacted.
        conn.execute(update(s.messages).where(m.id == row.id).values(indexed=False))
        if row.thread_id is not None:
            self._summarise_lists(conn, [row.thread_id])
        return True

    def redactions(self) -> list[dict]:
        r = s.redactions.c
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(
                select(s.redactions).order_by(r.redacted_at, r.message_id))]

    # --- reading raw bytes ----------------------------------------------------------------
    def unpack_texts(self, packed: bytes | None, packed_raw: bytes | None) -> dict:
        """A message's texts and attachments from its texts row and its raw row, as stored."""
        return unpack_texts(packed, unpack(packed_raw, self.zdict()) if packed_raw else b"")

    def raw_bytes(self, sha256: str) -> bytes | None:
        with self.engine.connect() as conn:
            data = conn.execute(select(s.raws.c.data).where(s.raws.c.sha256 == sha256)).scalar()
        return unpack(data, self.zdict()) if data is not None else None


class ReadOnlyStore(Store):
    """Open a store only to read it: a hot standby of a PostgreSQL store (the web's
    replica_url). Nothing is created or written on opening (the schema's revision is read, and
    must be this archiver's); the database's sessions are read-only, and a write through this
    object is refused before it reaches SQL."""

    read_only = True

    def __init__(self, url: str):
        from .migrations import read_status

        self.engine, shown = _engine(url, "replica", read_only=True)
        try:
            found = read_status(self.engine)
        except OperationalError as exc:
            self.engine.dispose()
            raise StoreError(f"cannot open replica {shown}: {exc.orig}") from exc
        if found.state != "current":
            self.engine.dispose()   # a replica refused keeps no connection open
            raise StoreError(f"cannot read replica {shown}: {found.describe()}")
        self._zdict = b""


def _engine(url: str, what: str, read_only: bool) -> tuple[Engine, str]:
    """Return the engine of a store's URL and the URL as messages may show it (no password).
    In PostgreSQL each connection's work is one snapshot, as _sqlite_begin makes it in SQLite:
    a page read while an ingest commits sees the store before or after it. Read-only, the
    server refuses any write too, on a standby (which would anyway) and on a primary alike."""
    shown = f"the {what}"   # a URL SQLAlchemy cannot read is not repeated: it may hold a password
    try:
        parsed = make_url(url)
        shown = repr(parsed.render_as_string(hide_password=True))
        options: dict = {}
        if parsed.get_backend_name() == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
            if read_only:
                given = parsed.query.get("options", "")
                options["connect_args"] = {
                    "options": f"{given} -c default_transaction_read_only=on".strip()}
        # The connection returned last is handed out first: one after another, an ingest's
        # steps use one connection and its page cache, not each of the pool's in turn (with
        # ingest_cache_mb, five caches of 64 MB, each as cold as the others).
        options["pool_use_lifo"] = True
        engine = create_engine(parsed, **options)
    except Exception as exc:  # SQLAlchemy raises several unrelated types for a bad URL or driver
        raise StoreError(f"cannot open {what} {shown}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_read_only if read_only else _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine, shown


def _message_row(entry: Entry) -> dict:
    msg = entry.message
    return {
        "message_id": msg.message_id, "msg_hash": message_hash(msg.message_id),
        "synthetic_id": msg.synthetic_id, "raw_sha256": entry.sha256,
        "subject": msg.subject, "subject_norm": msg.subject_norm,
        "subject_key": msg.subject_norm.lower(), "is_reply": entry.is_reply,
        "from_name": msg.from_name, "from_address": msg.from_address,
        "from_key": person_key(msg.from_address) if msg.from_address else "",
        "date": _naive_utc(msg.date), "date_offset": msg.date_offset,
        "in_reply_to": msg.in_reply_to, "refs": " ".join(msg.thread_refs),
        "content_type": msg.content_type,
        "charset": msg.charset, "language": msg.language,
        "degraded": " ".join(msg.degraded), "archive_url": entry.raw.archive_url,
    }


def attachment_list(msg: Message) -> list[dict]:
    """A message's attachments as stored and exported: filename, content type, size, URL."""
    return [dict(a.__dict__) for a in msg.attachments]


def _sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE of a database error (psycopg 3 and psycopg2 name it differently)."""
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value else None


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    # A writer waits for another process's write transaction (a batch, a threading step, a
    # first open making the schema) to commit, up to a minute, instead of the driver's five
    # seconds. First: setting the journal mode below waits for that lock too.
    cursor.execute("PRAGMA busy_timeout=60000")
    # WAL lets readers (the web app) run while an ingest commits; NORMAL is durable at commit
    # boundaries in WAL mode, which is what a batch needs.
    _journal_mode_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # Transactions are begun by _sqlite_begin, not by the driver (which begins one only before
    # a write, so that each read statement outside one sees the latest commit).
    dbapi_conn.isolation_level = None


def _journal_mode_wal(cursor, wait: float = 60.0) -> None:
    """Set WAL mode, waiting up to `wait` seconds for a lock. SQLite answers "database is
    locked" at once, without its busy handler, where waiting could deadlock (a connection
    that read the new file while another makes the schema in it): tried again until then."""
    deadline = time.monotonic() + wait
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# New messages of a subject more than this far apart are looked up as separate runs of dates.
DATE_RUN_GAP = timedelta(days=31)


def _date_runs(dates: list[datetime]) -> list[tuple[datetime, datetime]]:
    """The dates as runs, each of dates within DATE_RUN_GAP of the one before: (first, last)
    of each. A new message can only take replies from threads active at its own date, so the
    union of each run's threads holds them all; one range from the earliest to the latest
    date held every thread between, and a batch that ended one list's archive and began the
    next (2068, then 2012) re-threaded every thread of its subjects (52 s and 457 MB for one
    batch into 1,150,000 messages, now 5.2 s and 226 MB)."""
    runs: list[list[datetime]] = []
    for date in sorted(dates):
        if runs and date - runs[-1][1] <= DATE_RUN_GAP:
            runs[-1][1] = date
        else:
            runs.append([date, date])
    return [(low, high) for low, high in runs]


def _threading_questions() -> SimpleNamespace:
    """Threading's small questions, asked once or twice for each subject and reply of a batch:
    built once, with their values bound at each asking. Building the statement each time
    cost SQLAlchemy about 150 us a question (the active threads' question: 190 us built, 46
    us prepared, 28 us as SQLite alone)."""
    t, m = s.threads.c, s.messages.c
    subject = select(t.thread_id).where(t.subject_key == bindparam("key"))
    # host_date, not first_date: an undated root sorts first, whatever its replies' dates.
    active = subject.where(t.last_date >= bindparam("low", type_=DateTime),
                           t.host_date <= bindparam("high", type_=DateTime))
    # In SQLite, by span class (schema.SPAN_CLASS, written as the index has it), each a range
    # of host dates but the last.
    span = literal_column(s.SPAN_CLASS)
    spans = [active.where(span == kind, t.host_date >= bindparam(f"low{kind}", type_=DateTime))
             for kind in s.SPAN_DAYS]
    n = bindparam("n", type_=Integer)
    return SimpleNamespace(
        subject=subject,
        head=(select(t.thread_id, t.root_id).where(t.subject_key == bindparam("key"))
              .order_by(t.host_date, t.host_order).limit(1)),
        stray_root=select(m.id).where(m.message_id == bindparam("root"), m.is_reply, m.refs == ""),
        undated=subject.where(t.first_date.is_(None)),
        active=active,
        active_spans=union_all(*spans, active.where(span == max(s.SPAN_DAYS) + 1)),
        first_hosts=subject.order_by(t.host_date, t.host_order).limit(n),
        hosts_before=(subject.where(tuple_(t.host_date, t.host_order)
                                    <= tuple_(bindparam("date", type_=DateTime), bindparam("order", type_=Integer)))
                      .order_by(t.host_date.desc(), t.host_order.desc()).limit(n)))


_ASKED = _threading_questions()


def _sqlite_cache(megabytes: int, pid: int) -> Callable:
    def pragma(dbapi_conn, _record) -> None:
        if os.getpid() != pid:
            return   # a forked child of the process that asked
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA cache_size=-{int(megabytes) * 1024}")   # negative: in KiB
        # The write-ahead log is copied into the database (and synced) when it holds this many
        # pages (of 4 KiB); at SQLite's 1,000, that was after nearly every batch. As many as the
        # cache holds: a hot index page rewritten by several batches is copied once.
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(megabytes) * 256}")
        cursor.close()
    return pragma


def _sqlite_read_only(dbapi_conn, _record) -> None:
    # query_only: any write through the connection fails. The journal mode is the writer's
    # to set (changing it is a write).
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()
    dbapi_conn.isolation_level = None   # transactions are begun by _sqlite_begin


def _sqlite_begin(conn) -> None:
    """Begin every connection's work with BEGIN, reads included: what a reader does in one
    connection (a thread page: its summary, then its messages) is one snapshot of the store,
    from before an ingest's commit or after it, never both. In WAL mode readers still never
    wait for the writer. (The SQLAlchemy documentation's recipe for pysqlite.) A write
    transaction (Store._write) begins IMMEDIATE, taking the write lock first: a deferred one
    that read before another process committed could not write after it (SQLITE_BUSY)."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("store_write") else "BEGIN")
