"""Read-only facade over the store, used by the web app, the CLI and exports."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Iterator

from sqlalchemy import func, select, true

from . import config
from .browse import FLAT_PAGE, LIST_PAGE, Browse, _shown, iso  # noqa: F401  (page sizes, for the web)
from .errors import ArchiverError
from . import schema as s
from .index import Found, open_index
from .querylang import MAX_QUERY  # noqa: F401  (the web bounds queries by it)
from .sqltime import by_date
from .orgs import Organisations, load_organisations
from .packing import unpack_texts
from .store import CHUNK, ReadOnlyStore, Store
from .topics import cached_taxonomy


def open_store(data: Path, database_url: str | None = None) -> Store:
    """Open the store of a data directory (or the given URL): one per process, shared by threads."""
    return Store(config.database_url(data, database_url))


def open_replica(url: str) -> Store:
    """Open a read-only replica of the store (replica_url): an Archive over it reads pages,
    stats and searches there, and nothing can write through it."""
    return ReadOnlyStore(url)


class Archive(Browse):
    """Read access to one archive: its store and its search index."""

    def __init__(self, store: Store, index_dir: Path | None = None,
                 organisations: Organisations | None = None):
        self.store = store
        self.engine = store.engine
        # Lists this reader may not see (the web sets it per request from the login).
        self.hidden: frozenset[str] = frozenset()
        # The search backend is the configuration's choice (search_backend); pages and
        # commands call the same methods on either.
        self.index = (open_index(index_dir, self.engine, store.engine, config.get("search_backend"))
                      if index_dir else None)
        self.organisations = organisations or load_organisations(str(config.path("organisations_file")))

    def note_index_bound(self, row: int) -> None:
        """Note that the search index holds no message from a store row above row, keyed by
        that row's message (SearchIndex.bound)."""
        self.index.note_bound(row, self.store.row_hash(row) or "")

    def lists(self) -> list[dict]:
        """Return each list with its message count."""
        return [dict(row) for row in self._counted(("lists",), self._lists)]

    def _lists(self) -> list[dict]:
        ml = s.message_lists.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.lists.c.name, func.count(ml.message))
                                .select_from(s.lists.outerjoin(s.message_lists, ml.list == s.lists.c.id))
                                .group_by(s.lists.c.name).order_by(s.lists.c.name)).all()
        return [{"name": name, "messages": count} for name, count in rows if name not in self.hidden]

    def stats(self) -> dict:
        """Return counts of lists, messages, threads, participants, rejects, and the date range."""
        found = self._counted(("stats",), self._stats)
        return {**found, "lists": [dict(row) for row in found["lists"]]}

    def _stats(self) -> dict:
        m = s.messages.c
        with self.engine.connect() as conn:
            one = lambda q: conn.execute(q).scalar_one()  # noqa: E731
            # A reader who may not see some lists gets counts of what they may see.
            seen = _shown(m, self.hidden) if self.hidden else true()
            low, high = conn.execute(select(func.min(m.date), func.max(m.date)).where(seen)).one()
            return {
                "lists": self.lists(),
                "messages": one(select(func.count()).select_from(s.messages).where(seen)),
                "threads": (one(select(func.count(func.distinct(m.thread_id))).where(seen))
                            if self.hidden else one(select(func.count()).select_from(s.threads))),
                "participants": one(select(func.count(func.distinct(m.from_address)))
                                    .where(m.from_address != "", seen)),
                "degraded": one(select(func.count()).where(m.degraded != "")),
                "rejected": one(select(func.count()).select_from(s.rejected)),
                "raw_bytes": one(select(func.coalesce(func.sum(s.raws.c.size), 0))),
                "first_date": iso(low), "last_date": iso(high),
            }

    def messages(self, list_name: str | None = None) -> Iterator[dict]:
        """Yield every message (of one list, or all) in date order, as export records."""
        m = s.messages.c
        query = select(s.messages).order_by(by_date(m.date), m.id)
        if list_name is not None:
            query = query.where(m.id.in_(
                select(s.message_lists.c.message).join(s.lists, s.lists.c.id == s.message_lists.c.list)
                .where(s.lists.c.name == list_name)))
        with self.engine.connect() as conn:
            # Stream: rows are fetched as they are written out, memory stays flat. A reader
            # that stops early closes the result: in PostgreSQL it is a server-side cursor.
            with conn.execution_options(stream_results=True, yield_per=CHUNK).execute(query) as result:
                for batch in result.partitions(CHUNK):
                    yield from self._records(conn, batch)

    def records(self, message_ids: list[str]) -> list[dict]:
        """Return the records of these messages (those that exist), in the order given."""
        m = s.messages.c
        found: dict[str, dict] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(message_ids), CHUNK):
                rows = conn.execute(select(s.messages)
                                    .where(m.message_id.in_(message_ids[i:i + CHUNK]))).all()
                found.update((r["message_id"], r) for r in self._records(conn, rows))
        return [found[mid] for mid in message_ids if mid in found]

    def _records(self, conn, rows) -> Iterator[dict]:
        """Records of stored rows; redacted messages are left out (pages, feeds, exports and
        search all read through here)."""
        hidden = self._redacted(conn, [row.message_id for row in rows])
        rows = [row for row in rows if row.message_id not in hidden]
        extra = self._extras(conn, [row.id for row in rows])
        topics = self._topics(conn, [row.id for row in rows])
        texts = self._texts(conn, [row.id for row in rows])
        for row in rows:
            lists, sources = extra.get(row.id, ([], []))
            if self.hidden:
                if lists and set(lists) <= self.hidden:
                    continue   # only in lists this reader may not see
                lists = [name for name in lists if name not in self.hidden]
                sources = [src for src in sources if src["list"] not in self.hidden]
            record = _record(row, lists, sources, texts.get(row.id))
            record["organisation"] = self.organisations.of(row.from_address)
            record["topics"] = topics.get(row.id, [])
            yield record

    def _topics(self, conn, pks: list[int]) -> dict[int, list[str]]:
        mt = s.message_topics.c
        found: dict[int, list[tuple[float, str]]] = {}
        for pk, topic, score in conn.execute(select(mt.message, mt.topic, mt.score)
                                             .where(mt.message.in_(pks))):
            found.setdefault(pk, []).append((-score, topic))
        return {pk: [t for _, t in sorted(items)] for pk, items in found.items()}

    def topics(self, slug: str | None = None) -> list[dict]:
        """Return the agenda's topics in programme order, with message and thread counts (or
        only the topic of that slug, counted by its own index entries)."""
        taxonomy = cached_taxonomy(config.path("topics_file"))
        chosen = [t for t in taxonomy.topics if slug is None or t.slug == slug]
        if not chosen:
            return []
        mt, tt = s.message_topics.c, s.thread_topics.c
        with self.engine.connect() as conn:
            counted = select(mt.topic, func.count())
            threads_counted = select(tt.topic, func.count())
            if slug is not None:
                counted, threads_counted = counted.where(mt.topic == slug), threads_counted.where(tt.topic == slug)
            if self.hidden:
                m = s.messages.c
                counted = counted.join(s.messages, m.id == mt.message).where(_shown(m, self.hidden))
            messages = dict(conn.execute(counted.group_by(mt.topic)).all())
            threads = dict(conn.execute(threads_counted.group_by(tt.topic)).all())
        return [{"slug": t.slug, "label": t.label, "day": t.day, "session": t.session,
                 "session_title": t.session_title, "bullets": list(t.bullets),
                 "messages": messages.get(t.slug, 0), "threads": threads.get(t.slug, 0)}
                for t in chosen]

    def search(self, text: str, *, page: int = 1, per_page: int = 20, sort: str = "relevance",
               by_thread: bool = False) -> dict:
        """Search the index; return the total, pages, facets and hits with their records."""
        if self.index is None:
            raise ArchiverError("this archive has no search index")

        records: dict[str, dict] = {}   # the hits' records, read once for snippets and hits

        def texts(ids: list[str]) -> dict[str, tuple[str, str, str]]:
            records.update((r["message_id"], r) for r in self.records(ids))
            return {mid: (r["own_text"], r["quoted_text"], r["language"]) for mid, r in records.items()}

        found: Found = self.index.search(text, page=page, per_page=per_page, sort=sort,
                                         by_thread=by_thread, texts=texts, lists=self._visible())
        hits = []
        for hit in found.hits:
            record = records.get(hit.message_id)
            if record is None:
                continue  # indexed but gone from the store: the next update drops it
            hits.append({"message_id": hit.message_id, "msg_hash": record["msg_hash"],
                         "thread_id": record["thread_id"],
                         "score": hit.score, "date": record["date"],
                         "from_name": record["from_name"], "from_address": record["from_address"],
                         "organisation": record["organisation"], "subject": record["subject"],
                         "lists": record["lists"], "topics": record["topics"],
                         "language": record["language"], "snippet": hit.snippet})
        return {"query": text, "total": found.total, "page": found.page, "pages": found.pages,
                "per_page": found.per_page, "sort": sort, "by_thread": by_thread,
                "facets": {k: [{"value": v, "count": c} for v, c in items
                               if not (k == "list" and v in self.hidden)]
                           for k, items in found.facets.items()},
                "hits": hits}

    def _extras(self, conn, pks: list[int]) -> dict:
        lists: dict[int, list[str]] = {}
        for pk, name in conn.execute(select(s.message_lists.c.message, s.lists.c.name)
                                     .join(s.lists, s.lists.c.id == s.message_lists.c.list)
                                     .where(s.message_lists.c.message.in_(pks))):
            lists.setdefault(pk, []).append(name)
        by_pk: dict[int, list[dict]] = {}
        c = s.sources.c
        for pk, lst, kind, where, url in conn.execute(
                select(c.message, c.list, c.kind, c.location, c.archive_url)
                .where(c.message.in_(pks)).order_by(c.id)):
            by_pk.setdefault(pk, []).append({"list": lst, "kind": kind, "location": where,
                                             "archive_url": url})
        return {pk: (sorted(lists.get(pk, [])), by_pk.get(pk, [])) for pk in pks}

    def _redacted(self, conn, message_ids: list[str]) -> dict[str, str]:
        """Return the redaction reason of each of these messages that is redacted."""
        r = s.redactions.c
        found: dict[str, str] = {}
        for i in range(0, len(message_ids), CHUNK):
            found.update(conn.execute(select(r.message_id, r.reason)
                                      .where(r.message_id.in_(message_ids[i:i + CHUNK]))).all())
        return found

    def raw(self, message_id: str) -> bytes | None:
        """Return a stored message's original bytes (None when it is missing or redacted)."""
        with self.engine.connect() as conn:
            if self._redacted(conn, [message_id]):
                return None
            sha = conn.execute(select(s.messages.c.raw_sha256)
                               .where(s.messages.c.message_id == message_id)).scalar()
        return self.store.raw_bytes(sha) if sha is not None else None

    def rejected(self) -> list[dict]:
        """Return every rejected message's reason and where it came from."""
        r = s.rejected.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(r.raw_sha256, r.reason, r.list, r.location).order_by(r.id)).all()
        return [dict(row._mapping) for row in rows]

    def search_ids(self, text: str, *, limit: int, sort: str = "relevance",
                   by_thread: bool = False) -> tuple[int, list[str]]:
        """Return a search's match count (threads, by_thread) and its first `limit` message ids
        in the search's order (for exports and feeds: all hits, no facets or snippets)."""
        if self.index is None:
            raise ArchiverError("this archive has no search index")
        return self.index.match_ids(text, limit=limit, sort=sort, by_thread=by_thread,
                                    lists=self._visible())

    def _visible(self) -> list[str] | None:
        """The lists this reader may see, for the search to keep to them (None: every list),
        so totals and facets never count a message of a list they may not. The search adds
        them to the parsed query, never to its text: nothing typed can step outside them."""
        if not self.hidden:
            return None
        with self.engine.connect() as conn:
            return [n for n in conn.execute(select(s.lists.c.name)).scalars() if n not in self.hidden]

    def thread_message_ids(self, thread_id: str, limit: int) -> list[str]:
        """Return up to `limit` message ids of a thread in date order; exports read the
        records in chunks from these, so a long thread never sits in memory whole."""
        m = s.messages.c
        with self.engine.connect() as conn:
            return list(conn.execute(select(m.message_id).where(m.thread_id == thread_id)
                                     .order_by(by_date(m.date), m.id).limit(limit)).scalars())

    # --- research exports (archiver/dataset.py) ----------------------------------------------
    def scoped_records(self, *, list_name: str | None = None, thread_id: str | None = None,
                       topic: str | None = None, from_key: str | None = None,
                       since: datetime | None = None, until: datetime | None = None) -> Iterator[dict]:
        """Yield the records of a list, thread, topic (messages tagged with it) or person, sent
        in [since, until) (UTC, naive), in date order, streamed in chunks."""
        m = s.messages.c
        query = self._in_list(select(s.messages), list_name)
        if thread_id is not None:
            query = query.where(m.thread_id == thread_id)
        if topic is not None:
            query = query.where(m.id.in_(select(s.message_topics.c.message)
                                         .where(s.message_topics.c.topic == topic)))
        if from_key is not None:
            query = query.where(m.from_key == from_key)
        if since is not None:
            query = query.where(m.date >= since)
        if until is not None:
            query = query.where(m.date < until)
        with self.engine.connect() as conn:
            with conn.execution_options(stream_results=True, yield_per=CHUNK).execute(
                    query.order_by(by_date(m.date), m.id)) as result:   # closed if left early, as above
                for batch in result.partitions(CHUNK):
                    yield from self._records(conn, batch)

    def senders(self, message_ids: list[str]) -> dict[str, tuple[str, str]]:
        """Return (from_address, from_name) of each of these messages that is stored."""
        m = s.messages.c
        found: dict[str, tuple[str, str]] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(message_ids), CHUNK):
                found.update((mid, (address, name)) for mid, address, name in conn.execute(
                    select(m.message_id, m.from_address, m.from_name)
                    .where(m.message_id.in_(message_ids[i:i + CHUNK]))))
        return found

    def thread_senders(self, thread_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
        """Return each thread's distinct (from_address, from_name) pairs (pseudonymised exports
        mask the names of a thread's participants in its texts)."""
        m = s.messages.c
        found: dict[str, list[tuple[str, str]]] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(thread_ids), CHUNK):
                for tid, address, name in conn.execute(
                        select(m.thread_id, m.from_address, m.from_name).distinct()
                        .where(m.thread_id.in_(thread_ids[i:i + CHUNK]))):
                    found.setdefault(tid, []).append((address, name))
        return found

    def source_rows(self, message_ids: list[str]) -> list[dict]:
        """Return where and when these messages were seen: list, kind, location, archive URL,
        seen_at (the `sources` rows, for an export's manifest)."""
        c, m = s.sources.c, s.messages.c
        rows: list[dict] = []
        with self.engine.connect() as conn:
            for i in range(0, len(message_ids), CHUNK):
                rows += [dict(r._mapping) for r in conn.execute(
                    select(m.message_id, c.list, c.kind, c.location, c.archive_url, c.seen_at)
                    .join(s.messages, m.id == c.message)
                    .where(m.message_id.in_(message_ids[i:i + CHUNK])).order_by(c.id))]
        return rows


def _record(row, lists: list[str], sources: list[dict], texts: dict[str, str] | None) -> dict:
    texts = texts or unpack_texts(None)
    return {
        "message_id": row.message_id, "msg_hash": row.msg_hash, "synthetic_id": row.synthetic_id,
        "lists": lists, "date": iso(row.date), "date_offset_minutes": row.date_offset,
        "from_name": row.from_name, "from_address": row.from_address,
        "subject": row.subject, "subject_norm": row.subject_norm,
        "thread_id": row.thread_id, "parent_id": row.parent_id, "depth": row.depth,
        "in_reply_to": row.in_reply_to, "references": row.refs.split(),
        "own_text": texts["own_text"], "quoted_text": texts["quoted_text"],
        "signature": texts["signature"], "footer": texts["footer"], "content_type": row.content_type, "charset": row.charset,
        "language": row.language,
        "attachments": texts["attachments"], "archive_url": row.archive_url,
        "raw_sha256": row.raw_sha256, "sources": sources,
        "degraded": row.degraded.split(),
    }
