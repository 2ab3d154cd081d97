"""Copy a whole store into an empty database (SQLite or PostgreSQL), then build its search index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, delete, func, literal, select
from sqlalchemy.engine import make_url

from . import schema as s
from .errors import StoreError
from .pipeline import rebuild_index
from .query import Archive
from .store import Store

# Rows read and written at a time: memory holds one chunk (raw messages are a few kB packed,
# so a chunk of them is a few MB), whatever the size of the store.
CHUNK = 500


@dataclass(frozen=True)
class Migrated:
    """What a migration copied: rows per table (in the order copied) and messages indexed."""

    rows: dict[str, int]
    indexed: int


def target_data(target_url: str, data: Path) -> Path:
    """Return the data directory the target belongs to: a SQLite target's folder (where the
    archiver looks for the search index beside archive.sqlite3), else the data directory given."""
    url = make_url(target_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return Path(url.database).resolve().parent
    return data


def migrate(source: Store, target_url: str, data: Path, chunk: int = CHUNK) -> Migrated:
    """Copy every row of the source store into the empty store at target_url, keeping keys and
    raw bytes as stored, then rebuild the target's search index (Whoosh's in data/whoosh, or the
    search backend's the settings choose). A target holding anything is refused, untouched."""
    url = make_url(target_url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    target = Store(target_url)    # an empty database gets the schema at the head revision here
    try:
        rows = _copy(source, target, chunk)
        archive = Archive(target, index_dir=data / "whoosh")
        try:
            indexed = rebuild_index(archive)
        finally:
            if archive.index is not None:
                archive.index.close()
    finally:
        target.close()
    return Migrated(rows, indexed)


def _copy(source: Store, target: Store, chunk: int) -> dict[str, int]:
    rows: dict[str, int] = {}
    # One read transaction is one snapshot of the source (an ingest committing meanwhile is
    # copied whole or not at all); one write transaction leaves the target empty if it fails.
    with source.engine.connect() as read, target.engine.begin() as write:
        full = _holding_rows(write)
        if full:
            raise StoreError(f"the target store is not empty ({', '.join(full)} hold rows): "
                             "migrate into an empty database")
        # Its only row, schema_version, is the source's too (both are at the head revision):
        # the source's meta replaces it, with the zdict that keeps packed bytes readable.
        write.execute(delete(s.meta))
        for table in s.metadata.sorted_tables:       # parents first: foreign keys hold throughout
            rows[table.name] = 0
            # yield_per streams (a server-side cursor in PostgreSQL) instead of fetching all.
            query = select(table).order_by(*table.primary_key).execution_options(yield_per=chunk)
            for part in read.execute(query).partitions():
                write.execute(table.insert(), [row._asdict() for row in part])
                rows[table.name] += len(part)
        if write.dialect.name == "postgresql":
            _move_sequences(write)
    return rows


def _holding_rows(conn: Connection) -> list[str]:
    """Return the store tables that hold rows (meta's schema_version, which every new store
    has, does not count)."""
    full = []
    for table in s.metadata.sorted_tables:
        query = select(literal(1)).select_from(table).limit(1)
        if table is s.meta:
            query = query.where(s.meta.c.key != "schema_version")
        if conn.execute(query).first() is not None:
            full.append(table.name)
    return full


def _move_sequences(conn: Connection) -> None:
    """Set each serial key's sequence to the largest key copied, so the next insert takes the
    one after it (copied rows kept their keys; the sequences never saw them)."""
    for table in s.metadata.sorted_tables:
        column = table.autoincrement_column
        if column is None:
            continue
        top = select(func.max(column)).scalar_subquery()
        # is_called false on an empty table: the next key is 1 itself.
        conn.execute(select(func.setval(func.pg_get_serial_sequence(table.name, column.name),
                                        func.coalesce(top, 1), top.is_not(None))))
