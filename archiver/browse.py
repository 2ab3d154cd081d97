"""Read-only browsing queries (lists, months, threads, topics, people, what's new) for `Archive`."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timezone
from typing import Callable, TypeVar

from sqlalchemy import and_, func, select

from . import briefing, config
from . import schema as s
from .signons import is_statement, recognise, signers
from .sqltime import by_date, by_date_desc, month_key, week_key
from .store import CHUNK
from .topics import cached_taxonomy

THREAD_PAGE = 200      # messages of a thread drawn per page
LIST_PAGE = 30         # threads per page of a list, month, topic or what's new
FLAT_PAGE = 500        # messages per page of a month's date view or a person's page

T = TypeVar("T")


def month_range(month: str) -> tuple[datetime, datetime]:
    """Return the UTC start and end of a `YYYY-MM` month (ValueError when it is not one)."""
    start = datetime.strptime(month, "%Y-%m")
    if start.year >= 9999:
        raise ValueError(f"{month} is beyond the archive's calendar")
    end = datetime(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return start, end


def iso(value: datetime | None) -> str | None:
    return value.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def _naive(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def tree_order(items: list[dict]) -> list[dict]:
    """Order a thread's messages (and stand-ins) depth first, children by date; iterative, so
    a chain of any depth is drawn without recursion. Each item needs message_id, parent_id, date."""
    children: dict[str | None, list[dict]] = {}
    ids = {item["message_id"] for item in items}
    for item in items:
        parent = item["parent_id"] if item["parent_id"] in ids else None
        children.setdefault(parent, []).append(item)
    for kids in children.values():
        kids.sort(key=lambda i: (i["date"] or "", i["message_id"]))
    ordered: list[dict] = []
    stack = list(reversed(children.get(None, [])))
    seen: set[str] = set()
    while stack:
        item = stack.pop()
        if item["message_id"] in seen:   # a parent loop the threader missed: draw it once
            continue
        seen.add(item["message_id"])
        ordered.append(item)
        stack.extend(reversed(children.get(item["message_id"], [])))
    # Anything left is in a parent cycle with no way in from a root: show it at the end.
    ordered.extend(i for i in items if i["message_id"] not in seen)
    return ordered


def _shown(m, hidden: frozenset[str] = frozenset()):
    """The clause a reader sees messages through: never a redacted one, and (for a reader who
    may not see some lists) only messages in at least one list they may see."""
    clause = m.message_id.not_in(select(s.redactions.c.message_id))
    return and_(clause, _visible_only(m, hidden)) if hidden else clause


def _visible_only(m, hidden: frozenset[str]):
    """Only the list rule of `_shown`: in at least one list the reader may see."""
    ml = s.message_lists.c
    return m.id.in_(select(ml.message).join(s.lists, s.lists.c.id == ml.list)
                    .where(s.lists.c.name.not_in(sorted(hidden))))


# Counts over a whole archive (its stats, months, weeks, most active people, a topic's
# activity), by store, what was asked, the reader's hidden lists and the store's generation:
# the same for every reader until the next write, and shared by a process's threads. At
# 1,000,000 messages each took 0.5 to 2 s of SQL, on every view of the home, list, month,
# topic and stats pages.
_COUNTS: dict[tuple, object] = {}
_COUNTS_KEPT = 256
_COUNTING = threading.Lock()


def _walk_pays(reach: int, total: int, tagged: int) -> bool:
    """Whether to walk every row in date order, keeping those a filter holds, rather than sort
    the rows it holds: two ways to the same page. The walk reads about reach (offset + limit)
    times total / tagged rows before it has its page, the sort all tagged ones; so the walk
    wins unless the page is deep in a rare filter's rows."""
    return reach * total <= tagged * tagged


