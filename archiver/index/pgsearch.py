"""Search in PostgreSQL: tsvector columns and GIN indexes behind the same calls as the Whoosh index."""

from __future__ import annotations

import hashlib
import html
import math
import multiprocessing
import os
import re
import traceback
import uuid
from typing import Callable, Collection, Iterable, Iterator

from sqlalchemy import text as sql
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ..errors import ArchiverError, QueryError
from ..querylang import prepare
from ..schema import _escape_nul, _unescape_nul
from .analysis import STEMMED, _micros
from .parse import _typed
from .schema import FACETS, NO_DATE
from .searchindex import UNTRUSTED, Found, Hit, SearchIndex, check_request
from .tsquery import Translation, translate

TABLE = "search_docs"
FORMAT = "archive search format 2"   # the table's comment; another one is refused (reindex)
SEQUENCE = "search_docs_seq"
STATS = "search_stats"       # the texts' average lengths in words, which ranking divides by
# Each language is analysed as the Whoosh index does: stemmed with its accents (stemmers
# expect them: 'declarações' and 'declaração' share the stem 'declar') and then folded, plus
# folded first and then stemmed, so a word typed without accents finds them too. The second
# is a configuration of our own per language (unaccent before the stemmer); the first is
# PostgreSQL's own configuration, its lexemes folded by archive_tsvector(). Other languages
# are folded and not stemmed.
CONFIGS = {lang: f"archive_{lang}" for lang in STEMMED} | {"": "archive_xx"}
_SNOWBALL = {"en": "english", "fr": "french", "es": "spanish", "pt": "portuguese"}
PLAIN = {lang: _SNOWBALL.get(lang, CONFIGS[""]) for lang in CONFIGS}
_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION archive_tsvector(plain regconfig, folded regconfig, body text)
RETURNS tsvector LANGUAGE plpgsql STABLE AS $$
DECLARE
    both_ tsvector := to_tsvector(folded, body);
BEGIN
    IF plain = folded THEN
        RETURN both_;
    END IF;
    -- The stems' text form folded and read back: one position keeps both spellings.
    BEGIN
        RETURN (unaccent(to_tsvector(plain, body)::text) || ' ' || both_::text)::tsvector;
    EXCEPTION WHEN others THEN
        RETURN both_;   -- a folded stem that does not read back as a lexeme: keep the rest
    END;
END $$;
CREATE OR REPLACE FUNCTION archive_tsquery(plain regconfig, folded regconfig, words text,
                                           phrase boolean)
RETURNS tsquery LANGUAGE plpgsql STABLE AS $$
DECLARE
    a tsquery;
    b tsquery;
BEGIN
    IF phrase THEN
        a := phraseto_tsquery(plain, words);
        b := phraseto_tsquery(folded, words);
    ELSE
        a := plainto_tsquery(plain, words);
        b := plainto_tsquery(folded, words);
    END IF;
    IF plain = folded THEN
        RETURN b;
    END IF;
    BEGIN
        a := unaccent(a::text)::tsquery;
    EXCEPTION WHEN others THEN
        RETURN b;
    END;
    RETURN a || b;
