"""Threads by subject and last date (SQLite): schema version 7.

Threading asks, for each subject in a batch, for the subject's threads still active from the
batch's earliest date on. With only (subject, first date) to go by, SQLite read every thread of
the subject: 6,500 for the generator's commonest at 1,000,000 messages, for each batch. This
index reads the ones whose last message is that recent. (PostgreSQL keeps its hash index on
the subject: a btree refuses long subjects.)
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _version(value: str) -> None:
    meta = sa.table("meta", sa.column("key"), sa.column("value"))
    op.execute(meta.update().where(meta.c.key == "schema_version").values(value=value))


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_threads_subject_last", "threads", ["subject_key", "last_date", "first_date"])
    _version("7")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_threads_subject_last", "threads")
    _version("6")
