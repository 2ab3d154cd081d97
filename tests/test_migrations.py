"""Schema revisions (Alembic) on SQLite and PostgreSQL, `archiver db`, and `archiver migrate`."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import sqlite3
from contextlib import closing
from datetime import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine, func, insert, inspect, select, text

from archiver import migrations
from archiver import schema as s
from archiver.cli import main
from archiver.errors import StoreError
from archiver.migrate import migrate, target_data
from archiver.models import RawMessage
from archiver.pipeline import prepare
from archiver.query import Archive
from archiver.store import Store
from conftest import BACKENDS, eml
from test_layout import ARCHIVER, project_imports

# What the sample archive is searched for, before and after a round trip between databases.
QUERIES = ("WCIT statement", "translations", "hotel OR airport", "list:governance",
           '"enhanced cooperation"', "from:leyla")


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Every store of this module's tests is made in SQLite and on PostgreSQL."""
    return request.param


def catalogue(url: str) -> dict:
    """Return the database's own account of its tables, columns, constraints and indexes (the
    DDL as it was run), without Alembic's version table."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                rows = conn.exec_driver_sql("SELECT type, name, sql FROM sqlite_master")
            else:
                rows = conn.execute(text("""
                    SELECT 'column', table_name || '.' || column_name,
                           concat_ws(' ', ordinal_position, data_type, character_maximum_length,
                                     is_nullable, column_default)
                      FROM information_schema.columns WHERE table_schema = 'public'
                    UNION ALL
                    SELECT 'constraint', conrelid::regclass::text || '.' || conname,
                           pg_get_constraintdef(oid)
                      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
                    UNION ALL
                    SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
                    UNION ALL
                    SELECT 'sequence', sequence_name, data_type FROM information_schema.sequences"""))
            # SQLite keeps each statement's text: a column that ALTER TABLE added follows a
            # space where create_all puts a new line. Runs of white space count as one.
            return {(kind, name): sql and " ".join(sql.split())
                    for kind, name, sql in rows if "alembic_version" not in name}
    finally:
        engine.dispose()


def made_by_create_all(url: str) -> None:
    """Make a store's tables as schema.py declares them (metadata.create_all)."""
    engine = create_engine(url)
    try:
        s.metadata.create_all(engine)
    finally:
        engine.dispose()


def made_before_alembic(url: str, version: str = "6") -> None:
    """Make a store as the archiver did before Alembic: the tables of schema version 6 (what the
    baseline revision makes), a schema_version, no revision, one list."""
    migrations.upgrade(url, migrations.BASELINE)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE alembic_version"))
            conn.execute(s.meta.update().where(s.meta.c.key == "schema_version").values(value=version))
            conn.execute(insert(s.lists), [{"name": "bestbits"}])
    finally:
        engine.dispose()


def entry(data: bytes):
    return prepare(RawMessage(data=data, kind="mbox", location="test#0"), hashlib.sha256(data).hexdigest())


# --- the baseline and the head -------------------------------------------------------------------
def test_a_new_store_has_the_schema_create_all_made(store_url):
    new, before = store_url("new"), store_url("before")
    Store(new).close()
    made_by_create_all(before)
    assert catalogue(new) == catalogue(before)
    assert migrations.status(new).revision == migrations.head()


def test_head_and_schema_py_do_not_differ(store_url):
    url = store_url()
    Store(url).close()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "include_object": migrations.include_for(conn.dialect.name)})
            with migrations.comparing():
                assert compare_metadata(context, s.metadata) == []
            version = conn.execute(select(s.meta.c.value).where(s.meta.c.key == "schema_version")).scalar()
    finally:
        engine.dispose()
    assert version == str(s.SCHEMA_VERSION)


def test_downgrade_to_base_and_upgrade_to_head(store_url):
    url = store_url()
    Store(url).close()
    expected = catalogue(url)
    assert migrations.downgrade(url, "base").state == "empty"
    assert {name for _kind, name in catalogue(url)} == set()
    before, after = migrations.upgrade(url)
    assert (before.state, after.state) == ("empty", "current")
    assert catalogue(url) == expected
    Store(url).close()


