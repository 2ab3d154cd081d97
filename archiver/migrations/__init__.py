"""The store's schema revisions (Alembic): create, adopt, check, upgrade and report a store's."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, event, func, inspect, select
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import OperationalError, SAWarning
from sqlalchemy.pool import NullPool

from .. import schema as s
from ..errors import StoreError

HERE = Path(__file__).resolve().parent
# Where revisions are looked for; a test adds a folder of its own to make a store fall behind.
version_locations: tuple[str, ...] = (str(HERE / "versions"),)
BASELINE = "0001"
# meta.schema_version of the stores made before Alembic, which the baseline revision creates.
BASELINE_VERSION = "6"
# pg_advisory_xact_lock's key ("archive" in ASCII): advisory locks are per database, so this
# serialises schema changes of one store only.
_LOCK_KEY = 0x61726368697665


@dataclass(frozen=True)
class Status:
    """Where a database stands against this archiver's revisions."""

    revision: str | None         # the store's Alembic revision; None when it has none
    head: str                    # this archiver's latest revision
    known: bool                  # whether this archiver has the store's revision
    schema_version: str | None   # meta.schema_version, None when there is none
    tables: bool                 # whether any of the store's tables exist

    @property
    def state(self) -> str:
        """current, behind, ahead, empty, unversioned (made before Alembic, adoptable) or foreign."""
        if self.revision is not None:
            if self.revision == self.head:
                return "current"
            return "behind" if self.known else "ahead"
        if not self.tables:
            return "empty"
        return "unversioned" if self.schema_version == BASELINE_VERSION else "foreign"

    def describe(self) -> str:
        """Say where the store stands, and what to do about it, in a line."""
        return {
            "current": f"the store is at revision {self.revision}, the latest: up to date",
            "behind": f"the store is at revision {self.revision}, this archiver's is {self.head}: "
                      "run `archiver db upgrade` (back the store up first)",
            "ahead": f"the store is at revision {self.revision}, which this archiver does not know "
                     f"(its latest is {self.head}): a newer archiver made it; upgrade the archiver",
            "empty": f"the database holds no store yet: the first command creates one at "
                     f"revision {self.head}",
            "unversioned": f"the store was made before migrations (schema version {self.schema_version}) "
                           f"and has no revision: the next command marks it as revision {BASELINE}",
            "foreign": f"the database holds store tables of schema version {self.schema_version or 'none'}, "
                       f"without a revision: this archiver can only adopt version {BASELINE_VERSION}; "
                       "ingest into a new data directory",
        }[self.state]


@functools.cache
def _script(locations: tuple[str, ...]) -> ScriptDirectory:
    # Cached: every Store opened reads the head, and loading the revision files costs more
    # than the check itself.
    return ScriptDirectory(str(HERE), version_locations=list(locations))


def script() -> ScriptDirectory:
    """Return the revisions this archiver knows."""
    return _script(version_locations)


def head() -> str:
    """Return this archiver's latest revision."""
    return script().get_current_head()