class Browse:
    """Mixed into `archiver.query.Archive`: needs `self.engine`, `self.organisations`, `_records`."""

    def _counted(self, what: tuple, count: Callable[[], T]) -> T:
        """Return count(), kept until the store's next write (see _COUNTS)."""
        store, generation = str(self.engine.url), self.store.generation()
        key = (store, what, self.hidden, generation)
        found = _COUNTS.get(key, _COUNTS)
        if found is _COUNTS:
            found = count()
            with _COUNTING:   # server threads insert at once
                # Counts of this store's earlier generations are never asked for again.
                for old in [k for k in _COUNTS if k[0] == store and k[3] != generation]:
                    del _COUNTS[old]
                _COUNTS[key] = found
                while len(_COUNTS) > _COUNTS_KEPT:   # the oldest first
                    del _COUNTS[next(iter(_COUNTS))]
        return found

    # --- lists and months --------------------------------------------------------------------
    def list_exists(self, name: str) -> bool:
        if name in self.hidden:
            return False   # a private list does not exist for a reader who may not see it
        with self.engine.connect() as conn:
            return conn.execute(select(s.lists.c.id).where(s.lists.c.name == name)).first() is not None

    def months(self, list_name: str | None = None) -> list[dict]:
        """Return the months with messages (newest first) and their message counts."""
        return [dict(row) for row in self._counted(("months", list_name), lambda: self._months(list_name))]

    def _months(self, list_name: str | None) -> list[dict]:
        m = s.messages.c
        month = month_key(m.date)
        query = select(month, func.count()).where(m.date.is_not(None), _shown(m, self.hidden))
        query = self._in_list(query, list_name).group_by(month).order_by(month.desc())
        with self.engine.connect() as conn:
            return [{"month": mo, "messages": n} for mo, n in conn.execute(query)]

    def _in_list(self, query, list_name: str | None):
        if list_name is None:
            return query
        ml = s.message_lists.c
        # A look-up per message the query reaches by its own index (a month's dates, a thread),
        # not the list's every message gathered first: at 1,000,000 messages that took 0.8 s
        # for a month's threads and 0.75 s for a list's newest 30 messages.
        chosen = select(s.lists.c.id).where(s.lists.c.name == list_name).scalar_subquery()
        return query.where(select(ml.message).where(ml.message == s.messages.c.id, ml.list == chosen).exists())

    # --- threads -----------------------------------------------------------------------------
    def threads(self, *, list_name: str | None = None, month: str | None = None,
                topic: str | None = None, since: datetime | None = None,
                limit: int = LIST_PAGE, offset: int = 0, oldest_first: bool = False) -> dict:
        """Return threads with messages in a list / month / topic / after a date: the total and
        one page of summaries, latest activity first (or, for a month, by first message)."""
        m = s.messages.c
        if not (list_name or month or since or self.hidden):
            return self._all_threads(limit, offset, oldest_first, topic)
        if list_name and not (month or since or topic or oldest_first):
            return self._list_threads(list_name, limit, offset)
        where = [m.thread_id.is_not(None), _shown(m, self.hidden)]
        if month:
            start, end = month_range(month)
            where += [m.date >= start, m.date < end]
        if since:
            where.append(m.date > _naive(since))
        if topic:
            where.append(m.thread_id.in_(select(s.thread_topics.c.thread_id)
                                         .where(s.thread_topics.c.topic == topic)))
        # Where dates bound the rows, grouped by an expression: by the column, SQLite reads
        # every message in thread order to group them without sorting, in place of the date
        # range (1.3 s for the last day's threads at 1,000,000 messages; under 1 ms so).
        thread = func.coalesce(m.thread_id, "") if month or since else m.thread_id
        base = self._in_list(select(thread.label("thread_id"), func.min(m.date).label("low"),
                                    func.max(m.date).label("high"), func.count().label("n"))
                             .where(and_(*where)), list_name).group_by(thread)
        order = ([by_date(func.min(m.date)), thread] if oldest_first
                 else [by_date_desc(func.max(m.date)), thread])
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
            rows = conn.execute(base.order_by(*order).limit(limit).offset(offset)).all()
            summaries = self._summaries(conn, [r.thread_id for r in rows])
        items = []
        for r in rows:
            summary = summaries.get(r.thread_id)
            if summary:
                items.append({**summary, "matching": r.n, "matching_first": iso(r.low),
                              "matching_last": iso(r.high)})
        return {"total": total, "threads": items}

    def _list_threads(self, list_name: str, limit: int, offset: int) -> dict:
        """A list's threads, latest activity there first, from their counts in each list
        (thread_lists): its messages there, redacted ones left out, as `threads` counts them.
        A list the reader may see holds only messages they may see."""
        tl = s.thread_lists.c
        if list_name in self.hidden:
            return {"total": 0, "threads": []}
        with self.engine.connect() as conn:
            list_id = conn.execute(select(s.lists.c.id).where(s.lists.c.name == list_name)).scalar()
            total = conn.execute(select(func.count()).where(tl.list == list_id)).scalar_one()
            rows = conn.execute(select(tl.thread_id, tl.size, tl.first_date, tl.last_date)
                                .where(tl.list == list_id)
                                .order_by(by_date_desc(tl.last_date), tl.thread_id)
                                .limit(limit).offset(offset)).all()
            summaries = self._summaries(conn, [r.thread_id for r in rows])
        return {"total": total, "threads": [
            {**summaries[r.thread_id], "matching": r.size, "matching_first": iso(r.first_date),
             "matching_last": iso(r.last_date)} for r in rows if r.thread_id in summaries]}

    def _all_threads(self, limit: int, offset: int, oldest_first: bool, topic: str | None) -> dict:
        """Every thread (or a topic's), from the threads table and its date indexes, without
        grouping their messages."""
        t, tt = s.threads.c, s.thread_topics.c
        order = ([by_date(t.first_date), t.thread_id] if oldest_first
                 else [by_date_desc(t.last_date), t.thread_id])
        chosen = select(t.thread_id)
        everything = select(func.count()).select_from(s.threads)
        with self.engine.connect() as conn:
            total = conn.execute(everything).scalar_one()
            if topic:
                tagged = conn.execute(select(func.count()).where(tt.topic == topic)).scalar_one()
                # Sorting the topic's threads took 75 ms for the first page of the commonest
                # topic at 1,000,000 messages; the walk, 0.2 ms.
                if _walk_pays(offset + limit, total, tagged):
                    chosen = chosen.where(select(tt.thread_id).where(tt.thread_id == t.thread_id,
                                                                     tt.topic == topic).exists())
                else:
                    chosen = chosen.join(s.thread_topics, tt.thread_id == t.thread_id).where(tt.topic == topic)
                total = tagged
            ids = list(conn.execute(chosen.order_by(*order).limit(limit).offset(offset)).scalars())
            summaries = self._summaries(conn, ids)
        return {"total": total, "threads": [
            {**summaries[tid], "matching": summaries[tid]["size"], "matching_first": summaries[tid]["first_date"],
             "matching_last": summaries[tid]["last_date"]} for tid in ids if tid in summaries]}

    def _summaries(self, conn, thread_ids: list[str]) -> dict[str, dict]:
        """Return thread summaries: subject, size, dates, participants, topics, lists."""
        t, m = s.threads.c, s.messages.c
        out: dict[str, dict] = {}
        labels = self.topic_labels()
        for i in range(0, len(thread_ids), CHUNK):
            part = thread_ids[i:i + CHUNK]
            for row in conn.execute(select(s.threads).where(t.thread_id.in_(part))):
                out[row.thread_id] = {"thread_id": row.thread_id, "subject": row.subject,
                                      "size": row.size, "first_date": iso(row.first_date),
                                      "last_date": iso(row.last_date), "participants": [],
                                      "topics": [], "lists": []}
            people: dict[str, Counter] = {}
            names: dict[str, str] = {}
            # In date order: among people with as many messages, the first to write comes
            # first (most_common keeps the order of insertion), whatever order the database
            # keeps its rows in (PostgreSQL's heap is not SQLite's rowid order).
            for tid, name, address, key in conn.execute(
                    select(m.thread_id, m.from_name, m.from_address, m.from_key)
                    .where(m.thread_id.in_(part), _shown(m, self.hidden))
                    .order_by(by_date(m.date), m.id)):
                people.setdefault(tid, Counter())[key] += 1
                names.setdefault(key, name or address.partition("@")[0] or "(unknown)")
            for tid, counts in people.items():
                if tid in out:
                    out[tid]["participants"] = [{"key": k, "name": names[k], "messages": n}
                                                for k, n in counts.most_common()]
            for tid, topic, weight in conn.execute(
                    select(s.thread_topics.c.thread_id, s.thread_topics.c.topic, s.thread_topics.c.weight)
                    .where(s.thread_topics.c.thread_id.in_(part))
                    .order_by(s.thread_topics.c.weight.desc(), s.thread_topics.c.topic)):
                if tid in out:
                    out[tid]["topics"].append({"slug": topic, "label": labels.get(topic, topic),
                                               "weight": round(weight, 3)})
            for tid, name in conn.execute(
                    select(m.thread_id, s.lists.c.name).distinct()
                    .join(s.message_lists, s.message_lists.c.message == m.id)
                    .join(s.lists, s.lists.c.id == s.message_lists.c.list)
                    .where(m.thread_id.in_(part))):
                if tid in out:
                    out[tid]["lists"].append(name)
        for tid, summary in list(out.items()):
            summary["lists"] = sorted(set(summary["lists"]) - self.hidden)
            if self.hidden:
                # A reader who may not see some lists sees the thread as far as they may.
                summary["size"] = sum(p["messages"] for p in summary["participants"])
                if not summary["size"]:
                    del out[tid]
        return out

    def thread_summary(self, thread_id: str) -> dict | None:
        with self.engine.connect() as conn:
            return self._summaries(conn, [thread_id]).get(thread_id)

    def thread(self, thread_id: str, *, page: int = 1, per_page: int = THREAD_PAGE) -> dict | None:
        """Return a thread: its summary, one page of its messages in tree order (records with
        `depth`; stand-ins for missing messages carry `missing: True`), and its neighbours."""
        m, d = s.messages.c, s.dummies.c
        with self.engine.connect() as conn:
            summary = self._summaries(conn, [thread_id]).get(thread_id)
            if summary is None:
                return None
            items = [{"message_id": mid, "parent_id": pid, "date": iso(date), "pk": pk}
                     for pk, mid, pid, date in conn.execute(
                         select(m.id, m.message_id, m.parent_id, m.date).where(m.thread_id == thread_id))]
            items += [{"message_id": mid, "parent_id": pid, "date": None, "pk": None, "missing": True}
                      for mid, pid in conn.execute(select(d.message_id, d.parent_id)
                                                   .where(d.thread_id == thread_id))]
            ordered = tree_order(items)
            depth: dict[str, int] = {}
            for item in ordered:
                depth[item["message_id"]] = depth.get(item["parent_id"], -1) + 1
            pages = max(1, -(-len(ordered) // per_page))
            shown = ordered[(page - 1) * per_page: page * per_page]
            pks = [i["pk"] for i in shown if i["pk"] is not None]
            rows = conn.execute(select(s.messages).where(m.id.in_(pks))).all() if pks else []
            records = {r["message_id"]: r for r in self._records(conn, rows)}
            gone = self._redacted(conn, [i["message_id"] for i in shown if i["pk"] is not None])
            messages = []
            for item in shown:
                record = records.get(item["message_id"]) or (
                    {"message_id": item["message_id"], "redacted": gone[item["message_id"]],
                     "date": item["date"], "msg_hash": None}
                    if item["message_id"] in gone else
                    # Stored but in no list this reader may see: a stand-in that names nothing.
                    {"message_id": None, "missing": True, "msg_hash": None}
                    if item["pk"] is not None else
                    {"message_id": item["message_id"], "missing": True, "msg_hash": None})
                messages.append({**record, "depth": depth[item["message_id"]]})
            t = s.threads.c
            row = conn.execute(select(t.first_date).where(t.thread_id == thread_id)).one()
            # The bound on first_date alone starts an index range: with only the OR, SQLite
            # walked the index from one end (all 200,000 threads of a 1,000,000-message archive).
            prev_id = conn.execute(select(t.thread_id).where(
                t.first_date <= row.first_date, (t.first_date < row.first_date) | (t.thread_id < thread_id))
                .order_by(t.first_date.desc(), t.thread_id.desc()).limit(1)).scalar()
            next_id = conn.execute(select(t.thread_id).where(
                t.first_date >= row.first_date, (t.first_date > row.first_date) | (t.thread_id > thread_id))
                .order_by(t.first_date, t.thread_id).limit(1)).scalar()
            near = self._summaries(conn, [x for x in (prev_id, next_id) if x])
        return {"thread": summary, "messages": messages, "page": page, "pages": pages,
                "count": len(ordered), "order": [i["message_id"] for i in ordered],
                "previous": near.get(prev_id), "next": near.get(next_id)}

    # --- messages ----------------------------------------------------------------------------
    def message(self, msg_hash: str) -> dict | None:
        """Return a message's record (by permalink hash) with its thread summary and position."""
        m = s.messages.c
        with self.engine.connect() as conn:
            row = conn.execute(select(s.messages).where(m.msg_hash == msg_hash)).first()
            if row is None:
                return None
            if self.hidden and conn.execute(select(m.id).where(
                    m.id == row.id, _visible_only(m, self.hidden))).first() is None:
                return None   # in no list this reader may see: it does not exist for them
            gone = self._redacted(conn, [row.message_id])
            if gone:
                # A tombstone: the reason and its thread, nothing of the message itself.
                return {"redacted": gone[row.message_id], "msg_hash": msg_hash,
                        "thread_id": row.thread_id, "date": iso(row.date)}
            record = next(self._records(conn, [row]), None)
            if record is None:
                return None   # in no list this reader may see
            summary = self._summaries(conn, [row.thread_id]).get(row.thread_id) if row.thread_id else None
            siblings = ([{"message_id": mid, "parent_id": pid, "date": iso(date), "msg_hash": h,
                         "from_name": name, "from_address": addr}
                        for mid, pid, date, h, name, addr in conn.execute(
                            select(m.message_id, m.parent_id, m.date, m.msg_hash, m.from_name,
                                   m.from_address).where(m.thread_id == row.thread_id, _shown(m, self.hidden)))]
                        if row.thread_id else [])
        ordered = [i for i in tree_order(siblings)]
        index = next((n for n, i in enumerate(ordered) if i["message_id"] == row.message_id), 0)
        parent = next((i for i in ordered if i["message_id"] == row.parent_id), None)
        return {"message": record, "thread": summary, "position": index + 1, "count": len(ordered),
                "previous": ordered[index - 1] if index > 0 else None,
                "next": ordered[index + 1] if index + 1 < len(ordered) else None,
                "parent": parent,
                "replies": [i for i in ordered if i["parent_id"] == row.message_id]}

    def message_hash_at(self, archive_url_tail: str) -> str | None:
        """Return the message whose original archive URL ends with `YYYY-Month/NNNNNN.html`."""
        m, c = s.messages.c, s.sources.c
        with self.engine.connect() as conn:
            # LIKE's wildcards in the tail are matched as themselves, never as patterns. ILIKE:
            # the list's name in any case, as SQLite's LIKE always did (PostgreSQL's LIKE is
            # case-sensitive).
            tail = archive_url_tail.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return conn.execute(select(m.msg_hash).join(s.sources, c.message == m.id)
                                .where(c.archive_url.ilike("%/" + tail, escape="\\"),
                                       c.list.not_in(sorted(self.hidden)), _shown(m, self.hidden))
                                .order_by(m.id).limit(1)).scalar()

    def latest(self, *, list_name: str | None = None, topic: str | None = None,
               thread_id: str | None = None, limit: int = 30) -> list[dict]:
        """Return the newest messages' records (of a list, topic or thread), newest first."""
        m = s.messages.c
        query = self._in_list(select(s.messages), list_name)
        mt = s.message_topics.c
        if thread_id:
            query = query.where(m.thread_id == thread_id)
        with self.engine.connect() as conn:
            if topic:
                tagged = conn.execute(select(func.count()).where(mt.topic == topic)).scalar_one()
                # Rows are numbered as they come and never deleted: the last number estimates
                # the count without counting a million rows (over, on PostgreSQL, by the
                # numbers inserts that found their row stored used up; it only picks a plan).
                total = conn.execute(select(func.max(m.id))).scalar() or 0
                # A topic's feed: gathering its every message to sort took 220 ms for the
                # commonest at 1,000,000 messages.
                if not thread_id and _walk_pays(limit, total, tagged):
                    query = query.where(select(mt.message).where(mt.message == m.id, mt.topic == topic).exists())
                else:
                    query = query.where(m.id.in_(select(mt.message).where(mt.topic == topic)))
            rows = conn.execute(query.order_by(by_date_desc(m.date), m.id.desc()).limit(limit)).all()
            return list(self._records(conn, rows))

    def thread_records(self, thread_id: str, limit: int) -> list[dict]:
        """Return up to `limit` records of a thread, in date order (for exports)."""
        m = s.messages.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.messages).where(m.thread_id == thread_id)
                                .order_by(by_date(m.date), m.id).limit(limit)).all()
            return list(self._records(conn, rows))

    def month_messages(self, list_name: str, month: str, *, limit: int = FLAT_PAGE,
                       offset: int = 0) -> dict:
        """Return a month's messages of a list in date order (the flat date view), one page."""
        m = s.messages.c
        start, end = month_range(month)
        query = self._in_list(select(m.msg_hash, m.thread_id, m.subject, m.from_name, m.from_address,
                                     m.from_key, m.date, m.depth)
                              .where(m.date >= start, m.date < end, _shown(m, self.hidden)), list_name)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            rows = conn.execute(query.order_by(by_date(m.date), m.id).limit(limit).offset(offset)).all()
        return {"total": total, "messages": [{**r._mapping, "date": iso(r.date)} for r in rows]}

    # --- topics ------------------------------------------------------------------------------
    def topic_labels(self) -> dict[str, str]:
        return {t.slug: t.label for t in cached_taxonomy(config.path("topics_file")).topics}

    def topic(self, slug: str, *, limit: int = LIST_PAGE, offset: int = 0) -> dict | None:
        """Return an agenda topic: its programme entry, threads (latest first), most active
        participants and organisations, and messages per week."""
        entry = next(iter(self.topics(slug)), None)
        if entry is None:
            return None
        people, weeks = self._counted(("topic", slug), lambda: self._topic_activity(slug))
        orgs: Counter = Counter()
        for _, _, address, n in people:
            org = self.organisations.of(address)
            if org:
                orgs[org] += n
        threads = self.threads(topic=slug, limit=limit, offset=offset)
        return {"topic": entry, "threads": threads["threads"], "total_threads": threads["total"],
                "participants": [{"key": k, "name": name or address.partition("@")[0],
                                  "organisation": self.organisations.of(address), "messages": n}
                                 for k, name, address, n in people[:15]],
                "organisations": [{"name": o, "messages": n} for o, n in orgs.most_common(15)],
                "weeks": [{"week": w, "messages": n} for w, n in weeks]}

    def _topic_activity(self, slug: str) -> tuple[list, list]:
        """A topic's participants and messages per week, counted by SQL over every tagged
        message (tens of thousands in a large archive): `topic` keeps them until a write."""
        mt, m = s.message_topics.c, s.messages.c
        # The tagged messages' ids from the topic's index alone: joined to messages here too,
        # each message was looked up twice (636 against 414 ms at 1,000,000 messages).
        tagged = select(mt.message).where(mt.topic == slug)
        week = week_key(m.date)
        with self.engine.connect() as conn:
            people = conn.execute(select(m.from_key, func.max(m.from_name), func.max(m.from_address),
                                         func.count()).where(m.id.in_(tagged), m.from_key != "", _shown(m, self.hidden))
                                  .group_by(m.from_key).order_by(func.count().desc(), m.from_key)).all()
            weeks = conn.execute(select(week, func.count())
                                 .where(m.id.in_(tagged), m.date.is_not(None), _shown(m, self.hidden))
                                 .group_by(week).order_by(week)).all()
        return [tuple(r) for r in people], [tuple(r) for r in weeks]

    def weekly_by_topic(self) -> dict:
        """Return messages per week (Monday) per topic, and untagged, for the stats page."""
        found = self._counted(("weekly",), self._weekly_by_topic)
        return {"weeks": list(found["weeks"]), "totals": dict(found["totals"]),
                "series": {topic: dict(weeks) for topic, weeks in found["series"].items()}}

    def _weekly_by_topic(self) -> dict:
        mt, m = s.message_topics.c, s.messages.c
        week = week_key(m.date)
        with self.engine.connect() as conn:
            tagged = conn.execute(select(week, mt.topic, func.count())
                                  .join(s.message_topics, mt.message == m.id)
                                  .where(m.date.is_not(None), _shown(m, self.hidden))
                                  .group_by(week, mt.topic)).all()
            totals = conn.execute(select(week, func.count()).where(m.date.is_not(None), _shown(m, self.hidden))
                                  .group_by(week)).all()
        weeks = sorted({w for w, _ in totals})
        series: dict[str, dict[str, int]] = {}
        for w, topic, n in tagged:
            series.setdefault(topic, {})[w] = n
        return {"weeks": weeks, "totals": dict(totals), "series": series}

    def top_participants(self, limit: int = 20, list_name: str | None = None) -> list[dict]:
        m = s.messages.c
        query = self._in_list(select(m.from_key, func.max(m.from_name), func.max(m.from_address),
                                     func.count().label("n")).where(m.from_key != "", _shown(m, self.hidden)), list_name)

        def count() -> list[tuple]:
            with self.engine.connect() as conn:
                return [tuple(row) for row in conn.execute(
                    query.group_by(m.from_key).order_by(func.count().desc(), m.from_key).limit(limit))]
        # Organisations are looked up after: the organisations file may change between writes.
        rows = self._counted(("people", limit, list_name), count)
        return [{"key": k, "name": name or addr.partition("@")[0],
                 "organisation": self.organisations.of(addr), "messages": n} for k, name, addr, n in rows]

    # --- people ------------------------------------------------------------------------------
    def person(self, key: str, *, limit: int = FLAT_PAGE, offset: int = 0) -> dict | None:
        """Return a participant: name, organisation, first and last dates, counts, and one page
        of their messages (own words only) grouped by topic, then thread."""
        m = s.messages.c
        with self.engine.connect() as conn:
            head = conn.execute(select(func.count(), func.min(m.date), func.max(m.date),
                                       func.max(m.from_address))
                                .where(m.from_key == key, _shown(m, self.hidden))).one()
            if not head[0]:
                return None
            names = [n for n, in conn.execute(select(m.from_name).where(m.from_key == key, _shown(m, self.hidden))
                                              .group_by(m.from_name).order_by(func.count().desc(), m.from_name))
                     if n]
            rows = conn.execute(select(s.messages).where(m.from_key == key, _shown(m, self.hidden))
                                .order_by(by_date(m.date), m.id).limit(limit).offset(offset)).all()
            records = list(self._records(conn, rows))
            summaries = self._summaries(conn, sorted({r["thread_id"] for r in records if r["thread_id"]}))
            dossier = self._dossier(conn, key)
        labels = self.topic_labels()
        groups: dict[str, dict[str, list[dict]]] = {}
        for record in records:
            topic = record["topics"][0] if record["topics"] else ""
            groups.setdefault(topic, {}).setdefault(record["thread_id"] or "", []).append(record)
        order = list(labels) + [""]
        return {"key": key, "name": names[0] if names else head[3].partition("@")[0],
                "names": names, "address": head[3], "organisation": self.organisations.of(head[3]),
                "messages": head[0], "first_date": iso(head[1]), "last_date": iso(head[2]),
                "threads": summaries, **dossier,
                "groups": [{"slug": slug, "label": labels.get(slug, "No agenda topic"),
                            "threads": [{"thread": summaries.get(tid), "thread_id": tid, "messages": msgs}
                                        for tid, msgs in groups[slug].items()]}
                           for slug in order if slug in groups]}

    def people_names(self, addresses: list[str]) -> dict[str, str]:
        """Return a name each address wrote under (pages show names, not addresses)."""
        m = s.messages.c
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            # One indexed row per address: grouping all of a prolific writer's messages to
            # choose a name costs more than the search the names are for.
            for address in addresses[:200]:
                name = conn.execute(select(m.from_name).where(m.from_address == address,
                                                              m.from_name != "").limit(1)).scalar()
                if name:
                    found[address] = name
        return found

    # --- for moderators: dossiers, sign-ons, briefings ----------------------------------------
    def _dossier(self, conn, key: str, shown: int = 20) -> dict:
        """A participant's dossier beyond their messages: messages per topic per month, threads
        they started, replies others sent to their messages, and statements they signed."""
        m, mt, t = s.messages.c, s.message_topics.c, s.threads.c
        labels = self.topic_labels()
        # Each message counts once, under its best-scored topic, as the page groups it.
        best: dict[int, tuple[float, str, str]] = {}
        for pk, when, topic, score in conn.execute(
                select(m.id, month_key(m.date), mt.topic, mt.score)
                .select_from(s.messages.outerjoin(s.message_topics, mt.message == m.id))
                .where(m.from_key == key, _shown(m, self.hidden))):
            mark = (score or 0.0, topic or "", when or "undated")
            if pk not in best or (mark[0], best[pk][1]) > (best[pk][0], mark[1]):
                best[pk] = mark
        counts: dict[str, Counter] = {}
        for _, topic, when in best.values():
            counts.setdefault(topic, Counter())[when] += 1
        months = sorted({mo for c in counts.values() for mo in c})
        over_time = [{"slug": slug, "label": labels.get(slug, "No agenda topic"), "total": sum(counts[slug].values()),
                      "months": [counts[slug].get(mo, 0) for mo in months]}
                     for slug in list(labels) + [""] if slug in counts]
        # correlate(None): these read `messages` again, not the row of the query around them.
        mine = select(m.message_id).where(m.from_key == key, _shown(m, self.hidden)).correlate(None)
        started_where = (m.from_key == key, m.parent_id.is_(None), m.thread_id.is_not(None),
                         _shown(m, self.hidden))
        started_total = conn.execute(select(func.count()).where(*started_where)).scalar_one()
        started_ids = list(conn.execute(select(m.thread_id).where(*started_where)
                                        .order_by(by_date_desc(m.date), m.id).limit(shown)).scalars())
        started = self._summaries(conn, started_ids)
        # A reply sits in its parent's thread: the thread index finds them without a scan.
        theirs = (select(m.thread_id).where(m.from_key == key, m.thread_id.is_not(None), _shown(m, self.hidden))
                  .distinct().correlate(None))
        replies = select(m.id, m.msg_hash, m.date, m.from_key, m.from_name, m.from_address, m.subject,
                         m.thread_id, m.parent_id).where(
            m.thread_id.in_(theirs), m.parent_id.in_(mine), m.from_key != key, _shown(m, self.hidden))
        # Bounded: a prolific writer's page lists the latest replies, not all of them. Counted
        # in the same pass (a window over every reply, before the limit): asked apart, the
        # count read them all again (0.7 s for the most active at 1,000,000 messages).
        rows = conn.execute(replies.add_columns(func.count().over().label("replies"))
                            .order_by(by_date_desc(m.date), m.id.desc()).limit(1000)).all()
        total_replies = rows[0].replies if rows else 0
        repliers: dict[str, dict] = {}
        for r in rows:
            who = repliers.setdefault(r.from_key, {"key": r.from_key, "name": r.from_name or r.from_address.partition("@")[0],
                                                   "organisation": self.organisations.of(r.from_address), "replies": 0})
            who["replies"] += 1
        own = self._own(conn, [r.id for r in rows[:shown]])
        parents = dict(conn.execute(select(m.message_id, m.msg_hash).where(
            m.message_id.in_({r.parent_id for r in rows[:shown]}))).all()) if rows else {}
        signed = []
        theirs_rows = conn.execute(
            select(m.id, m.thread_id, t.subject, m.msg_hash, m.date, m.from_name, m.from_address)
            .join(s.threads, t.thread_id == m.thread_id).where(m.from_key == key, _shown(m, self.hidden))
            .order_by(by_date(m.date), m.id).limit(2000)).all()
        own_words = self._own(conn, [r.id for r in theirs_rows])
        for pk, tid, subject, h, date, name, address in theirs_rows:
            found = recognise(own_words.get(pk, ""), sender=name, organisation=self._known_org(address),
                              statement=is_statement(subject))
            if found:
                signed.append({**found.as_dict(), "thread_id": tid, "subject": subject, "msg_hash": h,
                               "date": iso(date)})
        return {"topics_over_time": {"months": months, "topics": over_time},
                "started": {"total": started_total,
                            "threads": [started[tid] for tid in started_ids if tid in started]},
                "replies": {"total": total_replies,
                            "by": sorted(repliers.values(), key=lambda p: (-p["replies"], p["name"]))[:shown],
                            "latest": [{"msg_hash": r.msg_hash, "date": iso(r.date), "from_key": r.from_key,
                                        "from_name": r.from_name or r.from_address.partition("@")[0],
                                        "subject": r.subject, "thread_id": r.thread_id,
                                        "parent_hash": parents.get(r.parent_id),
                                        "excerpt": briefing.excerpt(own.get(r.id, ""))}
                                       for r in rows[:shown]]},
                "signed": signed}

    def _texts(self, conn, pks: list[int]) -> dict[int, dict]:
        """Each message's own words, quoted text, signature, footer and attachments."""
        found: dict[int, dict] = {}
        for i in range(0, len(pks), CHUNK):
            for pk, data, raw in conn.execute(
                    select(s.texts.c.message, s.texts.c.data, s.raws.c.data)
                    .join(s.messages, s.messages.c.id == s.texts.c.message)
                    .outerjoin(s.raws, s.raws.c.sha256 == s.messages.c.raw_sha256)
                    .where(s.texts.c.message.in_(pks[i:i + CHUNK]))):
                found[pk] = self.store.unpack_texts(data, raw)
        return found

    def _own(self, conn, pks: list[int]) -> dict[int, str]:
        return {pk: texts["own_text"] for pk, texts in self._texts(conn, pks).items()}

    def _known_org(self, address: str) -> str | None:
        """The organisation the organisations file names for an address (not a bare domain)."""
        org = self.organisations.of(address or "")
        return org if org and org != (address or "").rpartition("@")[2].lower() else None

    def _thread_rows(self, conn, thread_ids: list[str]) -> dict[str, list[dict]]:
        """Each thread's messages in date order, light: who, when, own words (no quotes)."""
        m = s.messages.c
        out: dict[str, list[dict]] = {}
        for i in range(0, len(thread_ids), CHUNK):
            rows = conn.execute(select(m.id, m.thread_id, m.msg_hash, m.message_id, m.parent_id, m.date,
                                       m.from_key, m.from_name, m.from_address, m.language, m.subject)
                                .where(m.thread_id.in_(thread_ids[i:i + CHUNK]), _shown(m, self.hidden))
                                .order_by(by_date(m.date), m.id)).all()
            own = self._own(conn, [r.id for r in rows])
            for r in rows:
                row = dict(r._mapping)
                row["own_text"] = own.get(row.pop("id"), "")
                out.setdefault(r.thread_id, []).append({
                    **row, "date": iso(r.date),
                    "from_name": r.from_name or r.from_address.partition("@")[0],
                    "organisation": self.organisations.of(r.from_address),
                    "known_organisation": self._known_org(r.from_address)})
        return out

    def signons(self, thread_id: str) -> list[dict]:
        """Return who signed the statement a thread circulates, first signature first."""
        return self.signons_of([thread_id]).get(thread_id, [])

    def signons_of(self, thread_ids: list[str]) -> dict[str, list[dict]]:
        """Return the signers of each of these threads that has any. Recognised when read, from
        the stored own words: a thread is a few messages, and nothing stored has to follow
        a change of the recogniser's rules."""
        with self.engine.connect() as conn:
            rows = self._thread_rows(conn, list(thread_ids))
            subjects = dict(conn.execute(select(s.threads.c.thread_id, s.threads.c.subject)
                                         .where(s.threads.c.thread_id.in_(list(rows)))).all()) if rows else {}
        return self._signers(rows, subjects)

    @staticmethod
    def _signers(rows: dict[str, list[dict]], subjects: dict[str, str]) -> dict[str, list[dict]]:
        out = {}
        for tid, messages in rows.items():
            first = messages[0]
            statement = is_statement(subjects.get(tid) or first["subject"], first["own_text"])
            found = signers([{**r, "organisation": r["known_organisation"]} for r in messages],
                            statement=statement)
            if found:
                out[tid] = found
        return out

    def topic_window(self, slug: str, since: datetime | None = None,
                     max_threads: int = briefing.MAX_THREADS) -> dict | None:
        """Return an agenda topic's entry and its threads with messages after `since` (latest
        activity first, at most `max_threads`), each thread's messages (light rows) and signers."""
        entry = next(iter(self.topics(slug)), None)
        if entry is None:
            return None
        found = self.threads(topic=slug, since=since, limit=max_threads)
        ids = [t["thread_id"] for t in found["threads"]]
        with self.engine.connect() as conn:
            rows = self._thread_rows(conn, ids)
        subjects = {t["thread_id"]: t["subject"] for t in found["threads"]}
        return {"topic": entry, "total_threads": found["total"], "threads": found["threads"],
                "messages": rows, "signers": self._signers(rows, subjects),
                "since": iso(_naive(since)) if since else None}

    def briefing(self, slug: str, since: datetime | None = None, **options) -> dict | None:
        """Return the briefing pack of an agenda topic (see archiver/briefing.py), or None."""
        window = self.topic_window(slug, since)
        return briefing.build(window, **options) if window else None
