"""The Whoosh index: schema, incremental updates, rebuild, and search (all Whoosh use is here)."""

from __future__ import annotations

import html
import re
import shutil
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable

import numpy

from whoosh import index, qparser, query
from whoosh.index import EmptyIndexError
from whoosh.query.qcore import QueryError as WhooshQueryError
from whoosh.analysis import LowercaseFilter, RegexTokenizer, Token, Tokenizer
from whoosh.fields import BOOLEAN, DATETIME, ID, KEYWORD, TEXT, Schema
from whoosh.lang import stemmer_for_language, stopwords_for_language

from .errors import QueryError
from .querylang import prepare

STEMMED = ("en", "fr", "es", "pt")   # languages whose stemmer and stop words are applied
MAX_EXPANSION = 200                  # words a prefix* may stand for
MAX_PAGE = 100
FACETS = {"topic": "topics_facet", "author": "author_facet", "org": "org_facet",
          "list": "lists_facet", "month": "month", "lang": "lang"}
MULTI = {"topics_facet", "lists_facet"}   # comma-joined sets: counted per member
_WORD = re.compile(r"\w+", re.UNICODE)

class _Prepared(Tokenizer):
    """Split analyse()'s output: terms at spaces, and 'a|b' as two terms at one position."""

    def __call__(self, value, positions=False, chars=False, keeporiginal=False, removestops=True,
                 start_pos=0, start_char=0, tokenize=True, mode="", **kwargs):
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for pos, group in enumerate(value.split(), start_pos):
            for alternative in group.split("|"):
                token.text, token.boost, token.stopped = alternative, 1.0, False
                if positions:
                    token.pos = pos
                if chars:
                    token.startchar = token.endchar = start_char
                yield token


# Text fields hold words already analysed for the message's language (lower case, stop words
# dropped, stemmed, accents folded) by analyse(); Whoosh only splits them. One field for every
# language keeps the index small and a query word a handful of terms in one field.
_PREPARED = _Prepared()

SCHEMA = Schema(
    msg_id=ID(stored=True, unique=True),
    thread=ID(stored=True, sortable=True),
    own=TEXT(analyzer=_PREPARED),
    quoted=TEXT(analyzer=_PREPARED),
    subject=TEXT(analyzer=_PREPARED, field_boost=2.0),
    author=TEXT(analyzer=_PREPARED),
    author_facet=ID(sortable=True),
    org=TEXT(analyzer=_PREPARED),
    org_facet=ID(sortable=True),
    lists=KEYWORD(commas=True, lowercase=True),
    lists_facet=ID(sortable=True),
    topics=KEYWORD(commas=True, lowercase=True),
    topics_facet=ID(sortable=True),
    date=DATETIME(sortable=True),
    month=ID(sortable=True),
    lang=ID(sortable=True),
    attachments=BOOLEAN(),
)

# What people type, parsed over these names and then mapped onto the real fields.
_TYPED = RegexTokenizer(r"\w+") | LowercaseFilter()
_VIRTUAL = Schema(own=TEXT(analyzer=_TYPED), quoted=TEXT(analyzer=_TYPED),
                  subject=TEXT(analyzer=_TYPED), **{"from": TEXT(analyzer=_TYPED)},
                  org=TEXT(analyzer=_TYPED), topic=KEYWORD(lowercase=True),
                  list=KEYWORD(lowercase=True), lang=KEYWORD(lowercase=True))
_REAL = {"own": "own", "quoted": "quoted", "subject": "subject", "from": "author", "org": "org",
         "topic": "topics", "list": "lists", "lang": "lang"}
_ANALYSED = {"own", "quoted", "subject", "author", "org"}


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=200_000)
def term(word: str, lang: str) -> str | None:
    """Return the index term of a lower-case word in a language ('' = no stemming), or None
    for a stop word. Stemmers expect accents, so folding comes after stemming."""
    if lang in STEMMED:
        if word in _stops(lang):
            return None
        word = _stemmer(lang)(word)
    return fold(word)


def terms(word: str, lang: str) -> tuple[str, ...]:
    """Return the index terms of a word: its own, and the one it has when typed without
    accents ('declaração' is stemmed 'declar', 'declaracao' is not), so both spellings find it."""
    first = term(word, lang)
    if first is None:
        return ()
    plain = fold(word)
    second = term(plain, lang) if plain != word else None
    return (first,) if second in (None, first) else (first, second)


