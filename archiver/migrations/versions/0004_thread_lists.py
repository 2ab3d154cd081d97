"""Threads keep their size and dates in each list: schema version 9.

A list's page shows its threads by latest activity in that list. It grouped every message of
the list by thread on each view (2 s at 1,000,000 messages). This revision adds
`thread_lists`, one row a thread and list (its messages there, redacted ones left out, and
their first and last dates), indexed by list and last date, and fills it from the store.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _version(value: str) -> None:
    meta = sa.table("meta", sa.column("key"), sa.column("value"))
    op.execute(meta.update().where(meta.c.key == "schema_version").values(value=value))


def upgrade() -> None:
    op.create_table(
        "thread_lists",
        sa.Column("thread_id", sa.String(32), primary_key=True),
        sa.Column("list", sa.Integer, sa.ForeignKey("lists.id"), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("first_date", sa.DateTime, nullable=True),
        sa.Column("last_date", sa.DateTime, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_thread_lists_last", "thread_lists", ["list", "last_date", "thread_id"])
    messages = sa.table("messages", sa.column("id", sa.Integer), sa.column("message_id"),
                        sa.column("thread_id"), sa.column("date", sa.DateTime))
    pairs = sa.table("message_lists", sa.column("message", sa.Integer), sa.column("list", sa.Integer))
    redactions = sa.table("redactions", sa.column("message_id"))
    rows = sa.table("thread_lists", sa.column("thread_id"), sa.column("list"), sa.column("size"),
                    sa.column("first_date"), sa.column("last_date"))
    m, ml = messages.c, pairs.c
    op.execute(rows.insert().from_select(
        ["thread_id", "list", "size", "first_date", "last_date"],
        sa.select(m.thread_id, ml.list, sa.func.count(), sa.func.min(m.date), sa.func.max(m.date))
        .select_from(messages.join(pairs, ml.message == m.id))
        .where(m.thread_id.is_not(None), m.message_id.not_in(sa.select(redactions.c.message_id)))
        .group_by(m.thread_id, ml.list)))
    _version("9")


def downgrade() -> None:
    op.drop_index("ix_thread_lists_last", "thread_lists")
    op.drop_table("thread_lists")
    _version("8")
