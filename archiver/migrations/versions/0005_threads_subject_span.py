"""Threads are indexed (SQLite) by subject, span class and host date: schema version 10.

Threading asks for a subject's threads active within a run of new dates: last date from the
run's start on, host date up to its end. The index of 0002 and 0003, (subject, last date,
host date), read every thread of the subject that ended after the run began, whatever its
host date: when a list is ingested after another that runs later (several lists' years loaded
at once), every later thread of a common subject, thousands at 1,000,000 messages. This
revision indexes a thread's span class (how long it lasts: a month, a year, more) before its
host date, so that the host date is bounded on both sides for all but the longest threads,
and drops the index it replaces.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# As schema.SPAN_CLASS (repeated: a revision keeps what it did, whatever the schema becomes).
SPAN_CLASS = ("CASE WHEN julianday(last_date) - julianday(host_date) > 366 THEN 2 "
              "WHEN julianday(last_date) - julianday(host_date) > 31 THEN 1 ELSE 0 END")


def _version(value: str) -> None:
    meta = sa.table("meta", sa.column("key"), sa.column("value"))
    op.execute(meta.update().where(meta.c.key == "schema_version").values(value=value))


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_threads_subject_span", "threads",
                        ["subject_key", sa.text(SPAN_CLASS), "host_date"])
        op.drop_index("ix_threads_subject_last", "threads")
    _version("10")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_threads_subject_last", "threads", ["subject_key", "last_date", "host_date"])
        op.drop_index("ix_threads_subject_span", "threads")
    _version("9")