@lru_cache(maxsize=8)
def _stops(lang: str) -> frozenset[str]:
    words = stopwords_for_language(lang)
    return frozenset(words) | {fold(w) for w in words}


@lru_cache(maxsize=8)
def _stemmer(lang: str):
    return stemmer_for_language(lang)


def analyse(text: str, lang: str) -> str:
    """Return text as the space-separated index terms of its language."""
    out = []
    for match in _WORD.finditer(text.lower()):
        found = terms(match.group(0), lang)
        if found:
            out.append("|".join(found))
    return " ".join(out)


def document(record: dict) -> dict:
    """Return the index document of a message record (as archiver.query builds them)."""
    lang = record.get("language") or ""
    lang = lang if lang in STEMMED else ""
    date = record.get("date")
    subject = record.get("subject") or ""
    address = record.get("from_address") or ""
    lists, topics = sorted(record.get("lists") or []), sorted(record.get("topics") or [])
    doc = {
        "msg_id": record["message_id"], "thread": record.get("thread_id") or "",
        # Own words are searched with the subject, twice: a thread's title finds its messages
        # and weighs more than a word in passing, with one field to search instead of two.
        "own": analyse(f"{subject}\n{subject}\n{record.get('own_text') or ''}", lang),
        "quoted": analyse(record.get("quoted_text") or "", lang),
        "subject": analyse(subject, lang),
        "author": analyse(f"{record.get('from_name', '')} {address} {address.replace('@', ' ')}", ""),
        "author_facet": address, "org": analyse(record.get("organisation") or "", ""),
        "org_facet": record.get("organisation") or "",
        "lists": ",".join(lists), "lists_facet": ",".join(lists),
        "topics": ",".join(topics), "topics_facet": ",".join(topics),
        "month": date[:7] if date else "", "lang": record.get("language") or "",
        "attachments": bool(record.get("attachments")),
    }
    if date:
        doc["date"] = datetime.fromisoformat(date.replace("Z", "+00:00")).replace(tzinfo=None)
    return doc


@dataclass
class Hit:
    message_id: str
    thread_id: str
    score: float
    snippet: str = ""


@dataclass
class Found:
    """One page of search results with the facets of all matches."""

    total: int
    page: int
    pages: int
    per_page: int
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


