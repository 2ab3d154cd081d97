"""The search backend a configuration chooses: the Whoosh index in the data directory, or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from ..errors import ArchiverError
from .searchindex import SearchIndex

BACKENDS = ("auto", "whoosh", "postgresql")


def open_index(index_dir: Path, read: Engine, write: Engine, backend: str = "auto"):
    """Return the search index: Whoosh files in index_dir, or the search table of the store's
    PostgreSQL database (read through `read`, written through `write`). 'auto' follows the
    store: several web workers on several hosts share a PostgreSQL store, not a directory."""
    backend = (backend or "auto").strip().lower()
    if backend not in BACKENDS:
        raise ArchiverError(f"unknown search_backend {backend!r}: use " + ", ".join(BACKENDS))
    on_postgresql = write.dialect.name == "postgresql"
    if backend == "auto":
        backend = "postgresql" if on_postgresql else "whoosh"
    if backend == "postgresql":
        if not on_postgresql:
            raise ArchiverError("search_backend postgresql needs the store in PostgreSQL: "
                                "set database_url to a postgresql+psycopg:// URL")
        from .pgsearch import PgSearch   # psycopg is needed only here
        return PgSearch(read, write)
    return SearchIndex(index_dir)
