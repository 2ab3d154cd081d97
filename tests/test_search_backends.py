"""Whoosh and PostgreSQL search agree: on the fixed query set the same messages, totals and
facets, overlapping top results, the same dates in date order; PostgreSQL's own limits and
builds answer as Whoosh's do."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

import archiver.pipeline
from archiver.errors import ArchiverError, QueryError
from archiver.index import SearchIndex, open_index
from archiver.index import pgsearch
from archiver.pipeline import rebuild_index
from archiver.query import Archive
from archiver.store import Store
from benchmarks.search import QUERIES

# The benchmark's twenty queries, and filters and forms they leave out.
EXTRA = [("subject:visa", {}), ("lang:fr", {}), ("topic:itu*", {}), ("NOT visa", {}),
         ("org:rede", {}), ("list:bestbits AND quoted:delegation", {}), ("wcit", {"sort": "oldest"}),
         ("visa", {"by_thread": True, "sort": "newest"}), ("date:2012-11 statement", {})]
ALL = QUERIES + EXTRA
# Queries whose order is a relevance ranking (the others sort by date or only filter).
RANKED = [(q, o) for q, o in ALL if o.get("sort", "relevance") == "relevance"
          and any(not w.startswith(("topic:", "list:", "lang:", "date:", "NOT")) for w in q.split())]


def label(query: tuple[str, dict]) -> str:
    text, options = query
    return text + "".join(f" [{k}={v}]" for k, v in options.items())


@pytest.fixture(scope="module")
def archives(web_datas, postgres_server):
    """The sample archive searched by Whoosh (SQLite store) and by PostgreSQL (its store)."""
    archives = {}
    for name, server in (("whoosh", None), ("postgresql", postgres_server)):
        data, url = web_datas(server)
        archives[name] = Archive(Store(url), index_dir=data / "whoosh")
    assert type(archives["postgresql"].index).__name__ == "PgSearch"
    yield archives
    for archive in archives.values():
        archive.store.close()


@pytest.fixture
def both(archives):
    """The two archives, with fresh PostgreSQL connections: copying the session's database
    (clone_database) ends the sessions open on it, its pool's included."""
    archives["postgresql"].store.engine.dispose()
    return archives


def every_id(archive: Archive, text: str, options: dict) -> tuple[int, list[str]]:
    """A query's total and its hits: message ids, or thread ids when it gives one hit a
    thread (which message stands for a thread follows the ranking, which differs)."""
    if not options.get("by_thread"):
        return archive.search_ids(text, limit=10_000, **options)
    found = archive.search(text, per_page=100, **options)
    assert found["pages"] == 1
    return found["total"], [hit["thread_id"] for hit in found["hits"]]


@pytest.mark.parametrize("query", ALL, ids=label)
def test_the_same_messages_totals_and_facets(both, query):
    text, options = query
    whoosh, postgresql = (every_id(both[n], text, options) for n in ("whoosh", "postgresql"))
    assert postgresql[0] == whoosh[0]
    assert set(postgresql[1]) == set(whoosh[1])
    facets = [both[n].search(text, per_page=1, **options)["facets"] for n in ("whoosh", "postgresql")]
    assert facets[0] == facets[1]


def test_ranked_queries_share_their_top_results(both):
    """Ranking differs (BM25F over each language's terms, against ts_rank weighed by inverse
    document frequency), so only an overlap is asked: 60% of the first ten, on average."""
    shares = []
    for text, options in RANKED:
        tops = [set(both[n].search_ids(text, limit=10, **options)[1]) for n in ("whoosh", "postgresql")]
        if tops[0]:
            shares.append(len(tops[0] & tops[1]) / len(tops[0]))
    assert len(shares) >= 15
    assert sum(shares) / len(shares) >= 0.6, shares


@pytest.mark.parametrize("sort", ["newest", "oldest"])
def test_date_order_is_the_same(both, sort):
    dates = [[hit["date"] for hit in both[n].search("wcit", sort=sort, per_page=100)["hits"]]
             for n in ("whoosh", "postgresql")]
    assert dates[0] == dates[1] and len(dates[0]) == 100


@pytest.mark.parametrize("text", ["a*", "date:2013..2012", 'visa "open', "nofield:x", "the"])
def test_bad_queries_get_the_same_answer(both, text):
    answers = []
    for name in ("whoosh", "postgresql"):
        try:
            answers.append(both[name].search(text)["total"])
        except QueryError as exc:
            answers.append(str(exc))
    assert answers[0] == answers[1]


def test_snippets_mark_the_query_words_and_escape_the_rest(both):
    for hit in both["postgresql"].search("visa", per_page=20)["hits"]:
        assert "<mark>" in hit["snippet"].lower() or "visa" not in hit["snippet"].lower()
        assert "<" not in hit["snippet"].replace("<mark>", "").replace("</mark>", "")


def test_a_search_that_runs_too_long_is_cancelled_with_a_clear_answer(both, monkeypatch):
    monkeypatch.setattr(pgsearch, "TIMEOUT_MS", 1)
    with pytest.raises(QueryError, match="took longer than"):
        both["postgresql"].search("wcit OR visa OR statement OR civil OR society OR the")