class SearchIndex:
    """A Whoosh index in a directory, created when missing; its searcher is kept open and
    refreshed when a writer has committed (opening one costs more than most searches)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._searcher = None
        self._inode = None
        self._cached = None   # (searcher, facet columns)
        self._lock = threading.Lock()

    def _open(self, create: bool = True):
        """Open the index; writers create a missing one, readers get None (nothing indexed)."""
        for attempt in range(10):
            try:
                return index.open_dir(self.path)
            except EmptyIndexError:
                if not create:
                    return None
                self.path.mkdir(parents=True, exist_ok=True)
                return index.create_in(self.path, SCHEMA)
            except FileNotFoundError:
                # A writer replaced the table of contents between listing and opening it:
                # the next look finds the new one.
                time.sleep(0.01 * (attempt + 1))
        return index.open_dir(self.path)

    def close(self) -> None:
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None

    def doc_count(self) -> int:
        ix = self._open(create=False)
        return ix.doc_count() if ix else 0

    def update(self, records: Iterable[dict]) -> int:
        """Add or replace the documents of records in one commit (Whoosh merges segments at each
        commit, so one per ingest is much cheaper than one per batch)."""
        ix = self._open()
        # Replacing looks each id up first; an empty index has nothing to replace.
        add = ix.is_empty()
        writer = ix.writer(limitmb=128)
        total = 0
        try:
            for record in records:
                (writer.add_document if add else writer.update_document)(**document(record))
                total += 1
        except BaseException:
            writer.cancel()
            raise
        if total:
            writer.commit()
        else:
            writer.cancel()
        return total

    def rebuild(self, records: Iterable[dict]) -> int:
        """Build a fresh index beside the old one and swap it in (readers keep the old files)."""
        fresh = self.path.with_name(self.path.name + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        writer = index.create_in(fresh, SCHEMA).writer(limitmb=256)
        count = 0
        try:
            for record in records:
                writer.add_document(**document(record))
                count += 1
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
        self.close()
        old = self.path.with_name(self.path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.path.exists():
            self.path.rename(old)
        fresh.rename(self.path)
        shutil.rmtree(old, ignore_errors=True)
        return count

    def _current(self):
        with self._lock:
            # A new searcher when a writer has committed: refresh() may keep readers that miss
            # the deletions of replaced documents, which then show up twice.
            # After a rebuild the directory is another one, possibly at the same generation.
            inode = self.path.stat().st_ino if self.path.exists() else None
            if self._searcher is not None and (inode != self._inode or not self._searcher.up_to_date()):
                self._searcher.close()
                self._searcher = None
            if self._searcher is None:
                ix = self._open(create=False)
                self._searcher, self._inode = (ix.searcher() if ix else None), inode
            return self._searcher

    def _columns(self, searcher) -> dict[str, tuple]:
        """Return, per facet field (and thread), each document's value as a code (a numpy
        array indexed by docnum) and the values the codes stand for; read once per searcher."""
        if self._cached is None or self._cached[0] is not searcher:
            reader = searcher.reader()
            columns = {}
            for name in (*FACETS.values(), "thread"):
                values: dict[str, int] = {}
                codes = numpy.fromiter((values.setdefault(v, len(values))
                                        for v in reader.column_reader(name, translate=True)),
                                       dtype=numpy.int32, count=reader.doc_count_all())
                columns[name] = (codes, list(values))
            self._cached = (searcher, columns)
        return self._cached[1]

    def search(self, text: str, *, page: int = 1, per_page: int = 20, sort: str = "relevance",
               by_thread: bool = False,
               texts: Callable[[list[str]], dict[str, tuple[str, str, str]]] | None = None) -> Found:
        """Run a query; texts(ids) gives (own, quoted, language) per message for the snippets."""
        if sort not in ("relevance", "newest", "oldest"):
            raise QueryError(f"unknown sort '{sort}': use relevance, newest or oldest")
        if not 1 <= per_page <= MAX_PAGE:
            raise QueryError(f"page size must be between 1 and {MAX_PAGE}")
        if page < 1:
            raise QueryError("pages are numbered from 1")
        parsed = prepare(text)
        searcher = self._current()
        if searcher is None:
            return Found(total=0, page=page, pages=1, per_page=per_page, hits=[],
                         facets={name: [] for name in FACETS})
        q = _parse(parsed.text, searcher.reader()) if parsed.text else query.Every()
        options: dict = {}
        if by_thread:
            options["collapse"] = "thread"
            options["collapse_limit"] = 1
        # Dates go into the query itself: Whoosh's filter bypasses collapsing by thread.
        if parsed.start or parsed.end:
            q = query.And([q, _date_query(parsed.start, parsed.end)])
        if sort != "relevance":
            options["sortedby"] = "date"
            options["reverse"] = sort == "newest"
        # Phrases and date ranges are costly to match twice: score every match in one pass
        # (its documents then come for free); simple terms take the fast top-k path and a
        # second, unscored pass for the facets.
        costly = _costly(q)
        try:
            results = searcher.search(q, limit=None if costly else page * per_page, **options)
        except WhooshQueryError as exc:
            raise QueryError(f"the query cannot be run: {exc}") from exc
        # Facets are counted here from per-searcher column arrays over the matching documents:
        # Whoosh's grouping calls back into Python per document and facet, and turns off the
        # skipping that makes a top-k search fast.
        matched = results.docs()
        docs = numpy.fromiter(matched, dtype=numpy.int64, count=len(matched))
        columns = self._columns(searcher)
        # len(results) would match the query a third time: the matched set is already here.
        total = (int(numpy.unique(columns["thread"][0][docs]).size) if by_thread
                 else int(docs.size))
        start = (page - 1) * per_page
        chosen = [results[i] for i in range(start, min(start + per_page, results.scored_length()))]
        hits = [Hit(message_id=h["msg_id"], thread_id=h["thread"], score=round(h.score or 0.0, 4))
                for h in chosen]
        if texts and hits:
            wanted = _terms_of(q)
            asks_quoted = _asks_quoted(q)
            found = texts([h.message_id for h in hits])
            for hit in hits:
                own, quoted, lang = found.get(hit.message_id, ("", "", ""))
                # Someone else's words are shown only to a reader who searched quoted text.
                hit.snippet = snippet(own, quoted if asks_quoted else "", lang, wanted)
        facets = {}
        for name, fieldname in FACETS.items():
            # Counted in numpy over value codes: a Python loop over tens of thousands of
            # matches per facet cost more than the search itself.
            codes, values = columns[fieldname]
            counts = numpy.bincount(codes[docs], minlength=len(values))
            present = numpy.nonzero(counts)[0]
            facets[name] = _facet({values[i]: int(counts[i]) for i in present}, fieldname in MULTI)
        pages = max(1, -(-total // per_page))
        return Found(total=total, page=page, pages=pages, per_page=per_page, hits=hits, facets=facets)

    def match_ids(self, text: str, *, limit: int, sort: str = "relevance",
                  by_thread: bool = False) -> tuple[int, list[str]]:
        """Return how many messages (threads, by_thread) a query matches and the message ids
        of its first `limit` hits in the search's order: for exports and feeds, which want
        every hit at once rather than a page of them, and no facets or snippets."""
        if sort not in ("relevance", "newest", "oldest"):
            raise QueryError(f"unknown sort '{sort}': use relevance, newest or oldest")
        parsed = prepare(text)
        searcher = self._current()
        if searcher is None:
            return 0, []
        q = _parse(parsed.text, searcher.reader()) if parsed.text else query.Every()
        if parsed.start or parsed.end:
            q = query.And([q, _date_query(parsed.start, parsed.end)])
        options: dict = {"collapse": "thread", "collapse_limit": 1} if by_thread else {}
        if sort != "relevance":
            options.update(sortedby="date", reverse=sort == "newest")
        try:
            results = searcher.search(q, limit=max(1, limit), **options)
        except WhooshQueryError as exc:
            raise QueryError(f"the query cannot be run: {exc}") from exc
        if by_thread:
            threads = self._columns(searcher)["thread"]
            total = len({threads[d] for d in results.docs()})
        else:
            total = len(results)
        ids = [results[i]["msg_id"] for i in range(min(limit, results.scored_length()))]
        return total, ids


def _date_query(start: datetime | None, end: datetime | None) -> query.Query:
    """Return the query for [start, end): whole months as month terms (a few postings lists),
    anything finer as a range over the date field (which Whoosh expands into many terms)."""
    def whole(value: datetime | None) -> bool:
        return value is not None and (value.day, value.hour, value.minute, value.second) == (1, 0, 0, 0)

    if whole(start) and whole(end):
        months, (year, month) = [], (start.year, start.month)
        while (year, month) < (end.year, end.month) and len(months) <= 240:
            months.append(query.Term("month", f"{year:04d}-{month:02d}"))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        if len(months) <= 240:
            return months[0] if len(months) == 1 else query.Or(months)
    return query.DateRange("date", _naive(start), _naive(end), endexcl=True)


def _costly(q: query.Query) -> bool:
    stack = [q]
    while stack:
        node = stack.pop()
        # A NOT is costly too: Whoosh's top-k skipping cannot bound an AndNot, so matching it
        # twice (scored top k, then every match for the facets) doubles its cost.
        if isinstance(node, (query.Phrase, query.DateRange, query.NumericRange, query.Not,
                             query.AndNot)):
            return True
        stack.extend(node.children())
    return False


def _facet(groups: dict, multi: bool) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for key, count in groups.items():
        for value in (str(key).split(",") if multi else [str(key)]) if key else []:
            if value:
                counts[value] = counts.get(value, 0) + count
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:15]


def _naive(value: datetime | None) -> datetime | None:
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value else None


def _parse(text: str, reader) -> query.Query:
    parser = qparser.QueryParser("own", _VIRTUAL)
    parser.remove_plugin_class(qparser.WildcardPlugin)
    parser.remove_plugin_class(qparser.RangePlugin)
    parser.add_plugin(qparser.PrefixPlugin())
    try:
        result = _to_real(parser.parse(text), reader)
    except QueryError:
        raise
    except Exception as exc:  # the parser raises assorted types on odd input
        raise QueryError(f"the query could not be read: {exc}") from exc
    if result is query.NullQuery:
        raise QueryError("the query has only very common words (such as 'the' or 'de'): add more")
    return result


def _to_real(q: query.Query, reader) -> query.Query:
    """Map a parsed query from the fields people type onto the index's fields."""
    if isinstance(q, (query.Term, query.Phrase, query.Prefix)):
        return _leaf(q, reader)
    if isinstance(q, query.Not):
        # "NOT x" alone must start from every live document (a bare Not can return the old
        # copies of replaced documents); inside an And, Whoosh subtracts it properly.
        return query.AndNot(query.Every(), _to_real(q.query, reader))
    if isinstance(q, query.And):
        parts = [query.Not(_to_real(c.query, reader)) if isinstance(c, query.Not) else _to_real(c, reader)
                 for c in q.subqueries]
        return query.And(parts, boost=q.boost).normalize()
    if hasattr(q, "subqueries"):
        return q.apply(lambda child: _to_real(child, reader)).normalize()
    return q