END $$;
"""
MAX_TEXT = 200_000         # characters of a text analysed: a tsvector holds at most 1 MB
SNIPPET_CHARS = 10_000     # of a text, read for its snippet
WORK_MEM = "16MB"          # a search's sorting and grouping memory, per search at a time
TIMEOUT_MS = 10_000        # a search that takes longer is cancelled with a clear answer
CHUNK = 500
BATCH_CHARS = 20_000_000   # text sent to the server in one batch of upserts
_LOCK = 0x5EA7C4           # advisory lock id: one session at a time creates or swaps the table
_MARK, _UNMARK = "\ue001", "\ue002"
_WORDS = re.compile(r"\w+")
_BARE_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt);)")
_HEADLINE = (f"StartSel={_MARK}, StopSel={_UNMARK}, MaxWords=35, MinWords=20, ShortWord=2, "
             "MaxFragments=0")
_FACET_SOURCES = {"topic": "topics", "list": "lists", "author": "author", "org": "org",
                  "month": "month", "lang": "lang"}
_ARRAYS = {"topics", "lists"}
K1, B = 1.2, 0.75          # BM25's constants, as Whoosh's BM25F uses them
_WEIGHT = {"subject": 2.0}  # as the Whoosh index boosts its subject field
_ORDER = {"relevance": "score DESC, seq", "newest": "date DESC, seq DESC", "oldest": "date, seq"}

_COLUMNS = """
    key uuid PRIMARY KEY,
    seq bigint NOT NULL,
    message_id text NOT NULL,
    thread_id text NOT NULL,
    date bigint NOT NULL,
    month text NOT NULL,
    lang text NOT NULL,
    author text NOT NULL,
    org text NOT NULL,
    lists text[] NOT NULL,
    topics text[] NOT NULL,
    list_keys text[] NOT NULL,
    topic_keys text[] NOT NULL,
    own tsvector NOT NULL,
    quoted tsvector NOT NULL,
    subject tsvector NOT NULL,
    author_v tsvector NOT NULL,
    org_v tsvector NOT NULL,
    own_len integer NOT NULL,
    quoted_len integer NOT NULL"""
_GIN = ("own", "quoted", "subject", "author_v", "org_v", "list_keys", "topic_keys")

_UPSERT = f"""
INSERT INTO {{table}} (key, seq, message_id, thread_id, date, month, lang, author, org, lists,
                      topics, list_keys, topic_keys, own, quoted, subject, author_v, org_v,
                      own_len, quoted_len)
VALUES (CAST(:key AS uuid), nextval('{SEQUENCE}'), :mid, :thread, :date, :month, :lang, :author,
        :org, :lists, :topics, :list_keys, :topic_keys,
        archive_tsvector(CAST(:plain AS regconfig), CAST(:cfg AS regconfig), :own),
        archive_tsvector(CAST(:plain AS regconfig), CAST(:cfg AS regconfig), :quoted),
        archive_tsvector(CAST(:plain AS regconfig), CAST(:cfg AS regconfig), :subject),
        to_tsvector('archive_xx', :author_words),
        to_tsvector('archive_xx', :org_words), :own_len, :quoted_len)
