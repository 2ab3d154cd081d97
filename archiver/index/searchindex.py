"""The search index: open, update, rebuild, search, match ids, fingerprints and delete."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice
from pathlib import Path
from typing import Callable, Collection, Iterable, Iterator

import numpy
from whoosh import query
from whoosh.index import EmptyIndexError
from whoosh.query.qcore import QueryError as WhooshQueryError

from ..errors import QueryError
from ..querylang import prepare
from .analysis import _micros, document
from . import build
from .build import build_parallel, merge_small, write_segments
from .codec import IndexFormatError, _check, _writer
from .match import _in_dates, _match, _View
from .parse import _asks_quoted, _parse, _terms_of
from .schema import FACETS, NO_DATE
from .snippets import snippet
from .storage import create_in, open_dir

MAX_PAGE = 100
MAX_PAGES = 100_000       # no archive is searched past this page
SORTS = ("relevance", "newest", "oldest")


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

    @classmethod
    def of(cls, total: int, page: int, per_page: int, hits: list[Hit] | None = None,
           facets: dict[str, list[tuple[str, int]]] | None = None) -> "Found":
        """A page of results; with no total, the empty page (every facet empty)."""
        return cls(total=total, page=page, pages=max(1, -(-total // per_page)), per_page=per_page,
                   hits=hits or [], facets=facets if facets is not None else {name: [] for name in FACETS})


UNTRUSTED = "untrusted"   # SearchIndex.bound(): found beside another store


def check_request(page: int, per_page: int, sort: str) -> None:
    """Refuse a page, page size or order no search backend serves, saying what is allowed."""
    if not 1 <= per_page <= MAX_PAGE:
        raise QueryError(f"page size must be between 1 and {MAX_PAGE}")
    if page < 1:
        raise QueryError("pages are numbered from 1")
    if page > MAX_PAGES:
        raise QueryError(f"pages go up to {MAX_PAGES:,}: narrow the query instead")
    if sort not in SORTS:
        raise QueryError(f"unknown sort '{sort}': use relevance, newest or oldest")


def _chunks(items: Iterator, size: int) -> Iterator[Iterator]:
    """Consecutive runs of at most size items, each consumed before the next is asked for."""
    while (first := next(items, None)) is not None:
        yield chain([first], islice(items, size - 1))


class SearchIndex:
    """A Whoosh index in a directory, created when missing; its searcher (and what matching
    reads once per searcher) is kept open and renewed when a writer has committed (opening
    one costs more than most searches)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._searcher = None
        self._inode = None
        self._cached: _View | None = None
        self._lock = threading.Lock()

    def _open(self, create: bool = True):
        """Open the index; writers create a missing one, readers get None (nothing indexed)."""
        for attempt in range(10):
            try:
                return open_dir(self.path)
            except EmptyIndexError:
                if not create:
                    return None
                self.path.mkdir(parents=True, exist_ok=True)
                return create_in(self.path)
            except FileNotFoundError:
                # A writer replaced the table of contents between listing and opening it:
                # the next look finds the new one.
                time.sleep(0.01 * (attempt + 1))
        return open_dir(self.path)

    def close(self) -> None:
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None
                self._cached = None

    def doc_count(self) -> int:
        """Return how many messages the index can search (none in an index of another format)."""
        ix = self._open(create=False)
        if ix is None:
            return 0
        try:
            _check(ix)
        except IndexFormatError:
            return 0
        return ix.doc_count()

    # The highest store row any document came from, and that row's message, kept beside the
    # segments (a rebuild's fresh directory has none until one is noted: unknown).
    ROWS_FILE = "rows-upto"

    def bound(self) -> tuple[int, str] | str | None:
        """(row, key): no document comes from a row above it of the store whose row holds the
        message of that key (its msg_hash). UNTRUSTED: the index was found beside another store
        (restored from a backup, say), until a repair or a rebuild notes a bound again. None:
        unknown."""
        try:
            text = (self.path / self.ROWS_FILE).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if text == UNTRUSTED:
            return UNTRUSTED
        row, _, key = text.partition(" ")
        return (int(row), key) if row.isdigit() else None

    def note_bound(self, row: int, key: str) -> None:
        """Record, before rows up to row are sent to the index, that no document comes from a
        higher one (key: that row's msg_hash). Written before the documents: a crash after it
        leaves a bound that is still true, only looser."""
        self._write_bound(f"{int(row)} {key}")

    def distrust(self) -> None:
        """Record that the bound no longer describes the store beside the index."""
        self._write_bound(UNTRUSTED)

    def _write_bound(self, text: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        spare = self.path / (self.ROWS_FILE + ".new")
        spare.write_text(text, encoding="ascii")
        spare.replace(self.path / self.ROWS_FILE)

    def update(self, records: Iterable[dict], new: Collection[str] = frozenset()) -> int:
        """Add or replace the documents of records, in one commit per SEGMENT_DOCS of them: a
        segment is gathered in memory, so that bounds what an update holds (about 100 MB), and
        a commit per ingest batch would cost a merge each. Into an empty index, the documents
        are written as a rebuild writes them, beside it, and swapped in.

        Messages in new are known not to be in the index (bound()): they are added without
        the look-up that replacing needs, which asks every segment for the id (181 us a
        message in the 41 segments of a 1,000,000-message index, 27 us in 5 at 100,000)."""
        records = iter(records)
        first = next(records, None)
        if first is None:
            return 0
        records = chain([first], records)
        ix = self._open()
        if ix.is_empty():
            bound = self.bound()   # noted before these records were read: true of them too
            count = self.rebuild(records)
            if bound == UNTRUSTED:
                self.distrust()
            elif bound is not None:
                self.note_bound(*bound)
            return count
        _check(ix)
        total = 0
        for part in _chunks(records, build.SEGMENT_DOCS):
            writer = _writer(ix)
            try:
                for record in part:
                    if record["message_id"] in new:
                        writer.add_document(**document(record))
                    else:
                        writer.update_document(**document(record))
                    total += 1
            except BaseException:
                writer.cancel()
                raise
            writer.commit(mergetype=merge_small)
        return total

    def rebuild(self, records: Iterable[dict]) -> int:
        """Build a fresh index beside the old one and swap it in (readers keep the old files).
        A segment is written every SEGMENT_DOCS messages, so memory stays bounded."""
        fresh = self._fresh()
        count = write_segments(create_in(fresh), records)
        self._swap(fresh)
        return count

    def rebuild_parallel(self, parts: list[Callable[[], Iterable[dict]]]) -> int:
        """Build a fresh index from several streams of records at once, each in a forked
        process (build.py), and swap it in. A part's callable runs in its child: it must open
        what it reads."""
        fresh = self._fresh()
        try:
            count = build_parallel(fresh, parts)
        except BaseException:
            shutil.rmtree(fresh, ignore_errors=True)
            raise
        self._swap(fresh)
        return count

    def _fresh(self) -> Path:
        fresh = self.path.with_name(self.path.name + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        return fresh

    def _swap(self, fresh: Path) -> None:
        self.close()
        old = self.path.with_name(self.path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.path.exists():
            self.path.rename(old)
        fresh.rename(self.path)
        shutil.rmtree(old, ignore_errors=True)

    def _current(self):
        with self._lock:
            # A new searcher when a writer has committed: refresh() may keep readers that miss
            # the deletions of replaced documents, which then show up twice.
            # After a rebuild the directory is another one, possibly at the same generation.
            inode = self.path.stat().st_ino if self.path.exists() else None
            if self._searcher is not None and (inode != self._inode or not self._searcher.up_to_date()):
                self._searcher.close()
                self._searcher, self._cached = None, None
            if self._searcher is None:
                ix = self._open(create=False)
                if ix is not None:
                    _check(ix)
                self._searcher, self._inode = (ix.searcher() if ix else None), inode
            return self._searcher

    def _view(self) -> _View | None:
        searcher = self._current()
        if searcher is None:
            return None
        with self._lock:
            if self._cached is None or self._cached.searcher is not searcher:
                self._cached = _View(searcher, (str(self.path.resolve()), self._inode))
            return self._cached

    def _run(self, text: str, sort: str, by_thread: bool, lists: Collection[str] | None = None):
        """Match a query, within these lists when given; return the view, the parsed query, the
        matches, and their order (one hit per thread when by_thread)."""
        check_request(1, 1, sort)
        parsed = prepare(text)
        view = self._view()
        if view is None or (lists is not None and not lists):
            return None
        q = _parse(parsed.text, view.reader) if parsed.text else query.Every()
        if lists is not None:
            q = query.And([q, query.Or([query.Term("lists", name.lower()) for name in sorted(lists)])])
        try:
            docs, scores = _match(q, view)
        except WhooshQueryError as exc:
            raise QueryError(f"the query cannot be run: {exc}") from exc
        if parsed.start or parsed.end:
            docs, scores = _in_dates(view, docs, scores, parsed.start, parsed.end)
        if sort == "relevance":
            # Best first; equal scores in index order (numpy's stable sort), as Whoosh ranks.
            order = numpy.argsort(-scores, kind="stable")
        else:
            order = numpy.argsort(view.dates[docs], kind="stable")
            if sort == "newest":
                order = order[::-1]
        if by_thread:
            _, first = numpy.unique(view.columns["thread"][0][docs[order]], return_index=True)
            order = order[numpy.sort(first)]
        return view, q, docs, scores, order

    def search(self, text: str, *, page: int = 1, per_page: int = 20, sort: str = "relevance",
               by_thread: bool = False,
               texts: Callable[[list[str]], dict[str, tuple[str, str, str]]] | None = None,
               lists: Collection[str] | None = None) -> Found:
        """Run a query, within these lists when given (a reader's visible ones); texts(ids)
        gives (own, quoted, language) per message for the snippets."""
        check_request(page, per_page, sort)
        ran = self._run(text, sort, by_thread, lists)
        if ran is None:
            return Found.of(0, page, per_page)
        view, q, docs, scores, order = ran
        total = int(order.size)
        start = (page - 1) * per_page
        hits = [self._hit(view, int(docs[i]), float(scores[i])) for i in order[start:start + per_page]]
        if texts and hits:
            wanted = _terms_of(q)
            asks_quoted = _asks_quoted(q)
            found = texts([h.message_id for h in hits])
            for hit in hits:
                own, quoted, lang = found.get(hit.message_id, ("", "", ""))
                # Someone else's words are shown only to a reader who searched quoted text.
                hit.snippet = snippet(own, quoted if asks_quoted else "", lang, wanted)
        return Found.of(total, page, per_page, hits,
                        {name: view.facet(FACETS[name], docs, by_thread) for name in FACETS})

    def match_ids(self, text: str, *, limit: int, sort: str = "relevance", by_thread: bool = False,
                  lists: Collection[str] | None = None) -> tuple[int, list[str]]:
        """Return how many messages (threads, by_thread) a query matches and the message ids
        of its first `limit` hits in the search's order: for exports and feeds, which want
        every hit at once rather than a page of them, and no facets or snippets."""
        ran = self._run(text, sort, by_thread, lists)
        if ran is None:
            return 0, []
        view, _, docs, _, order = ran
        return int(order.size), [self._hit(view, int(docs[i]), 0.0).message_id
                                 for i in order[:max(0, limit)]]

    @staticmethod
    def _hit(view: _View, docnum: int, score: float) -> Hit:
        codes, values = view.columns["thread"]
        return Hit(message_id=view.searcher.stored_fields(docnum)["msg_id"],
                   thread_id=values[codes[docnum]], score=round(score, 4))

    # --- checking against the store (archiver/check.py) ----------------------------------------
    # What the index keeps of a document that can be read back, besides its message id: its
    # columns (the texts are analysed into postings and cannot). A document's content hash is
    # a hash of these values and its date, computed alike from a record (fingerprint) and from
    # the index (fingerprints), so a document the store has moved on from shows a different one.
    _HASHED = ("thread", "lists_facet", "topics_facet", "author_facet", "org_facet", "month",
               "lang_facet")

    @staticmethod
    def _digest(values: list[str]) -> str:
        return hashlib.blake2b("\x1f".join(values).encode("utf-8", "surrogatepass"),
                               digest_size=12).hexdigest()

    @staticmethod
    def fingerprint(record: dict) -> str:
        """Return the content hash the document of a record has in the index (see _HASHED)."""
        date = record.get("date")
        when = _micros(datetime.fromisoformat(date.replace("Z", "+00:00"))) if date else NO_DATE
        return SearchIndex._digest([
            record.get("thread_id") or "", ",".join(sorted(record.get("lists") or [])),
            ",".join(sorted(record.get("topics") or [])), record.get("from_address") or "",
            record.get("organisation") or "", date[:7] if date else "",
            record.get("language") or "", str(when)])

    def fingerprints(self) -> list[tuple[str, str]]:
        """Return (message id, content hash) of every live document, in index order: a message
        indexed twice is there twice. Nothing when there is no index."""
        ix = self._open(create=False)
        if ix is None or ix.is_empty():
            return []
        _check(ix)
        found: list[tuple[str, str]] = []
        with ix.reader() as reader:
            for seg, _ in reader.leaf_readers():
                cols = [seg.column_reader(name, translate=False) for name in self._HASHED]
                dates = seg.column_reader("date", translate=False)
                for docnum, stored in seg.iter_docs():
                    values = [str(col[docnum]) for col in cols] + [str(dates[docnum])]
                    found.append((stored["msg_id"], self._digest(values)))
        return found

    def delete(self, message_ids: Iterable[str]) -> int:
        """Delete the documents of these messages in one commit; return how many there were."""
        wanted = sorted(set(message_ids))
        ix = self._open(create=False) if wanted else None
        if ix is None or ix.is_empty():
            return 0
        _check(ix)
        writer = _writer(ix)
        try:
            count = sum(writer.delete_by_term("msg_id", mid) for mid in wanted)
        except BaseException:
            writer.cancel()
            raise
        if count:
            writer.commit(mergetype=merge_small)
        else:
            writer.cancel()
        return count
