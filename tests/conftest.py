"""Shared test fixtures: real stores (SQLite, PostgreSQL), the realdata folder, a built sample archive."""

from __future__ import annotations

from pathlib import Path

import pytest

from archiver import config
from archiver.pipeline import ingest
from archiver.query import Archive
from archiver.store import Store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample"
# The stores a module runs on when it overrides `backend` with these as params.
BACKENDS = ("sqlite", "postgresql")


def eml(mid: str, subject: str = "Topic", refs: tuple[str, ...] = (), body: str = "Body.\n",
        hour: int = 10) -> bytes:
    """Return a small message with the given id, subject and reply chain (oldest first)."""
    head = (f"From: Jane Doe <jane.doe@civil.example>\nMessage-ID: <{mid}>\n"
            f"Date: Tue, 02 Oct 2012 {hour:02d}:00:00 +0200\nSubject: {subject}\n")
    if refs:
        head += f"References: {' '.join(f'<{r}>' for r in refs)}\nIn-Reply-To: <{refs[-1]}>\n"
    return (head + "\n" + body).encode()


def realdata_dir() -> Path:
    """Return the third-party mail folder (ARCHIVE_REALDATA_DIR, default ../shared/realdata)."""
    path = Path(config.get("realdata_dir"))
    return path if path.is_absolute() else (ROOT / path).resolve()


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The realdata folder; tests that need it skip with a reason where it is absent."""
    path = realdata_dir()
    if not path.is_dir():
        pytest.skip(f"third-party mail not found at {path} (set ARCHIVE_REALDATA_DIR)")
    return path


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server (ARCHIVE_TEST_POSTGRES_URL's, else one started for the session);
    tests needing it skip, saying why, where there is none."""
    from postgres import start

    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[test]')")
    try:
        server = start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield server
    server.close()


@pytest.fixture
def backend() -> str:
    """The database a test's stores live in: SQLite, unless its module overrides this fixture
    with params=BACKENDS to run on PostgreSQL as well."""
    return "sqlite"


@pytest.fixture
def store_url(backend, tmp_path, request):
    """Return a factory of fresh store URLs: a SQLite file in the test's temporary directory,
    or a new database on the PostgreSQL server, dropped after the test."""
    if backend == "sqlite":
        yield lambda name="store": f"sqlite:///{tmp_path / (name + '.sqlite3')}"
        return
    server = request.getfixturevalue("postgres_server")
    made: list[str] = []

    def factory(name: str = "store") -> str:
        made.append(server.create_database())
        return made[-1]

    yield factory
    for url in made:
        server.drop_database(url)


@pytest.fixture
def make_store(store_url):
    """Return a factory of fresh stores of the test's backend."""
    stores: list[Store] = []

    def factory(name: str = "store") -> Store:
        store = Store(store_url(name))
        stores.append(store)
        return store

    yield factory
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store) -> Store:
    return make_store()


def fill(url: str, data: Path, batches) -> None:
    """Ingest each (list name, sources) of batches in turn into the store at url, with the
    search index in data/whoosh, and index what is left to index."""
    from archiver.pipeline import update_index

    store = Store(url)
    archive = Archive(store, index_dir=data / "whoosh")
    try:
        for name, sources in batches:
            ingest(store, [str(source) for source in sources], name, archive=archive)
        update_index(archive)
    finally:
        if archive.index is not None:
            archive.index.close()
        store.close()


def _session_url(path: Path, server) -> str:
    """A store URL for a session-wide archive: a SQLite file at path, or (given a server) a
    new PostgreSQL database, which the server drops when the session ends."""
    return f"sqlite:///{path}" if server is None else server.create_database()


@pytest.fixture(scope="session")
def sample_archives(tmp_path_factory):
    """Return the bundled sample archive (both lists) in SQLite, or on the PostgreSQL server
    given, ingested once per session."""
    if not (SAMPLE / "bestbits").is_dir():
        pytest.fail("fixtures/sample is missing: run python fixtures/generate.py")
    built: dict[str, Archive] = {}

    def build(server=None) -> Archive:
        backend = "sqlite" if server is None else "postgresql"
        if backend not in built:
            path = tmp_path_factory.mktemp("sample") / "archive.sqlite3"
            store = Store(_session_url(path, server))
            reports = {name: ingest(store, [str(SAMPLE / name)], name) for name in ("bestbits", "governance")}
            built[backend] = Archive(store)
            built[backend].reports = reports
        return built[backend]

    yield build
    for archive in built.values():
        archive.store.close()


@pytest.fixture(scope="session")
def sample_archive(sample_archives) -> Archive:
    """The bundled sample archive (both lists) in SQLite, ingested once per test session."""
    return sample_archives()


@pytest.fixture(scope="session")
def web_datas(tmp_path_factory):
    """Return (data directory, store URL) holding the sample archive (both lists) with its
    search index, in SQLite or on the PostgreSQL server given, built once per session. The
    index is Whoosh's, in the data directory, whatever the store."""
    built: dict[str, tuple[Path, str]] = {}

    def build(server=None) -> tuple[Path, str]:
        backend = "sqlite" if server is None else "postgresql"
        if backend not in built:
            data = tmp_path_factory.mktemp("webdata")
            url = _session_url(data / "archive.sqlite3", server)
            fill(url, data, [(name, [SAMPLE / name]) for name in ("bestbits", "governance")])
            built[backend] = (data, url)
        return built[backend]

    return build


@pytest.fixture(scope="session")
def web_data(web_datas) -> Path:
    """A data directory holding the sample archive (both lists, SQLite) with its search index."""
    return web_datas()[0]


def private_copy(request, tmp_path: Path, web_datas, monkeypatch) -> Path:
    """A copy of the sample's data directory (store and index) a test may change, on the
    backend request.param names; for PostgreSQL a copied database, which ARCHIVE_DATABASE_URL
    names for the test (so the CLI, open_store and the app all find it) and which is dropped after."""
    import shutil

    server = on_backend(request)
    source, url = web_datas(server)
    copy = tmp_path / "data"
    shutil.copytree(source, copy)
    if server is not None:
        clone = server.clone_database(url)
        request.addfinalizer(lambda: server.drop_database(clone))
        monkeypatch.setenv("ARCHIVE_DATABASE_URL", clone)
    return copy


def make_app(data: Path, url: str | None = None):
    """The Flask app over a built sample archive (its data directory and store URL)."""
    from web import create_app

    # Rate limits are tested on their own (tests/test_web_limits.py); here they would only
    # count the suite's own requests.
    return create_app({"DATA_DIR": str(data), "DATABASE_URL": url, "TESTING": True,
                       "SEARCH_RATE": "100000 per minute", "EXPORT_RATE": "100000 per minute"})


def on_backend(request):
    """The PostgreSQL server when a parametrised fixture's param says so, else None (SQLite)."""
    return request.getfixturevalue("postgres_server") if request.param == "postgresql" else None


@pytest.fixture(scope="module", params=BACKENDS)
def module_server(request):
    """None in a module's SQLite run, the PostgreSQL server in its PostgreSQL run: the tests
    that use a fixture taking this one (sample_on_both, archive_on_both, build_archive) run
    once on each database, with the module's archives built once per run."""
    return on_backend(request)


@pytest.fixture(scope="module")
def sample_on_both(module_server, web_datas):
    """(data directory, store URL) of the sample archive in SQLite, then on PostgreSQL, with
    ARCHIVE_DATABASE_URL naming the store meanwhile (so the CLI, open_store and create_app
    find it from the data directory alone). A module opts in by taking this as its
    `web_data` (the directory) and `app_on_both` as its `app`; its tests must then name any
    other store by URL (make_store and build_archive do), never by a data directory alone."""
    data, url = web_datas(module_server)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHIVE_DATABASE_URL", url)
        yield data, url


@pytest.fixture(scope="module")
def archive_on_both(module_server, sample_archives) -> Archive:
    """The sample archive of `sample_archives` (no search index) in SQLite, then on PostgreSQL."""
    return sample_archives(module_server)


@pytest.fixture(scope="module")
def build_archive(module_server, tmp_path_factory):
    """Return a builder of a module's own small archive on the module's database (SQLite,
    then PostgreSQL): build(data, batches) fills a new store as `fill` does, with its index
    in data/whoosh, and returns the store's URL (a file in data, or a database dropped when
    the module ends). Name the store by that URL: ARCHIVE_DATABASE_URL may meanwhile name
    the sample's."""
    made: list[str] = []

    def build(data: Path, batches) -> str:
        made.append(_session_url(data / "archive.sqlite3", module_server))
        fill(made[-1], data, batches)
        return made[-1]

    yield build
    if module_server is not None:
        for url in made:
            module_server.drop_database(url)


@pytest.fixture
def database_env(backend, store_url, monkeypatch) -> str | None:
    """On PostgreSQL, a new database that ARCHIVE_DATABASE_URL names for the test, so the CLI
    and the processes it starts find it from a data directory alone; on SQLite nothing (the
    store is the data directory's file) and None."""
    if backend == "sqlite":
        return None
    url = store_url()
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", url)
    return url


@pytest.fixture(scope="module")
def app_on_both(sample_on_both):
    """The Flask app over `sample_on_both`'s archive."""
    app = make_app(*sample_on_both)
    yield app
    app.extensions["store"].close()


@pytest.fixture(scope="session")
def app(web_datas):
    """The Flask app over the sample archive (SQLite)."""
    return make_app(*web_datas())


@pytest.fixture
def client(app):
    return app.test_client()
