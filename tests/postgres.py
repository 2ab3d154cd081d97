"""A PostgreSQL server for the tests: ARCHIVE_TEST_POSTGRES_URL's, else a throwaway one of our own."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ENV = "ARCHIVE_TEST_POSTGRES_URL"
_BINARIES = "/usr/lib/postgresql/*/bin"


def _bin_dir() -> Path | None:
    """Debian's newest PostgreSQL binaries, else whatever initdb is on the PATH."""
    def version(initdb: str) -> int:
        name = Path(initdb).parent.parent.name
        return int(name) if name.isdigit() else 0

    found = sorted(glob.glob(_BINARIES + "/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Server:
    """Databases on one PostgreSQL server: a fresh one per test, dropped after it."""

    def __init__(self, admin_url: str, stop=None, local: "_Local | None" = None):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url
        from sqlalchemy.pool import NullPool

        self.url = make_url(admin_url)
        # CREATE and DROP DATABASE cannot run inside a transaction.
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self._stop = stop
        self._local = local          # how our own server was started (None: someone else's)
        self._standby: Standby | None = None
        self._names = itertools.count()
        self._prefix = f"archive_test_{os.getpid()}_"
        self._made: set[str] = set()

    def create_database(self) -> str:
        from sqlalchemy import text

        name = f"{self._prefix}{next(self._names)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            # template0 and C collation: text sorts by code point, as SQLite's BINARY does.
            conn.execute(text(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                              "LC_COLLATE 'C' LC_CTYPE 'C'"))
        self._made.add(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def clone_database(self, url: str) -> str:
        """Return a new database copied from the one at url (a test's private copy of a
        session's archive, as a SQLite file is copied)."""
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        source, name = make_url(url).database, f"{self._prefix}{next(self._names)}"
        with self.admin.connect() as conn:
            # A template must have no other sessions; any left are a finished test's pool.
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": source})
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
        self._made.add(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self._drop(make_url(url).database)

    def _drop(self, name: str) -> None:
        from sqlalchemy import text

        self._made.discard(name)
        with self.admin.connect() as conn:
            # FORCE: a connection a test left open (a pool not yet disposed) must not keep it.
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        """Drop the databases still here (a session's shared archives), then stop the server
        when it is ours."""
        if self._standby is not None:
            self._standby.stop()
        for name in sorted(self._made):
            self._drop(name)
        self.admin.dispose()
        if self._stop:
            self._stop()


    def standby(self) -> "Standby":
        """Return a hot standby of this server, started on first use: a base backup streaming
        the primary's WAL, read-only, in a directory and socket of its own (RuntimeError
        saying why where it cannot be had: a server we did not start, a failed backup)."""
        if self._standby is None:
            if self._local is None:
                raise RuntimeError(f"a standby is started only beside our own server, not {ENV}'s")
            self._standby = _start_standby(self._local, self.url)
        return self._standby

    def wait_replayed(self, timeout: float = 30.0) -> None:
        """Wait until the standby has replayed everything the primary has written so far."""
        from sqlalchemy import text

        with self.admin.connect() as conn:
            # The insert position, not the write position: with synchronous_commit off a
            # commit's WAL may still be in memory (the WAL writer sends it on within 200 ms).
            lsn = conn.execute(text("SELECT pg_current_wal_insert_lsn()::text")).scalar_one()
        self._standby.wait_for(lsn, timeout)


class _Local:
    """What starting our own server took: binaries, its directory, and whom it runs as."""

    def __init__(self, bindir: Path, root: Path, as_user: list[str]):
        self.bindir, self.root, self.as_user = bindir, root, as_user

    def run(self, *args: str) -> None:
        done = subprocess.run(self.as_user + list(args), capture_output=True, text=True, timeout=120,
                              check=False)
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"{Path(args[0]).name} failed: {' / '.join(detail)}")


class Standby:
    """A hot standby of our throwaway server: its databases, read-only, a little behind."""

    def __init__(self, local: _Local, data: Path, socket: Path, primary_url):
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        self._local, self._data, self.socket = local, data, socket
        self._url = primary_url.set(query={"host": str(socket)})
        self._admin = create_engine(self._url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def url_of(self, url: str) -> str:
        """Return the standby's URL of a database the primary's URL names."""
        from sqlalchemy.engine import make_url

        return self._url.set(database=make_url(url).database).render_as_string(hide_password=False)

    def wait_for(self, lsn: str, timeout: float) -> None:
        from sqlalchemy import text

        deadline = time.monotonic() + timeout
        while True:
            with self._admin.connect() as conn:
                if conn.execute(text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"),
                                {"lsn": lsn}).scalar():
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the standby did not replay the primary's WAL up to {lsn} "
                                   f"in {timeout:.0f} s")
            time.sleep(0.05)

    def stop(self) -> None:
        self._admin.dispose()
        subprocess.run(self._local.as_user + [str(self._local.bindir / "pg_ctl"), "-D", str(self._data),
                                              "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60, check=False)


def _start_standby(local: _Local, primary_url) -> Standby:
    """Copy the running primary with pg_basebackup (-R writes the connection back to it) and
    start the copy as a hot standby on a socket directory of its own."""
    data, socket = local.root / "standby", local.root / "standby-socket"
    socket.mkdir()
    if local.as_user:
        shutil.chown(socket, "postgres", "postgres")
    try:
        # -c fast: a checkpoint now, not one spread over minutes; the primary's own socket.
        local.run(str(local.bindir / "pg_basebackup"), "-h", str(local.root), "-U", "postgres",
                  "-D", str(data), "-R", "-X", "stream", "-c", "fast", "--no-sync")
        options = (f"-c listen_addresses='' -k {socket} -c hot_standby=on -c fsync=off "
                   "-c max_connections=200")
        local.run(str(local.bindir / "pg_ctl"), "-D", str(data), "-l", str(local.root / "standby.log"),
                  "-o", options, "-w", "-t", "60", "start")
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"could not start a hot standby: {exc}") from exc
    return Standby(local, data, socket, primary_url)


def start(durable: bool = False) -> Server:
    """Return the server ARCHIVE_TEST_POSTGRES_URL names, else start one (RuntimeError saying
    why when neither is possible). durable: with fsync and full-page writes, as a benchmark
    compares (tests do without them); commits are never waited for on disk, which loses at
    most the last ones on a power cut, as the store's SQLite does (WAL, synchronous=NORMAL)."""
    url = os.environ.get(ENV) if not durable else None
    if url:
        return Server(url)
    bindir = _bin_dir()
    if bindir is None:
        raise RuntimeError(f"no PostgreSQL server: set {ENV} or install postgresql "
                           f"(initdb not found in {_BINARIES} or on the PATH)")
    # PostgreSQL refuses to run as root: as root it runs as the postgres user.
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no postgres user to run PostgreSQL as") from None
        if not shutil.which("runuser"):
            raise RuntimeError("running as root without runuser: cannot start PostgreSQL as postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    # A short path: the socket's full name must fit in 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="archive-pg-", dir="/tmp"))
    if as_user:
        shutil.chown(root, "postgres", "postgres")
    data, log = root / "data", root / "log"

    def run(*args: str) -> None:
        done = subprocess.run(as_user + list(args), capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"{Path(args[0]).name} failed: {' / '.join(detail)}")

    def stop() -> None:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                                  "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--no-locale", "--no-sync")
        # Only the socket in our directory (no TCP port to collide with); durability is not
        # what a test of a throwaway database needs.
        options = f"-c listen_addresses='' -k {root} -c max_connections=200 -c synchronous_commit=off"
        if not durable:
            options += " -c fsync=off -c full_page_writes=off"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60",
            "start")
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        stop()
        raise RuntimeError(f"could not start a PostgreSQL server from {bindir}: {exc}") from exc
    return Server(f"postgresql+psycopg://postgres@/postgres?host={root}", stop=stop,
                  local=_Local(bindir, root, as_user))