def test_a_store_made_before_alembic_is_marked_as_the_baseline_then_upgraded_when_asked(store_url):
    url = store_url()
    made_before_alembic(url)
    assert migrations.status(url).state == "unversioned"
    with pytest.raises(StoreError, match=r"revision 0001, this archiver's is .*: run `archiver db upgrade`"):
        Store(url)   # marked as the baseline, and behind: never upgraded unasked
    assert migrations.status(url).revision == migrations.BASELINE
    before, after = migrations.upgrade(url)
    assert (before.state, after.state) == ("behind", "current")
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(select(s.lists.c.name)).scalars().all() == ["bestbits"]
            version = conn.execute(select(s.meta.c.value).where(s.meta.c.key == "schema_version")).scalar()
    finally:
        store.close()
    assert version == str(s.SCHEMA_VERSION)
    indexes = {name for kind, name in catalogue(url) if kind == "index"}
    assert ("ix_threads_subject_span" in indexes) == url.startswith("sqlite")
    assert "ix_threads_subject_last" not in indexes
    declared = store_url("declared")
    made_by_create_all(declared)
    assert catalogue(url) == catalogue(declared)


def test_revision_0003_gives_stored_threads_their_host_keys(store_url):
    """A store threaded before revision 0003 gets each thread's host key (its root's date and
    row, 1970 for an undated root, or under a stand-in its first reply's) as threading writes it."""
    from archiver.thread import thread

    url = store_url()
    store = Store(url)
    try:
        new_ids, _ = store.write_batch("bestbits", [entry(data) for data in [
            eml("root@x.example", subject="Budget", hour=9),
            eml("reply@x.example", subject="Re: Budget", refs=("root@x.example",), hour=8),
            eml("child@x.example", subject="Re: Visas", refs=("gone@x.example",), hour=11),
            eml("early@x.example", subject="Re: Visas", refs=("gone@x.example",), hour=10),
            b"From: Jane <jane@x.example>\nMessage-ID: <undated@x.example>\nSubject: Hotels\n\nBody.\n"]])
        store.write_threads(thread(store.thread_inputs(new_ids)))
    finally:
        store.close()
    t = s.threads.c
    query = select(t.thread_id, t.host_date, t.host_order).order_by(t.thread_id)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            written = conn.execute(query).all()
            pks = dict(conn.execute(select(s.messages.c.message_id, s.messages.c.id)).all())
        assert {(date, order) for _tid, date, order in written} == {   # +0200 in the Date headers
            (datetime(2012, 10, 2, 7), pks["root@x.example"]),
            (datetime(2012, 10, 2, 8), pks["early@x.example"]),
            (datetime(1970, 1, 1), pks["undated@x.example"])}
        migrations.downgrade(url, "0002")
        assert "host_date" not in {c["name"] for c in inspect(engine).get_columns("threads")}
        migrations.upgrade(url)
        with engine.connect() as conn:
            assert conn.execute(query).all() == written
    finally:
        engine.dispose()