def config(connection: Connection | None = None) -> Config:
    """Return an Alembic configuration made in code (there is no alembic.ini): the revisions
    are this package's, and env.py runs them on the given connection."""
    cfg = Config()
    # Options go through configparser, whose interpolation reads "%" (hence doubled).
    cfg.set_main_option("script_location", str(HERE).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(version_locations).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def include_for(dialect: str):
    """Return autogenerate's filter for a dialect: an index schema.py creates only in another
    dialect (Index.ddl_if, which Alembic does not read) is left out of the comparison, and so
    is a table the database holds that schema.py does not declare (the PostgreSQL search
    backend's, made and rebuilt by the index, not by revisions)."""
    def include(obj, name, type_, reflected, compare_to) -> bool:
        if type_ == "table" and reflected and compare_to is None:
            return False
        only = getattr(obj, "_ddl_if", None)
        if type_ != "index" or reflected or only is None or only.dialect is None:
            return True
        wanted = (only.dialect,) if isinstance(only.dialect, str) else tuple(only.dialect)
        return dialect in wanted
    return include


def _status(conn: Connection) -> Status:
    names = set(inspect(conn).get_table_names())
    revisions = MigrationContext.configure(conn).get_current_heads() if "alembic_version" in names else ()
    version = None
    if "meta" in names:
        version = conn.execute(select(s.meta.c.value).where(s.meta.c.key == "schema_version")).scalar()
    revision = revisions[0] if len(revisions) == 1 else (" ".join(revisions) or None)
    known = revision is not None and _known(revision)
    return Status(revision, head(), known, version, bool(names & set(s.metadata.tables)))


def _known(revision: str) -> bool:
    try:
        return script().get_revision(revision) is not None
    except CommandError:     # Alembic's answer for a revision it has no file for
        return False


def status(url: str | URL) -> Status:
    """Return where the database at url stands (a SQLite file that is not there is empty, and
    is not made)."""
    url = make_url(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        return read_status(engine)
    except OperationalError as exc:
        raise StoreError(f"cannot read store {_shown(url)}: {exc.orig}") from exc
    finally:
        engine.dispose()


def read_status(engine: Engine) -> Status:
    """Return where the database an engine opens stands, reading only (through that engine,
    with its options: a replica's read-only sessions, say; a SQLite file that is not there is
    empty, and is not made)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return Status(None, head(), False, None, False)   # not there: looked at, not made
    with engine.connect() as conn:
        return _status(conn)


def prepare(engine: Engine) -> None:
    """Make a database ready for the Store, or refuse it: an empty one is brought to the head
    revision, one made before Alembic (schema version 6) is marked as the baseline; one behind
    is refused with the advice to run `archiver db upgrade`, and so is one this archiver does
    not know. A populated store is never upgraded here, unasked."""
    # Read first, without a lock: opening a store that is up to date (nearly every open)
    # must not wait for an ingest's write lock. (Connecting makes a missing SQLite file, which
    # read_status would call empty without making: here it is made, then filled under the lock.)
    with engine.connect() as conn:
        found = _status(conn)
    if found.state in ("empty", "unversioned"):
        with _locked(engine.url) as conn:
            found = _status(conn)   # again: another process may have done it meanwhile
            if found.state == "empty":
                command.upgrade(config(conn), "head")
            elif found.state == "unversioned":
                command.stamp(config(conn), BASELINE)
            found = _status(conn)
    if found.state != "current":
        raise StoreError(found.describe())


def upgrade(url: str | URL, revision: str = "head") -> tuple[Status, Status]:
    """Upgrade the store at url to a revision (the head by default), adopting a store made
    before Alembic first; return where it stood before and after."""
    url = make_url(url)
    try:
        with _locked(url) as conn:
            before = _status(conn)
            if before.state in ("ahead", "foreign"):
                raise StoreError(f"cannot upgrade: {before.describe()}")
            if before.state == "unversioned":
                command.stamp(config(conn), BASELINE)
            command.upgrade(config(conn), revision)
            return before, _status(conn)
    except OperationalError as exc:
        raise StoreError(f"cannot upgrade store {_shown(url)}: {exc.orig}") from exc


def downgrade(url: str | URL, revision: str) -> Status:
    """Undo revisions down to one ("base" drops every table): for trying a revision out, never
    part of running an archive."""
    url = make_url(url)
    with _locked(url) as conn:
        command.downgrade(config(conn), revision)
        return _status(conn)


@contextmanager
def comparing() -> Iterator[None]:
    """Compare schema.py with a database without the warnings that an index on an expression
    is left out: SQLAlchemy does not reflect one from SQLite, so Alembic cannot compare it.
    (The tests compare such an index's DDL as SQLite keeps it.)"""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index",
                                category=SAWarning)
        warnings.filterwarnings("ignore", message="autogenerate skipping metadata-specified expression-based index",
                                category=UserWarning)
        yield


def write_revision(url: str | URL, message: str) -> Path:
    """Write the next revision's file, its operations autogenerated from how schema.py
    differs from the store at url (at the head revision, or an empty database, brought there
    first); return its path. Review it before use: Alembic misses renames and some type changes."""
    url = make_url(url)
    number = f"{len(list(script().walk_revisions())) + 1:04d}"
    with _locked(url) as conn:
        if _status(conn).state == "empty":
            command.upgrade(config(conn), "head")
        if _status(conn).state != "current":
            raise StoreError("generate a revision against a store at the head revision")
        with comparing():
            written = command.revision(config(conn), message, autogenerate=True, rev_id=number,
                                       version_path=version_locations[-1])
    _script.cache_clear()
    return Path(written.path)


@contextmanager
def _locked(url: URL) -> Iterator[Connection]:
    """Yield a connection, in a transaction, that alone may change the store's schema: the
    next one waits for its commit, then sees what it did."""
    if url.get_backend_name() == "sqlite":
        # Waiting up to a minute for the lock, as the store's connections do: on a busy
        # machine another opener's schema can take longer than the driver's five seconds.
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 60})
        # BEGIN IMMEDIATE takes SQLite's write lock at once, so a second opener's transaction
        # starts after the first committed (pysqlite's own BEGIN is switched off for this).
        event.listen(engine, "connect", _driver_begins_nothing)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    else:
        # READ COMMITTED: statements after the lock see what its last holder committed; the
        # store's REPEATABLE READ would keep the snapshot taken when the lock was asked for.
        engine = create_engine(url, poolclass=NullPool, isolation_level="READ COMMITTED")
    try:
        with engine.connect() as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))
            yield conn
    finally:
        engine.dispose()


def _driver_begins_nothing(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None


def _shown(url: URL) -> str:
    return repr(url.render_as_string(hide_password=True))
