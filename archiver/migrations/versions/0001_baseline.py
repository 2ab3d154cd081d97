"""Baseline: the store at schema version 6, as archiver/schema.py declared it before Alembic.

Written out rather than made by metadata.create_all, so that it stays what it is when schema.py
changes. Stores made before Alembic were made by create_all from those tables: constraints
keep the names each database gives them (no naming convention), so a new store and an
adopted one are alike. Mail's text columns are MailText in schema.py, TEXT in SQL (the NUL
escaping is the application's); Boolean gets no CHECK constraint, as create_all made it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    meta = op.create_table(
        "meta",
        sa.Column("key", sa.String(50), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "lists",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "raws",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("msg_hash", sa.String(32), nullable=False),
        sa.Column("synthetic_id", sa.Boolean, nullable=False),
        sa.Column("raw_sha256", sa.String(64), sa.ForeignKey("raws.sha256"), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("subject_norm", sa.Text, nullable=False),
        sa.Column("subject_key", sa.Text, nullable=False),
        sa.Column("is_reply", sa.Boolean, nullable=False),
        sa.Column("from_name", sa.Text, nullable=False),
        sa.Column("from_address", sa.Text, nullable=False),
        sa.Column("from_key", sa.String(16), nullable=False),
        sa.Column("date", sa.DateTime, nullable=True),
        sa.Column("date_offset", sa.Integer, nullable=True),
        sa.Column("in_reply_to", sa.Text, nullable=True),
        sa.Column("refs", sa.Text, nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("charset", sa.String(40), nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("degraded", sa.Text, nullable=False),
        sa.Column("archive_url", sa.Text, nullable=True),
        sa.Column("thread_id", sa.String(32), nullable=True),
        sa.Column("parent_id", sa.Text, nullable=True),
        sa.Column("depth", sa.Integer, nullable=True),
        sa.Column("indexed", sa.Boolean, nullable=False),
        sa.UniqueConstraint("message_id"),
        sa.UniqueConstraint("msg_hash"),
    )
    op.create_index("ix_messages_thread", "messages", ["thread_id"])
    op.create_index("ix_messages_indexed", "messages", ["indexed"])
    op.create_index("ix_messages_date", "messages", ["date"])
    # Hash in PostgreSQL: its btrees refuse keys over a few kB, and a hostile From is longer.
    op.create_index("ix_messages_from", "messages", ["from_address"], postgresql_using="hash")
    op.create_index("ix_messages_from_key", "messages", ["from_key"])
    op.create_table(
        "texts",
        sa.Column("message", sa.Integer, sa.ForeignKey("messages.id"), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "message_lists",
        sa.Column("message", sa.Integer, sa.ForeignKey("messages.id"), primary_key=True),
        sa.Column("list", sa.Integer, sa.ForeignKey("lists.id"), primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_message_lists_list", "message_lists", ["list"])
    op.create_table(
        "refs",
        sa.Column("ref_id", sa.Text, primary_key=True),
        sa.Column("message", sa.Integer, sa.ForeignKey("messages.id"), primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("raw_sha256", sa.String(64), sa.ForeignKey("raws.sha256"), nullable=False),
        sa.Column("message_id", sa.Text, nullable=True),
        sa.Column("list", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("envelope", sa.Text, nullable=True),
        sa.Column("archive_url", sa.Text, nullable=True),
        sa.Column("seen_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("raw_sha256", "list", "location", name="uq_sources_where"),
    )
    op.create_index("ix_sources_message", "sources", ["message_id"])
    op.create_table(
        "rejected",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("raw_sha256", sa.String(64), sa.ForeignKey("raws.sha256"), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("list", sa.String(200), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("seen_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("raw_sha256"),
    )
    op.create_table(
        "threads",
        sa.Column("thread_id", sa.String(32), primary_key=True),
        sa.Column("root_id", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("subject_norm", sa.Text, nullable=False),
        sa.Column("subject_key", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("first_date", sa.DateTime, nullable=True),
        sa.Column("last_date", sa.DateTime, nullable=True),
    )
    op.create_index("ix_threads_last", "threads", ["last_date"])
    op.create_index("ix_threads_first", "threads", ["first_date", "thread_id"])
    # Subject grouping's lookup: a btree on (subject, date) in SQLite; in PostgreSQL a hash on
    # the subject alone (a hash index has one column, and a btree refuses long subjects).
    if postgresql:
        op.create_index("ix_threads_subject_key", "threads", ["subject_key"], postgresql_using="hash")
    else:
        op.create_index("ix_threads_subject_first", "threads", ["subject_key", "first_date"])
    op.create_table(
        "message_topics",
        sa.Column("message", sa.Integer, sa.ForeignKey("messages.id"), primary_key=True),
        sa.Column("topic", sa.String(80), primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_message_topics_topic", "message_topics", ["topic"])
    op.create_table(
        "thread_topics",
        sa.Column("thread_id", sa.String(32), primary_key=True),
        sa.Column("topic", sa.String(80), primary_key=True),
        sa.Column("weight", sa.Float, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_thread_topics_topic", "thread_topics", ["topic"])
    op.create_table(
        "dummies",
        sa.Column("message_id", sa.Text, primary_key=True),
        sa.Column("thread_id", sa.String(32), nullable=False),
        sa.Column("parent_id", sa.Text, nullable=True),
        sa.Column("depth", sa.Integer, nullable=False),
    )
    op.create_index("ix_dummies_thread", "dummies", ["thread_id"])
    op.create_table(
        "redactions",
        sa.Column("message_id", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("redacted_at", sa.DateTime, nullable=False),
        sa.Column("expunged", sa.Boolean, nullable=False),
    )
    # What the stores made before Alembic recorded, and what later revisions raise.
    op.bulk_insert(meta, [{"key": "schema_version", "value": "6"}])


def downgrade() -> None:
    for table in ("redactions", "dummies", "thread_topics", "message_topics", "threads", "rejected",
                  "sources", "refs", "message_lists", "texts", "messages", "raws", "lists", "meta"):
        op.drop_table(table)   # a table's indexes go with it