def test_revision_0004_counts_stored_threads_in_each_list(store_url):
    """A store made before revision 0004 gets each thread's count and dates in each list
    (redacted messages left out), as the store itself writes them."""
    from archiver.thread import thread

    url = store_url()
    store = Store(url)
    try:
        first, _ = store.write_batch("bestbits", [entry(data) for data in [
            eml("root@y.example", subject="Budget", hour=9),
            eml("reply@y.example", subject="Re: Budget", refs=("root@y.example",), hour=10),
            eml("hidden@y.example", subject="Re: Budget", refs=("root@y.example",), hour=12),
            eml("other@y.example", subject="Visas", hour=11)]])
        crossed = eml("cross@y.example", subject="Re: Budget", refs=("root@y.example",), hour=13)
        second, _ = store.write_batch("governance", [entry(crossed)])
        store.write_threads(thread(store.thread_inputs(first + second)))
        store.write_batch("bestbits", [entry(crossed)])   # the cross-post, seen again on the other list
        store.redact("hidden@y.example", "asked by its author")
    finally:
        store.close()
    t, ls = s.thread_lists.c, s.lists.c
    query = (select(ls.name, t.size, t.first_date, t.last_date).join(s.lists, ls.id == t.list)
             .order_by(ls.name, t.size))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            written = conn.execute(query).all()
        assert [tuple(row) for row in written] == [   # +0200 in the Date headers
            ("bestbits", 1, datetime(2012, 10, 2, 9), datetime(2012, 10, 2, 9)),
            ("bestbits", 3, datetime(2012, 10, 2, 7), datetime(2012, 10, 2, 11)),
            ("governance", 1, datetime(2012, 10, 2, 11), datetime(2012, 10, 2, 11))]
        migrations.downgrade(url, "0003")
        assert "thread_lists" not in inspect(engine).get_table_names()
        migrations.upgrade(url)
        with engine.connect() as conn:
            assert conn.execute(query).all() == written
    finally:
        engine.dispose()


def _at(data: bytes, location: str):
    return prepare(RawMessage(data=data, kind="mbox", location=location), hashlib.sha256(data).hexdigest())


def test_revision_0006_keys_sources_by_list_location_and_message_row(store_url):
    """A store made before revision 0006 gets each raw's Message-ID and each source's message
    row as the store itself writes them: a rejected raw none, a second copy of a Message-ID
    (other bytes) the stored message, the same bytes read at a second place their message."""
    url = store_url()
    store = Store(url)
    try:
        first, second = eml("one@z.example", hour=9), eml("two@z.example", hour=10)
        other_bytes = eml("one@z.example", hour=9, body="The list's copy, with a footer.\n")
        store.write_batch("bestbits", [_at(first, "a.mbox#0"), _at(second, "a.mbox#500"),
                                       _at(b"no headers at all\n", "a.mbox#900")])
        store.write_batch("governance", [_at(other_bytes, "g.mbox#0")])
        store.add_sources("governance", [_at(second, "g.mbox#700")])
        store.write_batch("governance", [_at(eml("three@z.example", hour=11), "g.mbox#900")])
        assert store.redact("three@z.example", "asked by its author", expunge=True)
    finally:
        store.close()
    raws = select(s.raws.c.sha256, s.raws.c.message_id).order_by(s.raws.c.sha256)
    c, m = s.sources.c, s.messages.c
    sources = (select(c.list, c.location, c.message_id, m.message_id)
               .outerjoin(s.messages, m.id == c.message).order_by(c.id))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            written = (conn.execute(raws).all(), conn.execute(sources).all())
        assert sorted(mid for _, mid in written[0] if mid) == [
            "one@z.example", "one@z.example", "three@z.example", "two@z.example"]
        assert [tuple(row) for row in written[1]] == [
            ("bestbits", "a.mbox#0", "one@z.example", "one@z.example"),
            ("bestbits", "a.mbox#500", "two@z.example", "two@z.example"),
            ("bestbits", "a.mbox#900", None, None),
            ("governance", "g.mbox#0", "one@z.example", "one@z.example"),
            ("governance", "g.mbox#700", "two@z.example", "two@z.example"),
            ("governance", "g.mbox#900", "three@z.example", "three@z.example")]   # expunged
        migrations.downgrade(url, "0005")
        columns = {table: {col["name"] for col in inspect(engine).get_columns(table)} for table in ("raws", "sources")}
        assert "message_id" not in columns["raws"] and "message" not in columns["sources"]
        unique = [u["column_names"] for u in inspect(engine).get_unique_constraints("sources")]
        assert unique == [["raw_sha256", "list", "location"]]
        indexed = [i["column_names"] for i in inspect(engine).get_indexes("sources")]
        assert ["message_id"] in indexed
        migrations.upgrade(url)
        with engine.connect() as conn:
            assert (conn.execute(raws).all(), conn.execute(sources).all()) == written
        unique = [u["column_names"] for u in inspect(engine).get_unique_constraints("sources")]
        assert unique == [["list", "location", "raw_sha256"]]
        indexed = [i["column_names"] for i in inspect(engine).get_indexes("sources")]
        assert ["message"] in indexed and ["message_id"] not in indexed
    finally:
        engine.dispose()
    # The upgraded store reads and writes as a new one: a place read before is known, and the
    # same bytes at a new place are stored as a source of their message.
    store = Store(url)
    try:
        stored, here = store.known("bestbits", [(hashlib.sha256(first).hexdigest(), "a.mbox#0"),
                                                (hashlib.sha256(first).hexdigest(), "b.mbox#0")])
        assert stored == {hashlib.sha256(first).hexdigest()}
        assert here == {(hashlib.sha256(first).hexdigest(), "a.mbox#0")}
        assert Archive(store).message_hash_at("nothing.html") is None
        (record,) = Archive(store).records(["two@z.example"])
        assert [(src["list"], src["location"]) for src in record["sources"]] == [
            ("bestbits", "a.mbox#500"), ("governance", "g.mbox#700")]
    finally:
        store.close()