ON CONFLICT (key) DO UPDATE SET seq = EXCLUDED.seq, message_id = EXCLUDED.message_id,
    thread_id = EXCLUDED.thread_id, date = EXCLUDED.date, month = EXCLUDED.month,
    lang = EXCLUDED.lang, author = EXCLUDED.author, org = EXCLUDED.org, lists = EXCLUDED.lists,
    topics = EXCLUDED.topics, list_keys = EXCLUDED.list_keys, topic_keys = EXCLUDED.topic_keys,
    own = EXCLUDED.own, quoted = EXCLUDED.quoted, subject = EXCLUDED.subject,
    author_v = EXCLUDED.author_v, org_v = EXCLUDED.org_v, own_len = EXCLUDED.own_len,
    quoted_len = EXCLUDED.quoted_len"""


def _text(value: str | None, limit: int = MAX_TEXT) -> str:
    """Text PostgreSQL can hold: no NUL, no lone surrogate, at most `limit` characters."""
    value = (value or "")[:limit]
    if "\x00" in value:
        value = value.replace("\x00", " ")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _words(text: str) -> str:
    """Text as the words the Whoosh index and the query parser see (runs of \\w), one space
    apart: PostgreSQL's own parser would drop what stands between <script> and </script>,
    which mail about web pages quotes, and keep an address or a host name as one token."""
    return " ".join(_WORDS.findall(text))


def _key(message_id: str) -> str:
    """The row key of a message: an MD5 of its id (ids can be longer than a btree key may be)."""
    return str(uuid.UUID(bytes=hashlib.md5(_escape_nul(message_id).encode("utf-8", "surrogatepass"))
                         .digest()))


def _row(record: dict) -> dict:
    language = record.get("language") or ""
    date = record.get("date")
    subject = _text(record.get("subject"), 2000)
    address = record.get("from_address") or ""
    organisation = record.get("organisation") or ""
    lists, topics = sorted(record.get("lists") or []), sorted(record.get("topics") or [])
    when = NO_DATE
    if date:
        from datetime import datetime
        when = _micros(datetime.fromisoformat(date.replace("Z", "+00:00")))
    # Names, addresses and organisations are split into words as the query parser splits
    # what people type (from:joao@example.org is joao, example and org), not by PostgreSQL's
    # parser, which keeps an address or a host name whole.
    author = f"{record.get('from_name') or ''} {address}"
    own = _words(f"{subject}\n{subject}\n{_text(record.get('own_text'))}")
    quoted = _words(_text(record.get("quoted_text")))
    return {
        "key": _key(record["message_id"]), "mid": _escape_nul(record["message_id"]),
        # Values shown as facets and hashed by `archiver check` are kept as the store has them
        # (NUL escaped as the store escapes it); only the texts analysed for words are cleaned.
        "thread": _escape_nul(record.get("thread_id") or ""), "date": when,
        "month": date[:7] if date else "", "lang": _escape_nul(language),
        "author": _escape_nul(address), "org": _escape_nul(organisation),
        "lists": [_escape_nul(v) for v in lists], "topics": [_escape_nul(v) for v in topics],
        "list_keys": [_escape_nul(v).lower() for v in lists],
        "topic_keys": [_escape_nul(v).lower() for v in topics],
        "cfg": CONFIGS[language if language in STEMMED else ""],
        "plain": PLAIN[language if language in STEMMED else ""],
        # As in the Whoosh index, own words are searched with the subject, twice.
        "own": own, "quoted": quoted, "subject": _words(subject),
        "own_len": own.count(" ") + 1 if own else 0, "quoted_len": quoted.count(" ") + 1 if quoted else 0,
        "author_words": " ".join(_WORDS.findall(_text(author.lower(), 5000))),
        "org_words": " ".join(_WORDS.findall(_text(organisation.lower(), 5000))),
    }


class PgSearch:
    """The search index as a table of the store's PostgreSQL database. Reads go through
    `read` (a replica's engine, when there is one), writes through `write` at READ COMMITTED
    (upserts of two ingesters wait for each other instead of failing)."""

    def __init__(self, read: Engine, write: Engine):
        self.read = read
        self.write = write.execution_options(isolation_level="READ COMMITTED")
        self.path = None   # no files: callers that print where the index is say so
        self._df: dict[tuple[str, str], int] = {}   # (column, spelling) -> messages that have it
        self._df_generation = None

    def close(self) -> None:
        """Nothing to close: connections belong to the engines."""

    # --- the table ------------------------------------------------------------------------
    def _exists(self, conn, table: str = TABLE) -> bool:
        if conn.execute(sql("SELECT to_regclass(:t)"), {"t": table}).scalar() is None:
            return False
        found = conn.execute(sql("SELECT obj_description(to_regclass(:t), 'pg_class')"),
                             {"t": table}).scalar()
        if found != FORMAT:
            raise ArchiverError(f"the search table {table} has another format ({found}): "
                                "run `archiver reindex`")
        return True

    def _prepare(self, conn) -> None:
        """Create what the table needs: unaccent, the text search configurations, the row
        sequence, the statistics table and the two analysis functions (each once)."""
        conn.execute(sql("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
        conn.execute(sql("CREATE EXTENSION IF NOT EXISTS unaccent"))
        have = set(conn.execute(sql("SELECT cfgname FROM pg_ts_config")).scalars())
        for lang, name in CONFIGS.items():
            if name in have:
                continue
            base, dictionary = (_SNOWBALL[lang], f"{_SNOWBALL[lang]}_stem") if lang else ("simple", "simple")
            conn.execute(sql(f"CREATE TEXT SEARCH CONFIGURATION {name} (COPY = {base})"))
            conn.execute(sql(f"ALTER TEXT SEARCH CONFIGURATION {name} ALTER MAPPING FOR "
                             f"hword, hword_part, word WITH unaccent, {dictionary}"))
        conn.execute(sql(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}"))
        conn.execute(sql(f"CREATE TABLE IF NOT EXISTS {STATS} (name text PRIMARY KEY, value float8 NOT NULL)"))
        if conn.execute(sql("SELECT to_regprocedure('archive_tsquery(regconfig,regconfig,text,boolean)')")
                        ).scalar() is None:
            conn.exec_driver_sql(_FUNCTIONS)

    def _create(self, conn, table: str, indexed: bool) -> None:
        conn.execute(sql(f"CREATE TABLE {table} ({_COLUMNS})"))
        conn.execute(sql(f"COMMENT ON TABLE {table} IS '{FORMAT}'"))
        if indexed:
            self._index(conn, table)

    @staticmethod
    def _index(conn, table: str) -> None:
        for column in _GIN:
            conn.execute(sql(f"CREATE INDEX {table}_{column} ON {table} USING gin ({column})"))
        conn.execute(sql(f"CREATE INDEX {table}_date ON {table} (date)"))

    def _ensure(self) -> None:
        with self.write.begin() as conn:
            self._prepare(conn)
            if not self._exists(conn):
                self._create(conn, TABLE, indexed=True)

    def doc_count(self) -> int:
        """Return how many messages the index can search."""
        with self.read.connect() as conn:
            if not self._exists(conn):
                return 0
            return conn.execute(sql(f"SELECT count(*) FROM {TABLE}")).scalar_one()

    # --- writing ----------------------------------------------------------------------------
    def _load(self, conn, table: str, records: Iterable[dict]) -> int:
        statement, total, batch, size = sql(_UPSERT.format(table=table)), 0, [], 0
        for record in records:
            row = _row(record)
            batch.append(row)
            size += len(row["own"]) + len(row["quoted"])
            # A batch is bounded in rows and in text (a few long messages can be 100s of MB).
            if len(batch) >= CHUNK or size > BATCH_CHARS:
                total += self._flush(conn, statement, batch)
                size = 0
        return total + self._flush(conn, statement, batch)

    @staticmethod
    def _flush(conn, statement, batch: list[dict]) -> int:
        if not batch:
            return 0
        # In the records' order (the store's row order, the same for two ingesters indexing
        # the same rows, so they lock rows in one order): equal scores rank in that order.
        conn.execute(statement, batch)
        count = len(batch)
        batch.clear()
        return count

    def bound(self) -> str:
        """Never used: an upsert adds or replaces in one statement, with no look-up to spare."""
        return UNTRUSTED

    def note_bound(self, row: int, key: str) -> None:
        """Nothing to note (see bound)."""

    def distrust(self) -> None:
        """Nothing to note (see bound)."""

    def update(self, records: Iterable[dict], new: Collection[str] = frozenset()) -> int:
        """Add or replace the documents of records in one transaction (new, the messages known
        to be absent, makes no difference to an upsert)."""
        records = iter(records)
        first = next(records, None)
        if first is None:
            return 0
        self._ensure()
        with self.write.begin() as conn:
            count = self._load(conn, TABLE, _chain(first, records))
        self._restat()
        return count

    def _restat(self) -> None:
        """Record what ranking reads: the texts' average lengths, the number of messages, and a
    generation that every change of the table moves on."""
        with self.write.begin() as conn:
            own, quoted, docs = conn.execute(sql(
                f"SELECT coalesce(avg(own_len), 1), coalesce(avg(quoted_len), 1), count(*) FROM {TABLE}")).one()
            conn.execute(sql(
                f"INSERT INTO {STATS} (name, value) VALUES ('own_len', :own), ('quoted_len', :quoted), "
                # Any change of the table moves this on (searchers drop the frequencies they keep).
                f"('docs', :docs), ('generation', coalesce((SELECT value FROM {STATS} "
                "WHERE name = 'generation'), 0) + 1) "
                "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value"),
                {"own": float(own), "quoted": float(quoted), "docs": docs})

    def rebuild(self, records: Iterable[dict]) -> int:
        """Build the table anew beside the old one and swap it in (readers keep the old one
        until the swap commits)."""
        fresh = self._fresh()
        with self.write.begin() as conn:
            count = self._load(conn, fresh, records)
        self._swap(fresh)
        return count

    def rebuild_parallel(self, parts: list[Callable[[], Iterable[dict]]]) -> int:
        """Build the table anew from several streams of records at once, each in a forked
        process with connections of its own (the server analyses each stream's texts in its
        own backend), and swap it in."""
        fresh = self._fresh()
        context = multiprocessing.get_context("fork")
        reader, writer = context.Pipe(duplex=False)
        children = [context.Process(target=self._load_part, args=(part, fresh, writer), daemon=True)
                    for part in parts]
        for child in children:
            child.start()
        writer.close()
        outcomes = []
        for _ in children:
            try:
                outcomes.append(reader.recv())
            except EOFError:
                break
        for child in children:
            child.join()
        failed = [o for o in outcomes if isinstance(o, str)]
        if failed or len(outcomes) < len(children) or any(c.exitcode for c in children):
            with self.write.begin() as conn:
                conn.execute(sql(f"DROP TABLE IF EXISTS {fresh}"))
            raise ArchiverError("building the search index failed" + (f":\n{failed[0]}" if failed else ""))
        self._swap(fresh)
        return sum(outcomes)

    def _load_part(self, part: Callable[[], Iterable[dict]], fresh: str, pipe) -> None:
        """A forked child's share of a parallel build: its count, or its error, to the parent."""
        code = 0
        try:
            self.write.dispose(close=False)   # the parent's connections are not the child's
            with self.write.begin() as conn:
                pipe.send(self._load(conn, fresh, part()))
        except BaseException:   # everything, even an interrupt, is reported to the parent
            pipe.send(traceback.format_exc())
            code = 1
        finally:
            os._exit(code)

    def _fresh(self) -> str:
        fresh = TABLE + "_new"
        with self.write.begin() as conn:
            self._prepare(conn)
            conn.execute(sql(f"DROP TABLE IF EXISTS {fresh}"))
            self._create(conn, fresh, indexed=False)   # indexes are built once, after loading
        return fresh

    def _swap(self, fresh: str) -> None:
        with self.write.begin() as conn:
            self._index(conn, fresh)
        with self.write.begin() as conn:
            conn.execute(sql("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
            conn.execute(sql(f"DROP TABLE IF EXISTS {TABLE}"))
            conn.execute(sql(f"ALTER TABLE {fresh} RENAME TO {TABLE}"))
            for column in (*_GIN, "date"):
                conn.execute(sql(f"ALTER INDEX {fresh}_{column} RENAME TO {TABLE}_{column}"))
            conn.execute(sql(f"ALTER INDEX {fresh}_pkey RENAME TO {TABLE}_pkey"))
        with self.write.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sql(f"ANALYZE {TABLE}"))
        self._restat()

    def delete(self, message_ids: Iterable[str]) -> int:
        """Delete the documents of these messages; return how many there were."""
        keys = sorted({_key(mid) for mid in message_ids})
        if not keys:
            return 0
        with self.write.begin() as conn:
            if not self._exists(conn):
                return 0
            count = sum(conn.execute(sql(f"DELETE FROM {TABLE} WHERE key = ANY(CAST(:keys AS uuid[]))"),
                                     {"keys": keys[i:i + CHUNK]}).rowcount
                        for i in range(0, len(keys), CHUNK))
        if count:
            self._restat()
        return count

    # --- checking against the store ---------------------------------------------------------
    fingerprint = staticmethod(SearchIndex.fingerprint)

    def fingerprints(self) -> list[tuple[str, str]]:
        """Return (message id, content hash) of every document, hashed as SearchIndex does."""
        with self.read.connect() as conn:
            if not self._exists(conn):
                return []
            rows = conn.execute(sql(f"SELECT message_id, thread_id, lists, topics, author, org, "
                                    f"month, lang, date FROM {TABLE} ORDER BY seq"))
            return [(_unescape_nul(mid), SearchIndex._digest([_unescape_nul(v) for v in (
                        thread, ",".join(lists), ",".join(topics), author, org, month, lang)] + [str(date)]))
                    for mid, thread, lists, topics, author, org, month, lang, date in rows]

    # --- searching ----------------------------------------------------------------------------
    def _plan(self, conn, parsed, lists: Collection[str] | None) -> Translation:
        """Translate a checked query, within these lists when given (a reader's visible ones:
        a condition of its own, which nothing typed can step outside)."""
        typed = _typed(parsed.text) if parsed.text else None
        found = translate(conn, typed, {lang: (PLAIN[lang], CONFIGS[lang]) for lang in CONFIGS})
        if lists is not None:
            keys = sorted({_escape_nul(name).lower() for name in lists})
            found.where = f"({found.where}) AND list_keys && CAST({found.param(keys)} AS text[])"
        if parsed.start or parsed.end:
            found.where = f"({found.where}) AND date <> {NO_DATE}"
            if parsed.start:
                found.where += f" AND date >= {found.param(_micros(parsed.start))}"
            if parsed.end:
                found.where += f" AND date < {found.param(_micros(parsed.end))}"
        return found

    def _ordered(self, conn, plan: Translation, sort: str, by_thread: bool) -> str:
        order = _ORDER[sort]
        columns = "message_id, thread_id, seq, date, lists, topics, author, org, month, lang"
        if sort == "relevance" and plan.ranked:
            # Each spelling's ts_rank once a row, in an inner query; the score from them.
            shares = ", ".join(f"least(0.999, 10 * ts_rank({column}, CAST({plan.param(q)} AS tsquery), 0)) AS r{i}"
                               for i, (column, q) in enumerate(plan.ranked))
            inner = (f"SELECT {columns}, own_len, quoted_len, {shares} FROM {TABLE} WHERE {plan.where}")
            hits = f"SELECT {columns}, {self._score(conn, plan)} AS score FROM ({inner}) AS matched"
        else:
            hits = f"SELECT {columns}, 0.0 AS score FROM {TABLE} WHERE {plan.where}"
        ordered = (f"SELECT * FROM (SELECT DISTINCT ON (thread_id) * FROM hits "
                   f"ORDER BY thread_id, {order}) AS firsts" if by_thread else "SELECT * FROM hits")
        return f"WITH hits AS MATERIALIZED ({hits}), ordered AS MATERIALIZED ({ordered}) "

    def _score(self, conn, plan: Translation) -> str:
        """A relevance score after BM25, as the Whoosh index scores: for each spelling, its
        inverse document frequency times a saturating function of how often the text has it,
        divided down for own words and quoted text longer than the average (names and
        subjects are short). How often is read back from ts_rank without normalisation: 0.1
        (the default weight) times the sum of 1/j^2 over the j = 1..tf occurrences, over
        pi^2/6. Document frequencies are counted once per spelling and kept until the index
        changes."""
        stats = dict(conn.execute(sql(f"SELECT name, value FROM {STATS}")).all())
        docs = stats.get("docs", 0.0)
        frequencies = self._frequencies(conn, plan.ranked, stats.get("generation"))
        parts = []
        for i, (column, q) in enumerate(plan.ranked):
            df = frequencies[(column, q)]
            idf = math.log(1 + (max(docs, df) - df + 0.5) / (df + 0.5))
            tf = f"greatest(1.0, 1 / ((1 - r{i}) * 1.6449) - 0.5)"
            norm = (f"(1 - {B} + {B} * {column}_len / {max(stats.get(column + '_len', 1.0), 1.0)})"
                    if column in ("own", "quoted") else "1")
            weight = _WEIGHT.get(column, 1.0)
            parts.append(f"{idf * weight * (K1 + 1):.6f} * {tf} / ({tf} + {K1} * {norm})")
        return " + ".join(parts)

    def _frequencies(self, conn, ranked: list[tuple[str, str]], generation) -> dict:
        """Return how many messages have each (column, spelling): one pass per column for
        those not known since the index last changed."""
        if self._df_generation != generation:
            self._df, self._df_generation = {}, generation
        wanted: dict[str, list[str]] = {}
        for column, q in ranked:
            if (column, q) not in self._df:
                wanted.setdefault(column, []).append(q)
        for column, spellings in wanted.items():
            names = [f"f{i}" for i in range(len(spellings))]
            counts = ", ".join(f"count(*) FILTER (WHERE {column} @@ CAST(:{n} AS tsquery))" for n in names)
            row = conn.execute(sql(f"SELECT {counts} FROM {TABLE} WHERE {column} @@ CAST(:every AS tsquery)"),
                               {**dict(zip(names, spellings)), "every": " | ".join(spellings)}).one()
            if len(self._df) > 10_000:
                self._df.clear()
            self._df.update(((column, q), n) for q, n in zip(spellings, row))
        return self._df

    def _read(self, text: str, lists: Collection[str] | None, work: Callable, empty):
        """Run work(conn, parsed query) in a read transaction made for one search, or return
        empty when nothing is indexed (or no list is visible). The time limit and memory are
        set first; then the table is locked against a rebuild's swap before the snapshot is
        taken (a snapshot older than the swap would see the new table empty). A search that
        meets a swap on a replica (cancelled: 40001) is run once more."""
        parsed = prepare(text)
        if lists is not None and not lists:
            return empty
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.read.connect() as conn:
                    conn.execute(sql(f"SET LOCAL statement_timeout = {TIMEOUT_MS}"))
                    # The matches are kept for the page, the total and six facets: in memory,
                    # not spilled to a file (the default 4 MB holds about 10,000 of them).
                    conn.execute(sql(f"SET LOCAL work_mem = '{WORK_MEM}'"))
                    try:
                        conn.execute(sql(f"LOCK TABLE {TABLE} IN ACCESS SHARE MODE"))
                    except DBAPIError as exc:
                        if _state(exc) == "42P01":   # no table yet: nothing was ever indexed
                            return empty
                        raise
                    if not self._exists(conn):
                        return empty
                    return work(conn, parsed)
            except DBAPIError as exc:
                if _state(exc) == "57014":
                    raise QueryError(f"the search took longer than {TIMEOUT_MS / 1000:g} seconds: "
                                     "add words or filters to narrow it") from exc
                if _state(exc) != "40001" or attempt == 2:
                    raise

    def search(self, text: str, *, page: int = 1, per_page: int = 20, sort: str = "relevance",
               by_thread: bool = False,
               texts: Callable[[list[str]], dict[str, tuple[str, str, str]]] | None = None,
               lists: Collection[str] | None = None) -> Found:
        """Run a query, within these lists when given (a reader's visible ones); texts(ids)
        gives (own, quoted, language) per message for the snippets."""
        check_request(page, per_page, sort)
        empty = Found.of(0, page, per_page)

        def work(conn, parsed) -> Found:
            plan = self._plan(conn, parsed, lists)
            facets = " ".join(f"UNION ALL ({_facet(name, column, by_thread)})"
                              for name, column in _FACET_SOURCES.items())
            statement = (self._ordered(conn, plan, sort, by_thread)
                         # The page is the first rows of a top-N sort; only they are numbered.
                         + f"SELECT 'hit', message_id, thread_id, score, row_number() OVER "
                         f"(ORDER BY {_ORDER[sort]}) FROM (SELECT message_id, thread_id, score, seq, "
                         f"date FROM ordered ORDER BY {_ORDER[sort]} LIMIT :lim OFFSET :off) AS shown "
                         f"UNION ALL SELECT 'total', NULL, NULL, NULL, count(*) FROM ordered {facets}")
            rows = conn.execute(sql(statement), {**plan.params, "lim": per_page,
                                                 "off": (page - 1) * per_page}).all()
            total, hits, found_facets = 0, [], {name: [] for name in FACETS}
            for kind, value, thread, score, n in rows:
                if kind == "hit":
                    hits.append((n, Hit(message_id=_unescape_nul(value), thread_id=_unescape_nul(thread),
                                        score=round(float(score), 4))))
                elif kind == "total":
                    total = int(n)
                else:
                    found_facets[kind].append((_unescape_nul(value), int(n)))
            hits = [hit for _, hit in sorted(hits, key=lambda pair: pair[0])]
            for name in found_facets:
                found_facets[name].sort(key=lambda kv: (-kv[1], kv[0]))
            if texts and hits:
                self._snippets(conn, hits, texts, plan.wanted(quoted=False),
                               plan.wanted(quoted=True) if plan.asks_quoted else "")
            return Found.of(total, page, per_page, hits, found_facets)

        return self._read(text, lists, work, empty)

    def match_ids(self, text: str, *, limit: int, sort: str = "relevance", by_thread: bool = False,
                  lists: Collection[str] | None = None) -> tuple[int, list[str]]:
        """Return how many messages (threads, by_thread) a query matches and the message ids
        of its first `limit` hits in the search's order."""
        check_request(1, 1, sort)

        def work(conn, parsed) -> tuple[int, list[str]]:
            plan = self._plan(conn, parsed, lists)
            statement = (self._ordered(conn, plan, sort, by_thread)
                         + f"SELECT 'hit', message_id, row_number() OVER (ORDER BY {_ORDER[sort]}) "
                         f"FROM (SELECT message_id, score, seq, date FROM ordered ORDER BY {_ORDER[sort]} "
                         f"LIMIT :lim) AS shown UNION ALL SELECT 'total', NULL, count(*) FROM ordered")
            rows = conn.execute(sql(statement), {**plan.params, "lim": max(0, limit)}).all()
            total = next(int(n) for kind, _, n in rows if kind == "total")
            return total, [_unescape_nul(mid) for _, mid, _ in
                           sorted((r for r in rows if r[0] == "hit"), key=lambda r: r[2])]

        return self._read(text, lists, work, (0, []))

    def _snippets(self, conn, hits: list[Hit], texts, wanted: str, quoted_wanted: str) -> None:
        """Mark each hit's best stretch of own words (else, when the query asked for quoted
        text, of its quoted text) with ts_headline; else show its first words. Only the first
        SNIPPET_CHARS of a text are read: a headline's cost grows with the text and its matches."""
        found = texts([h.message_id for h in hits])
        chosen: list[tuple[Hit, str, str, str]] = []
        for hit in hits:
            own, quoted, lang = found.get(hit.message_id, ("", "", ""))
            # Escaped before ts_headline reads it: its parser skips what looks like markup
            # (<script>...</script> whole) but reads &lt; as one token and gives it back as it
            # is, so the words inside are marked and the headline is escaped text already.
            chosen.append((hit, _snippet_text(own), _snippet_text(quoted),
                           CONFIGS[lang if lang in STEMMED else ""]))
        lit = {}
        for which, query in (("own", wanted), ("quoted", quoted_wanted)):
            if not query:
                continue
            pick = [(i, c[1 if which == "own" else 2], c[3]) for i, c in enumerate(chosen)
                    if i not in lit and c[1 if which == "own" else 2]]
            if not pick:
                continue
            rows = conn.execute(sql(
                "SELECT x.i, ts_headline(CAST(x.c AS regconfig), x.t, CAST(:q AS tsquery), :o) "
                "FROM unnest(CAST(:cfgs AS text[]), CAST(:texts AS text[]), CAST(:ids AS int[])) "
                "AS x(c, t, i)"), {"q": query, "o": _HEADLINE, "cfgs": [p[2] for p in pick],
                                    "texts": [p[1] for p in pick], "ids": [p[0] for p in pick]})
            for i, marked in rows:
                if _MARK in marked:
                    lit[i] = (marked, chosen[i][1 if which == "own" else 2])
        for i, (hit, own, _, _) in enumerate(chosen):
            if i in lit:
                hit.snippet = _marked(*lit[i])
            else:
                whole = html.unescape(own)
                hit.snippet = html.escape(whole[:220]) + (" …" if len(whole) > 220 else "")


def _state(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _snippet_text(text: str) -> str:
    """A text as ts_headline reads it: its first SNIPPET_CHARS, spaces joined, without the
    characters that mark matches (mail may hold them too), HTML-escaped."""
    text = _text(text, SNIPPET_CHARS).replace(_MARK, "").replace(_UNMARK, "")
    return html.escape(" ".join(text.split()), quote=False)


def _facet(name: str, column: str, by_thread: bool) -> str:
    """A facet's fifteen most frequent values over the matches (hits), counted in messages or
    (by_thread) in threads, as `name, value, NULL, NULL, count` rows. Sets of values (lists,
    topics) are counted per distinct set first and only then taken apart: a few hundred sets
    unnested instead of every match's."""
    if column not in _ARRAYS:
        count = "count(DISTINCT thread_id)" if by_thread else "count(*)"
        grouped = f"SELECT {column} AS v, {count} AS n FROM hits WHERE {column} <> '' GROUP BY {column}"
    elif by_thread:
        grouped = (f"SELECT v, count(DISTINCT thread_id) AS n FROM (SELECT DISTINCT thread_id, {column} "
                   f"FROM hits) AS sets, unnest(sets.{column}) AS v WHERE v <> '' GROUP BY v")
    else:
        grouped = (f"SELECT v, sum(sets.n)::bigint AS n FROM (SELECT {column}, count(*) AS n FROM hits "
                   f"GROUP BY {column}) AS sets, unnest(sets.{column}) AS v WHERE v <> '' GROUP BY v")
    return (f"SELECT '{name}', v, NULL, NULL, n FROM ({grouped}) AS counted "
            f"ORDER BY n DESC, v COLLATE \"C\" LIMIT 15")


def _marked(headline: str, whole: str) -> str:
    """A headline of escaped text as HTML: matches in <mark>, an ellipsis where text was left
    out. Whatever is not one of the escapes made before (a fragment cut inside one) is
    escaped again, so nothing of the mail can become markup."""
    plain = headline.replace(_MARK, "").replace(_UNMARK, "").strip()
    safe = _BARE_AMPERSAND.sub("&amp;", headline.strip()).replace("<", "&lt;").replace(">", "&gt;")
    safe = safe.replace('"', "&quot;").replace("'", "&#x27;")
    marked = safe.replace(_MARK, "<mark>").replace(_UNMARK, "</mark>")
    return (("" if whole.startswith(plain) else "… ") + marked
            + ("" if whole.endswith(plain) else " …"))


def _chain(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest
