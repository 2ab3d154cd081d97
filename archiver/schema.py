"""The store's SQL schema (SQLAlchemy Core tables), documented in docs/schema.md."""

from __future__ import annotations

import re

from sqlalchemy import (Boolean, Column, DateTime, Float, ForeignKey, Index, Integer, LargeBinary,
                        MetaData, String, Table, Text, TypeDecorator, UniqueConstraint, text)


class MailText(TypeDecorator):
    """TEXT in both databases. PostgreSQL's text cannot hold NUL, which hostile mail puts in
    headers (ids, subjects, names), so there NUL is written as U+E000 "0" and U+E000 (a
    private-use character) as itself twice, and read back as it was: values, lookups and the
    ids the store compares in Python stay the same. SQLite stores text as it is, unprocessed."""

    impl = Text
    cache_ok = True

    def bind_processor(self, dialect):
        return _escape_nul if dialect.name == "postgresql" else None

    def result_processor(self, dialect, coltype):
        return _unescape_nul if dialect.name == "postgresql" else None


_ESC = "\ue000"
_ESCAPED = re.compile(_ESC + "(.)", re.DOTALL)


def _escape_nul(value):
    if isinstance(value, str) and ("\x00" in value or _ESC in value):
        return value.replace(_ESC, _ESC + _ESC).replace("\x00", _ESC + "0")
    return value


def _unescape_nul(value):
    if isinstance(value, str) and _ESC in value:
        return _ESCAPED.sub(lambda m: "\x00" if m.group(1) == "0" else m.group(1), value)
    return value


metadata = MetaData()
SCHEMA_VERSION = 11  # raise on any change; a store of another version is refused with advice

meta = Table(
    "meta", metadata,
    Column("key", String(50), primary_key=True),
    Column("value", Text, nullable=False),
)

lists = Table(
    "lists", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
)

raws = Table(
    "raws", metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),          # original bytes, packed (packing.py)
    # The Message-ID these bytes were read as: the stored message, or the one they duplicate
    # (null when they were rejected). What a raw seen again at a new place belongs to, found
    # by its hash here, so that `sources` need no index led by the hash (revision 0006).
    Column("message_id", MailText, nullable=True),
)

messages = Table(
    "messages", metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", MailText, nullable=False, unique=True),
    Column("msg_hash", String(32), nullable=False, unique=True),
    Column("synthetic_id", Boolean, nullable=False, default=False),
    Column("raw_sha256", String(64), ForeignKey("raws.sha256"), nullable=False),
    Column("subject", MailText, nullable=False),
    Column("subject_norm", MailText, nullable=False),
    # subject_norm lower-cased by Python (SQL's lower() folds ASCII only): the threading key.
    Column("subject_key", MailText, nullable=False, default=""),
    Column("is_reply", Boolean, nullable=False, default=False),
    Column("from_name", MailText, nullable=False),
    Column("from_address", MailText, nullable=False),
    Column("from_key", String(16), nullable=False, default=""),   # ids.person_key(from_address)
    Column("date", DateTime, nullable=True),               # UTC, naive in SQL
    Column("date_offset", Integer, nullable=True),         # sender's offset in minutes
    Column("in_reply_to", MailText, nullable=True),
    Column("refs", MailText, nullable=False, default=""),      # threading chain, space-separated
    Column("content_type", String(100), nullable=False),
    Column("charset", String(40), nullable=True),
    Column("language", String(8), nullable=False, default=""),
    Column("degraded", MailText, nullable=False, default=""),        # space-separated reasons
    Column("archive_url", MailText, nullable=True),
    Column("thread_id", String(32), nullable=True),
    Column("parent_id", MailText, nullable=True),
    Column("depth", Integer, nullable=True),
    # False until the search index holds this message as it is now (new, re-threaded, or in a
    # new list); the index is brought up to date from these rows, crash or not.
    Column("indexed", Boolean, nullable=False, default=False),
    Index("ix_messages_thread", "thread_id"),
    Index("ix_messages_indexed", "indexed"),
    Index("ix_messages_date", "date"),
    # A hash index in PostgreSQL: a btree there refuses a key over a few kB, and a hostile
    # From can be 16 kB (SQLite has no such bound; its DDL is unchanged).
    Index("ix_messages_from", "from_address", postgresql_using="hash"),
    Index("ix_messages_from_key", "from_key"),
)


# A message's own words, quoted text, signature, footer and attachment list, packed together
# against its raw bytes (packing.py): kept out of the messages row, so that row stays small
# for scans and the updates threading makes.
texts = Table(
    "texts", metadata,
    Column("message", Integer, ForeignKey("messages.id"), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

# Tables of pairs keep no rowid in SQLite: the primary key is the table, not a second copy.
message_lists = Table(
    "message_lists", metadata,
    Column("message", Integer, ForeignKey("messages.id"), primary_key=True),
    Column("list", Integer, ForeignKey("lists.id"), primary_key=True),
    Index("ix_message_lists_list", "list"),
    sqlite_with_rowid=False,
)

# Who names an id in References: threading finds the messages naming a new one.
refs = Table(
    "refs", metadata,
    Column("ref_id", MailText, primary_key=True),
    Column("message", Integer, ForeignKey("messages.id"), primary_key=True),
    sqlite_with_rowid=False,
)

sources = Table(
    "sources", metadata,
    Column("id", Integer, primary_key=True),
    Column("raw_sha256", String(64), ForeignKey("raws.sha256"), nullable=False),
    Column("message_id", MailText, nullable=True),             # null for a rejected message
    Column("list", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("location", MailText, nullable=False),
    Column("envelope", MailText, nullable=True),
    Column("archive_url", MailText, nullable=True),
    Column("seen_at", DateTime, nullable=False),
    # The message's row (null for a rejected message): its sources are found by it.
    Column("message", Integer, ForeignKey("messages.id"), nullable=True),
    # Keys that grow as an ingest goes (revision 0006): a new place is a list and a location
    # (a file and byte offset, or a URL) near the last one, and a new message the last row.
    # Led by a hash or a Message-ID, each insert landed on a page of its own at random.
    UniqueConstraint("list", "location", "raw_sha256", name="uq_sources_where"),
    Index("ix_sources_message", "message"),
)

rejected = Table(
    "rejected", metadata,
    Column("id", Integer, primary_key=True),
    Column("raw_sha256", String(64), ForeignKey("raws.sha256"), nullable=False, unique=True),
    Column("reason", MailText, nullable=False),
    Column("list", String(200), nullable=False),
    Column("location", MailText, nullable=False),
    Column("seen_at", DateTime, nullable=False),
)

# A thread's span class (SQLite): 0 when its last date is at most 31 days after its host date,
# 1 at most 366, else 2. A query uses the index on it only when it writes it the same way.
SPAN_CLASS = ("CASE WHEN julianday(last_date) - julianday(host_date) > 366 THEN 2 "
              "WHEN julianday(last_date) - julianday(host_date) > 31 THEN 1 ELSE 0 END")
SPAN_DAYS = {0: 31, 1: 366}   # the longest span of each bounded class

threads = Table(
    "threads", metadata,
    Column("thread_id", String(32), primary_key=True),
    Column("root_id", MailText, nullable=False),
    Column("subject", MailText, nullable=False),
    Column("subject_norm", MailText, nullable=False),
    Column("subject_key", MailText, nullable=False, default=""),
    Column("size", Integer, nullable=False),
    Column("first_date", DateTime, nullable=True),
    Column("last_date", DateTime, nullable=True),
    # The key thread.py sorts the thread by as a host of replies without references: its
    # root's date (1970 when undated) and row id, or under a stand-in its first reply's
    # (revision 0003). Neither first_date (which a reply dated before its root lowers) nor the
    # thread id (a hash) orders hosts as threading does.
    Column("host_date", DateTime, nullable=True),
    Column("host_order", Integer, nullable=True),
    Index("ix_threads_last", "last_date"),
    Index("ix_threads_first", "first_date", "thread_id"),   # in order, ties too: neighbours
    # Subject grouping asks for a subject's threads by when they began. In PostgreSQL a hash
    # index on the subject alone (a hash index has one column; a btree refuses long subjects):
    # a subject's few threads are then sorted by date.
    Index("ix_threads_subject_first", "subject_key", "first_date").ddl_if(dialect="sqlite"),
    # Threading asks for a subject's threads active within a run of dates: last date from its
    # start on, host date up to its end. One index on either date reads every thread of a
    # common subject on one side of the run (thousands, at 1,000,000 messages). By how long a
    # thread lasts (SPAN_CLASS), the host date is bounded on both sides but for the rare
    # threads of over a year (revision 0005; 0002 and 0003 indexed the last date).
    Index("ix_threads_subject_span", "subject_key", text(SPAN_CLASS), "host_date").ddl_if(dialect="sqlite"),
    # Threading asks for a subject's first host, and its latest before a reply (revision 0003).
    Index("ix_threads_subject_host", "subject_key", "host_date", "host_order").ddl_if(dialect="sqlite"),
    Index("ix_threads_subject_key", "subject_key", postgresql_using="hash").ddl_if(dialect="postgresql"),
)

# A thread's messages in each list: how many (redacted ones left out), the first and the last
# date (revision 0004). A list's page is its threads by latest activity there; grouping the
# list's every message for that took 2 s at 1,000,000 messages. Written with the thread's
# summary, when a message already threaded joins another list, and when one is redacted.
thread_lists = Table(
    "thread_lists", metadata,
    Column("thread_id", String(32), primary_key=True),
    Column("list", Integer, ForeignKey("lists.id"), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("first_date", DateTime, nullable=True),
    Column("last_date", DateTime, nullable=True),
    Index("ix_thread_lists_last", "list", "last_date", "thread_id"),
    sqlite_with_rowid=False,
)

# Agenda topics of a message (from its own words) and of a thread (weighted, overrides applied).
message_topics = Table(
    "message_topics", metadata,
    Column("message", Integer, ForeignKey("messages.id"), primary_key=True),
    Column("topic", String(80), primary_key=True),
    Column("score", Float, nullable=False),
    Index("ix_message_topics_topic", "topic"),
    sqlite_with_rowid=False,
)

thread_topics = Table(
    "thread_topics", metadata,
    Column("thread_id", String(32), primary_key=True),
    Column("topic", String(80), primary_key=True),
    Column("weight", Float, nullable=False),
    Index("ix_thread_topics_topic", "topic"),
    sqlite_with_rowid=False,
)

# Stand-ins for referenced but missing messages, so a thread's tree can be drawn.
dummies = Table(
    "dummies", metadata,
    Column("message_id", MailText, primary_key=True),
    Column("thread_id", String(32), nullable=False),
    Column("parent_id", MailText, nullable=True),
    Column("depth", Integer, nullable=False),
    Index("ix_dummies_thread", "thread_id"),
)

# Messages hidden by a moderator: the log of every redaction, and what later reads leave out.
# A redacted message keeps its row (so a re-ingest of it is a duplicate, never a new message);
# an expunged one has lost its raw bytes and texts as well.
redactions = Table(
    "redactions", metadata,
    Column("message_id", MailText, primary_key=True),
    Column("reason", MailText, nullable=False),
    Column("redacted_at", DateTime, nullable=False),
    Column("expunged", Boolean, nullable=False, default=False),
)