def test_a_store_of_an_older_schema_version_is_refused(store_url):
    url = store_url()
    made_before_alembic(url, version="5")
    with pytest.raises(StoreError, match="only adopt version 6; ingest into a new data directory"):
        Store(url)
    assert migrations.status(url).revision is None     # left as it was


def test_first_opens_at_once_make_the_schema_once(store_url):
    url = store_url()
    opens = 4
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(opens)
    workers = [fork.Process(target=_open_at_once, args=(url, barrier)) for _ in range(opens)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0] * opens
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all() == [
                migrations.head()]
            assert conn.execute(select(s.meta)).all() == [("schema_version", str(s.SCHEMA_VERSION))]
    finally:
        engine.dispose()


def _open_at_once(url: str, barrier) -> None:
    barrier.wait(30)
    Store(url).close()


# --- a store behind (or ahead of) the archiver ------------------------------------------------
LATER = '''"""A test's revision after the head: an index, and the next schema version."""

import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_test_lists_name", "lists", ["name"])
    op.execute(sa.text("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
                       "WHERE key = 'schema_version'"))


def downgrade() -> None:
    op.drop_index("ix_test_lists_name", "lists")
    op.execute(sa.text("UPDATE meta SET value = CAST(CAST(value AS INTEGER) - 1 AS TEXT) "
                       "WHERE key = 'schema_version'"))
'''


@pytest.fixture
def later(tmp_path, monkeypatch):
    """Return a switch: on, the archiver knows a revision after its head (an archiver of the
    next release); off, it is this one again."""
    folder = tmp_path / "later"
    folder.mkdir()
    (folder / "9001_test.py").write_text(LATER.format(head=migrations.head()), encoding="utf-8")
    ours = migrations.version_locations

    def switch(on: bool) -> None:
        monkeypatch.setattr(migrations, "version_locations", ours + ((str(folder),) if on else ()))
    return switch