def _leaf(q: query.Query, reader) -> query.Query:
    name = _REAL.get(q.fieldname, q.fieldname)
    langs = STEMMED + ("",) if name in _ANALYSED else None
    if isinstance(q, query.Prefix):
        stem = fold(q.text.lower())
        if len(stem) < 2:
            raise QueryError(f"'{q.text}*' is too short: give at least two letters before *")
        words = list(islice(reader.expand_prefix(name, stem), MAX_EXPANSION + 1))
        if len(words) > MAX_EXPANSION:
            raise QueryError(f"'{q.text}*' matches more than {MAX_EXPANSION} words: give more letters")
        options = [query.Term(name, w) for w in words]
    elif langs is None:
        # Keyword fields keep no positions: "a b" there means both values.
        words = [q.text] if isinstance(q, query.Term) else q.words
        terms_ = [query.Term(name, w.lower()) for w in words]
        return terms_[0] if len(terms_) == 1 else query.And(terms_)
    elif isinstance(q, query.Phrase):
        # One phrase per language's analysis of its words, each distinct one once, and only
        # those whose every word is in the index (the others cannot match and cost time).
        shapes = {tuple(t for t in (term(w, lang) for w in q.words) if t) for lang in langs}
        options = [query.Phrase(name, list(s), boost=q.boost) if len(s) > 1
                   else query.Term(name, s[0], boost=q.boost) for s in sorted(shapes)
                   if s and all(reader.doc_frequency(name, t) for t in s)]
        if not options and any(shapes):
            return query.Phrase(name, list(max(shapes)))  # matches nothing, keeps the logic
    else:
        found = {term(q.text, lang) for lang in langs} - {None}
        options = [query.Term(name, t, boost=q.boost) for t in sorted(found)
                   if reader.doc_frequency(name, t)]
        if not options and found:
            return query.Term(name, min(found))  # matches nothing, but keeps AND/NOT logic
    if not options:
        return query.NullQuery
    return options[0] if len(options) == 1 else query.Or(options)