def test_a_parallel_rebuild_equals_one_built_in_one_process(postgres_server, web_datas, tmp_path,
                                                            monkeypatch):
    _, url = web_datas(postgres_server)
    copy = postgres_server.clone_database(url)
    try:
        archive = Archive(Store(copy), index_dir=tmp_path / "whoosh")
        before = sorted(archive.index.fingerprints())
        totals = [archive.search(q, **o)["total"] for q, o in QUERIES]
        assert rebuild_index(archive, workers=1) == len(before)
        assert sorted(archive.index.fingerprints()) == before
        monkeypatch.setattr(archiver.pipeline, "PARALLEL_INDEX_MIN", 0)
        assert rebuild_index(archive, workers=3) == len(before)
        assert sorted(archive.index.fingerprints()) == before
        assert [archive.search(q, **o)["total"] for q, o in QUERIES] == totals
        assert archive.store.unindexed() == []
        archive.store.close()
    finally:
        postgres_server.drop_database(copy)


def test_the_backend_is_the_configurations_choice(postgres_server, tmp_path):
    sqlite = create_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    postgresql = create_engine(postgres_server.create_database())
    assert isinstance(open_index(tmp_path / "whoosh", sqlite, sqlite, "auto"), SearchIndex)
    assert isinstance(open_index(tmp_path / "whoosh", postgresql, postgresql, "auto"), pgsearch.PgSearch)
    assert isinstance(open_index(tmp_path / "whoosh", postgresql, postgresql, "whoosh"), SearchIndex)
    with pytest.raises(ArchiverError, match="needs the store in PostgreSQL"):
        open_index(tmp_path / "whoosh", sqlite, sqlite, "postgresql")
    with pytest.raises(ArchiverError, match="unknown search_backend"):
        open_index(tmp_path / "whoosh", sqlite, sqlite, "elastic")
    postgresql.dispose()


# --- what a review found ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["whoosh", "postgresql"])
@pytest.mark.parametrize("text", ["*:*", "'(' ) OR (list:governance NOT list:bestbits) OR ( ')' AND NOT list:bestbits",
                                  "list:governance", "NOT list:bestbits", "wcit"])
def test_a_reader_never_counts_a_hidden_list(both, name, text):
    """The visible lists are a condition of the search itself, not words added to the query:
    nothing typed counts or facets a message only a hidden list holds."""
    archive = both[name]
    archive.hidden = frozenset({"governance"})
    try:
        found = archive.search(text, per_page=100)
        ids = set(archive.search_ids(text, limit=10_000)[1])
    finally:
        archive.hidden = frozenset()
    shown = {hit["message_id"] for hit in found["hits"]}
    lists = {mid: r["lists"] for mid, r in ((r["message_id"], r) for r in archive.records(sorted(ids)))}
    assert all("bestbits" in lists.get(mid, ["bestbits"]) for mid in ids | shown)
    assert {v["value"] for v in found["facets"]["list"]} <= {"bestbits"}
    assert found["total"] == len(ids)


@pytest.mark.parametrize("name", ["whoosh", "postgresql"])
@pytest.mark.parametrize("text", ["list:a\x00b", "lang:e\x00n", "topic:it\x00us*", "wcit\x00"])
def test_nul_in_a_query_is_a_space(both, name, text):
    assert both[name].search(text)["total"] == both[name].search(text.replace("\x00", " "))["total"]


@pytest.mark.parametrize("name", ["whoosh", "postgresql"])
def test_a_lone_surrogate_in_a_query_is_refused_clearly(both, name):
    with pytest.raises(QueryError, match="not text"):
        both[name].search("list:\ud800")


@pytest.mark.parametrize("name", ["whoosh", "postgresql"])
def test_pages_beyond_any_archive_are_refused(both, name):
    with pytest.raises(QueryError, match="pages go up to"):
        both[name].search("wcit", page=10 ** 19)


def test_the_content_hash_of_a_document_with_nul_is_the_records(postgres_server):
    """Facet values keep NUL as the store does (escaped), so `archiver check` agrees."""
    engine = create_engine(postgres_server.create_database())
    index = pgsearch.PgSearch(engine, engine)
    record = {"message_id": "nul@x.example", "thread_id": "t\x00t", "from_address": "a\x00b@example.org",
              "organisation": "O\x00rg", "lists": ["li\x00st"], "topics": ["to\x00pic"],
              "date": "2012-11-01T10:00:00Z", "language": "en", "subject": "Sub\x00ject",
              "own_text": "Words\x00 here", "quoted_text": ""}
    assert index.update([record]) == 1
    assert index.fingerprints() == [("nul@x.example", SearchIndex.fingerprint(record))]
    found = index.search("words", lists=["li\x00st"])
    assert found.total == 1 and found.facets["author"] == [("a\x00b@example.org", 1)]
    engine.dispose()


def test_marks_in_mail_never_become_markup():
    assert pgsearch._snippet_text("a \ue001b\ue002 <c>") == "a b &lt;c&gt;"
    assert len(pgsearch._snippet_text("word " * 10_000)) <= pgsearch.SNIPPET_CHARS


def test_searches_during_rebuilds_see_the_old_table_or_the_new(postgres_server, web_datas, tmp_path):
    """A rebuild swaps a new table in; searches running meanwhile answer from one or the other,
    never fail and never see an empty table."""
    import threading

    _, url = web_datas(postgres_server)
    copy = postgres_server.clone_database(url)
    archive = Archive(Store(copy), index_dir=tmp_path / "whoosh")
    expected = archive.search("wcit")["total"]
    problems, done = [], threading.Event()

    def read() -> None:
        reader = Archive(archive.store, index_dir=tmp_path / "whoosh")
        while not done.is_set():
            try:
                total = reader.search("wcit")["total"]
                if total != expected:
                    problems.append(total)
            except Exception as exc:   # any failure is what this test looks for
                problems.append(repr(exc))

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):
            archive.index.rebuild(archive.messages())
    finally:
        done.set()
        for thread in threads:
            thread.join()
        archive.store.close()
        postgres_server.drop_database(copy)
    assert problems == []