def test_a_store_behind_is_refused_until_db_upgrade(store_url, later, tmp_path, monkeypatch):
    url = store_url()
    Store(url).close()
    ours = migrations.head()
    later(True)
    advice = rf"revision {ours}, this archiver's is 9001: run `archiver db upgrade`"
    with pytest.raises(StoreError, match=advice):
        Store(url)
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", url)
    runner, data = CliRunner(), str(tmp_path / "data")
    shown = runner.invoke(main, ["--data", data, "db", "current"], catch_exceptions=False)
    assert shown.exit_code == 0 and shown.stdout.startswith(f"{ours}  ")
    assert "archiver db upgrade" in shown.stdout
    done = runner.invoke(main, ["--data", data, "db", "upgrade"], catch_exceptions=False)
    assert done.exit_code == 0 and done.stdout == f"upgraded from revision {ours} to 9001\n"
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            version = conn.execute(select(s.meta.c.value).where(s.meta.c.key == "schema_version")).scalar()
            assert version == str(s.SCHEMA_VERSION + 1)
    finally:
        store.close()
    again = runner.invoke(main, ["--data", data, "db", "upgrade"], catch_exceptions=False)
    assert again.stdout == "already at revision 9001: nothing to do\n"
    # This archiver again, without the later revision: the store is ahead of it.
    later(False)
    with pytest.raises(StoreError, match="revision 9001, which this archiver does not know"):
        Store(url)
    refused = runner.invoke(main, ["--data", data, "db", "upgrade"], catch_exceptions=False)
    assert refused.exit_code == 1 and "upgrade the archiver" in refused.output


def test_db_upgrade_adopts_a_store_made_before_alembic_then_upgrades_it(store_url, later):
    url = store_url()
    made_before_alembic(url)
    later(True)
    before, after = migrations.upgrade(url)
    assert (before.state, after.revision) == ("unversioned", "9001")


def test_db_current_of_a_new_data_directory_makes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("ARCHIVE_DATABASE_URL", raising=False)
    shown = CliRunner().invoke(main, ["--data", str(tmp_path), "db", "current"], catch_exceptions=False)
    assert shown.exit_code == 0 and "holds no store yet" in shown.stdout
    assert not (tmp_path / "archive.sqlite3").exists()


def test_write_revision_writes_the_next_revision_from_schema_py(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'archive.sqlite3'}"     # empty: brought to the head first
    folder = tmp_path / "versions"
    folder.mkdir()
    monkeypatch.setattr(migrations, "version_locations", migrations.version_locations + (str(folder),))
    head = migrations.head()
    path = migrations.write_revision(url, "nothing changed")
    try:
        written = path.read_text(encoding="utf-8")
        assert path.parent == folder and f"down_revision = {head!r}" in written
        upgrade = written[written.index("def upgrade()"):written.index("def downgrade()")]
        assert "op." not in upgrade      # schema.py and the head agree: nothing to do
        assert migrations.head() != head
    finally:
        migrations._script.cache_clear()


# --- migrate ---------------------------------------------------------------------------------
def table_rows(url: str) -> dict[str, list[tuple]]:
    """Every store table's rows, as SQLAlchemy reads them, in key order."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {table.name: [tuple(row) for row in conn.execute(
                        select(table).order_by(*table.primary_key))]
                    for table in s.metadata.sorted_tables}
    finally:
        engine.dispose()


def sqlite_rows(path) -> dict[str, list[tuple]]:
    """Every store table's rows as SQLite holds them (dates as text, booleans as 0 and 1)."""
    with closing(sqlite3.connect(path)) as conn:
        return {table.name: conn.execute(f"SELECT * FROM {table.name} ORDER BY "
                                         + ", ".join(c.name for c in table.primary_key)).fetchall()
                for table in s.metadata.sorted_tables}


def results(url: str, data) -> dict[str, tuple[int, list[str]]]:
    store = Store(url)
    archive = Archive(store, index_dir=data / "whoosh")
    try:
        return {q: _hits(archive.search(q, per_page=100, sort="newest")) for q in QUERIES}
    finally:
        if archive.index is not None:
            archive.index.close()
        store.close()


def _hits(found: dict) -> tuple[int, list[str]]:
    return found["total"], [hit["message_id"] for hit in found["hits"]]


