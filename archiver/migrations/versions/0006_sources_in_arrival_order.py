"""Sources are keyed in the order an ingest reads them: schema version 11.

Every message stored inserted into two indexes of `sources` at a random place: the unique key
led by the raw bytes' hash, and the Message-ID. Each landed on a page of its own (more than
one, with the page splits), a quarter of the pages an ingest wrote at 1,000,000 messages.
This revision leads the unique key by list and location, which arrive together (a file and
byte offset, or a URL), and finds a message's sources by its row id (`sources.message`),
which grows. A raw's Message-ID, looked up by hash when the same bytes are seen at a new
place, moves to `raws.message_id`, filled here from the sources.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = "id, raw_sha256, message_id, list, kind, location, envelope, archive_url, seen_at"


def _version(value: str) -> None:
    meta = sa.table("meta", sa.column("key"), sa.column("value"))
    op.execute(meta.update().where(meta.c.key == "schema_version").values(value=value))


def _sources(*extra) -> None:
    """Create `sources` as revision 0001 did, with what follows its columns."""
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
        *extra,
    )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("raws", sa.Column("message_id", sa.Text, nullable=True))
    # Filled while the old key, led by the hash, still finds a raw's sources.
    if sqlite:
        op.execute("UPDATE raws SET message_id = (SELECT s.message_id FROM sources s "
                   "WHERE s.raw_sha256 = raws.sha256 AND s.message_id IS NOT NULL "
                   "ORDER BY s.id LIMIT 1)")
    else:
        op.execute("UPDATE raws SET message_id = s.message_id FROM ("
                   "SELECT DISTINCT ON (raw_sha256) raw_sha256, message_id FROM sources "
                   "WHERE message_id IS NOT NULL ORDER BY raw_sha256, id) s "
                   "WHERE s.raw_sha256 = raws.sha256")
    if sqlite:
        # SQLite changes no constraint in place: the table is made again, under its own name
        # (a renamed table's SQL would keep the name quoted), and its rows copied in order.
        op.rename_table("sources", "sources_old")
        op.drop_index("ix_sources_message", table_name="sources_old")
        _sources(sa.Column("message", sa.Integer, sa.ForeignKey("messages.id"), nullable=True),
                 sa.UniqueConstraint("list", "location", "raw_sha256", name="uq_sources_where"))
        op.execute(f"INSERT INTO sources ({COLUMNS}, message) "
                   f"SELECT {', '.join('o.' + c for c in COLUMNS.split(', '))}, m.id "
                   "FROM sources_old o LEFT JOIN messages m ON m.message_id = o.message_id ORDER BY o.id")
        op.drop_table("sources_old")
    else:
        # The old key and index go first: the update rewrites every row, and each copy would
        # be entered in them only to be dropped.
        op.drop_index("ix_sources_message", table_name="sources")
        op.drop_constraint("uq_sources_where", "sources", type_="unique")
        op.add_column("sources", sa.Column("message", sa.Integer, sa.ForeignKey("messages.id"),
                                           nullable=True))
        op.execute("UPDATE sources SET message = m.id FROM messages m WHERE m.message_id = sources.message_id")
        op.create_unique_constraint("uq_sources_where", "sources", ["list", "location", "raw_sha256"])
    op.create_index("ix_sources_message", "sources", ["message"])
    if not sqlite:
        op.execute("ANALYZE raws, sources")   # the planner's statistics of the rewritten tables
    _version("11")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("ix_sources_message", table_name="sources")
    if sqlite:
        op.rename_table("sources", "sources_new")
        _sources(sa.UniqueConstraint("raw_sha256", "list", "location", name="uq_sources_where"))
        op.execute(f"INSERT INTO sources ({COLUMNS}) SELECT {COLUMNS} FROM sources_new ORDER BY id")
        op.drop_table("sources_new")
    else:
        op.drop_constraint("uq_sources_where", "sources", type_="unique")
        op.create_unique_constraint("uq_sources_where", "sources", ["raw_sha256", "list", "location"])
        op.drop_column("sources", "message")
    op.create_index("ix_sources_message", "sources", ["message_id"])
    op.drop_column("raws", "message_id")
    _version("10")
