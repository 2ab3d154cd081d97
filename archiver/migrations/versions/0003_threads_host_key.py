"""Threads keep their key as hosts of replies without references: schema version 8.

thread.py files a reply that lost its references under the latest thread of its subject that
sorts before it, sorting a thread by its root (date, then row id), or under a stand-in by its
first reply. Incremental threading looked such hosts up by the thread's first date and id
instead; a reply dated before its root lowers the first date, and the id is a hash, so a
batch could leave out the thread that threading everything at once picks. This revision adds
that key (host_date, host_order), fills it from the stored threads, and (SQLite) indexes
threads by subject and key, and by subject, last date and host date in place of 0002's
(subject, last date, first date).
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# As thread.py sorts an undated root: its epoch (naive UTC, as the store keeps dates).
UNDATED = datetime(1970, 1, 1)


def _version(value: str) -> None:
    meta = sa.table("meta", sa.column("key"), sa.column("value"))
    op.execute(meta.update().where(meta.c.key == "schema_version").values(value=value))


def upgrade() -> None:
    op.add_column("threads", sa.Column("host_date", sa.DateTime(), nullable=True))
    op.add_column("threads", sa.Column("host_order", sa.Integer(), nullable=True))
    threads = sa.table("threads", sa.column("thread_id"), sa.column("host_date", sa.DateTime),
                       sa.column("host_order", sa.Integer))
    messages = sa.table("messages", sa.column("id", sa.Integer), sa.column("thread_id"),
                        sa.column("depth", sa.Integer), sa.column("date", sa.DateTime))
    m, t = messages.c, threads.c
    # The root, or under a stand-in (no message at depth 0) the earliest of its replies.
    head = (sa.select(m.id).where(m.thread_id == t.thread_id)
            .order_by(m.depth, sa.func.coalesce(m.date, sa.literal(UNDATED, sa.DateTime)), m.id)
            .limit(1).scalar_subquery())
    op.execute(threads.update().values(host_order=head))
    dated = sa.select(m.date).where(m.id == t.host_order).scalar_subquery()
    op.execute(threads.update().values(host_date=sa.func.coalesce(dated, sa.literal(UNDATED, sa.DateTime))))
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_threads_subject_host", "threads", ["subject_key", "host_date", "host_order"])
        # Threads active from a date on, whose host sorts by another: with host_date in place
        # of first_date, else SQLite reads a common subject's earlier threads by host_date.
        op.drop_index("ix_threads_subject_last", "threads")
        op.create_index("ix_threads_subject_last", "threads", ["subject_key", "last_date", "host_date"])
    _version("8")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_threads_subject_host", "threads")
        op.drop_index("ix_threads_subject_last", "threads")
        op.create_index("ix_threads_subject_last", "threads", ["subject_key", "last_date", "first_date"])
    with op.batch_alter_table("threads") as batch:
        batch.drop_column("host_order")
        batch.drop_column("host_date")
    _version("7")