def test_migrate_sqlite_to_postgresql_and_back_keeps_rows_and_search(web_datas, postgres_server, tmp_path):
    data, url = web_datas()
    middle = postgres_server.create_database()
    try:
        source = Store(url)
        try:
            there = migrate(source, middle, tmp_path / "middle", chunk=37)   # chunks end mid-table
        finally:
            source.close()
        expected = table_rows(url)
        assert there.rows == {name: len(rows) for name, rows in expected.items()}
        assert there.rows["messages"] > 0 and there.indexed == there.rows["messages"]
        assert table_rows(middle) == expected
        middle_store = Store(middle)
        try:
            back = migrate(middle_store, f"sqlite:///{tmp_path / 'back' / 'archive.sqlite3'}",
                           tmp_path / "back")
        finally:
            middle_store.close()
        assert back == there
        assert sqlite_rows(tmp_path / "back" / "archive.sqlite3") == sqlite_rows(data / "archive.sqlite3")
        found = results(url, data)
        assert all(total > 0 for total, _ids in found.values())
        assert results(f"sqlite:///{tmp_path / 'back' / 'archive.sqlite3'}", tmp_path / "back") == found
        # On PostgreSQL with the search backend the settings choose there: the same messages.
        assert {q: (n, set(ids)) for q, (n, ids) in results(middle, tmp_path / "middle").items()} == {
            q: (n, set(ids)) for q, (n, ids) in found.items()}
        # Keys go on after the copied ones: a new list, message and source take fresh keys.
        store = Store(middle)
        try:
            new, _ = store.write_batch("newlist", [entry(eml("after.migrate@civil.example"))])
            assert new == ["after.migrate@civil.example"]
            with store.engine.connect() as conn:
                for table in (s.lists, s.messages, s.sources):
                    top = max(row[0] for row in expected[table.name])
                    assert conn.execute(select(func.max(table.c.id))).scalar() == top + 1, table.name
        finally:
            store.close()
    finally:
        postgres_server.drop_database(middle)


def test_migrate_refuses_a_target_that_is_not_empty(sample_archive, store_url, tmp_path):
    target = store_url("target")
    store = Store(target)
    try:
        store.write_batch("bestbits", [entry(eml("already.here@civil.example"))])
    finally:
        store.close()
    before = table_rows(target)
    with pytest.raises(StoreError, match=r"not empty \(lists, meta, raws, .*migrate into an empty database"):
        migrate(sample_archive.store, target, tmp_path)
    assert table_rows(target) == before


def test_cli_migrate_copies_a_data_directory_into_a_new_one(web_datas, tmp_path, monkeypatch):
    monkeypatch.delenv("ARCHIVE_DATABASE_URL", raising=False)
    source = tmp_path / "source"
    shutil.copytree(web_datas()[0], source)
    runner = CliRunner()
    target = f"sqlite:///{tmp_path / 'copy' / 'archive.sqlite3'}"
    assert target_data(target, source) == tmp_path / "copy"
    done = runner.invoke(main, ["--data", str(source), "migrate", "--to", target], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "messages" in done.stdout and done.stdout.rstrip().splitlines()[-1].startswith("indexed ")
    stats = [runner.invoke(main, ["--data", str(data), "stats", "--format", "json"]).stdout
             for data in (source, tmp_path / "copy")]
    assert stats[0] == stats[1]
    searched = [json.loads(runner.invoke(main, ["--data", str(data), "search", "WCIT", "--sort", "newest",
                                                "--format", "json"]).stdout)
                for data in (source, tmp_path / "copy")]
    for found in searched:
        for hit in found["hits"]:
            # Scores weigh term statistics, which an index built in one go and one updated
            # ingest by ingest (the source's) keep slightly differently.
            del hit["score"]
    assert searched[0] == searched[1] and searched[0]["total"] > 0
    again = runner.invoke(main, ["--data", str(source), "migrate", "--to", target])
    assert again.exit_code == 1 and "not empty" in again.output


def test_only_the_cli_imports_migrate():
    # migrate imports pipeline and query; a module below them importing it would turn the
    # architecture's direction around.
    importers = {name for name, path in ARCHIVER.items()
                 if any(i == "archiver.migrate" or i.startswith("archiver.migrate.")
                        for i in project_imports(path))}
    assert importers == {"archiver.cli"}