def _terms_of(q: query.Query) -> set[str]:
    """Return the index terms of a query's own-words, subject and quoted parts (for snippets)."""
    found: set[str] = set()
    stack = [q]
    while stack:
        node = stack.pop()
        if isinstance(node, query.Not):
            continue  # words the query excludes are not what the reader looks for
        if isinstance(node, query.Term) and node.fieldname in ("own", "subject", "quoted"):
            found.add(node.text)
        elif isinstance(node, query.Phrase) and node.fieldname in ("own", "subject", "quoted"):
            found.update(node.words)
        stack.extend(node.children())
    return found


def _asks_quoted(q: query.Query) -> bool:
    stack = [q]
    while stack:
        node = stack.pop()
        if getattr(node, "fieldname", None) == "quoted" and not isinstance(node, query.Not):
            return True
        if not isinstance(node, query.Not):
            stack.extend(node.children())
    return False


def snippet(own: str, quoted: str, lang: str, wanted: set[str], width: int = 220) -> str:
    """Return an HTML snippet of a message: the stretch of its own words (else its quoted text)
    with most matched words, each marked <mark>, everything else escaped."""
    lang = lang if lang in STEMMED else ""
    for text in (own, quoted):
        text = " ".join(text.split())
        spans = [m.span() for m in _WORD.finditer(text)
                 if wanted.intersection(terms(m.group(0).lower(), lang))]
        if spans:
            best = max(range(len(spans)), key=lambda i: sum(1 for s in spans[i:] if s[0] < spans[i][0] + width))
            start = max(0, spans[best][0] - 40)
            end = min(len(text), start + width)
            out, at = [], start
            for a, b in spans:
                if a >= start and b <= end:
                    out += [html.escape(text[at:a]), "<mark>", html.escape(text[a:b]), "</mark>"]
                    at = b
            out.append(html.escape(text[at:end]))
            return ("… " if start else "") + "".join(out) + (" …" if end < len(text) else "")
    text = " ".join(own.split())
    return html.escape(text[:width]) + (" …" if len(text) > width else "")
