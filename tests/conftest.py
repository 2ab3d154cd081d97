"""Shared test fixtures: real stores on disk, the realdata folder, a built sample archive."""

from __future__ import annotations

from pathlib import Path

import pytest

from archiver import config
from archiver.pipeline import ingest
from archiver.query import Archive
from archiver.store import Store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample"


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


@pytest.fixture
def make_store(tmp_path):
    """Return a factory of fresh SQLite stores in the test's temporary directory."""
    stores: list[Store] = []

    def factory(name: str = "store") -> Store:
        store = Store(f"sqlite:///{tmp_path / (name + '.sqlite3')}")
        stores.append(store)
        return store

    yield factory
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store) -> Store:
    return make_store()


@pytest.fixture(scope="session")
def sample_archive(tmp_path_factory) -> Archive:
    """The bundled sample archive (both lists), ingested once per test session."""
    if not (SAMPLE / "bestbits").is_dir():
        pytest.fail("fixtures/sample is missing: run python fixtures/generate.py")
    path = tmp_path_factory.mktemp("sample") / "archive.sqlite3"
    store = Store(f"sqlite:///{path}")
    reports = {name: ingest(store, [str(SAMPLE / name)], name) for name in ("bestbits", "governance")}
    archive = Archive(store)
    archive.reports = reports
    yield archive
    store.close()


@pytest.fixture(scope="session")
def web_data(tmp_path_factory) -> Path:
    """A data directory holding the sample archive (both lists) with its search index."""
    from archiver.pipeline import update_index

    data = tmp_path_factory.mktemp("webdata")
    store = Store(config.database_url(data))
    archive = Archive(store, index_dir=data / "whoosh")
    for name in ("bestbits", "governance"):
        ingest(store, [str(SAMPLE / name)], name, archive=archive)
    update_index(archive)
    if archive.index is not None:
        archive.index.close()
    store.close()
    return data


@pytest.fixture(scope="session")
def app(web_data):
    """The Flask app over the sample archive."""
    from web import create_app

    # Rate limits are tested on their own (tests/test_web_limits.py); here they would only
    # count the suite's own requests.
    return create_app({"DATA_DIR": str(web_data), "TESTING": True,
                       "SEARCH_RATE": "100000 per minute", "EXPORT_RATE": "100000 per minute"})


@pytest.fixture
def client(app):
    return app.test_client()
