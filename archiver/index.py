"""The Whoosh index: schema, incremental updates, rebuild, and search (all Whoosh use is here)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable

from whoosh import highlight, index, qparser, query, sorting
from whoosh.analysis import CharsetFilter, LowercaseFilter, RegexTokenizer, StemFilter
from whoosh.fields import BOOLEAN, DATETIME, ID, KEYWORD, TEXT, Schema
from whoosh.support.charset import accent_map

from .errors import QueryError
from .querylang import prepare

STEMMED = ("en", "fr", "es", "pt")   # languages with their own stemmed fields
MAX_EXPANSION = 200                  # words a prefix* may stand for
MAX_PAGE = 100
NONE = "-"                           # the value of an empty multi-valued field
FACETS = {"topic": "topics", "author": "author_facet", "org": "org_facet", "list": "lists",
          "month": "month", "lang": "lang"}


def _analyzer(lang: str | None = None):
    # Accents folded before stemming, at index and query time alike, so "coopération",
    # "cooperation" and "coopérations" meet.
    chain = RegexTokenizer() | LowercaseFilter() | CharsetFilter(accent_map)
    return chain | StemFilter(lang=lang, cachesize=50000) if lang else chain


def _text_fields(prefix: str) -> dict:
    fields = {f"{prefix}_{lang}": TEXT(analyzer=_analyzer(lang)) for lang in STEMMED}
    fields[f"{prefix}_xx"] = TEXT(analyzer=_analyzer())
    return fields


SCHEMA = Schema(
    msg_id=ID(stored=True, unique=True),
    thread=ID(stored=True, sortable=True),
    subject=TEXT(analyzer=_analyzer(), field_boost=2.0),
    author=TEXT(analyzer=_analyzer()),
    author_facet=ID(stored=True, sortable=True),
    org=TEXT(analyzer=_analyzer()),
    org_facet=ID(sortable=True),
    lists=KEYWORD(stored=True, commas=True, lowercase=True, vector=True),
    topics=KEYWORD(stored=True, commas=True, lowercase=True, vector=True),
    date=DATETIME(stored=True, sortable=True),
    month=ID(sortable=True),
    lang=ID(stored=True, sortable=True),
    attachments=BOOLEAN(),
    **_text_fields("own"),
    **_text_fields("quoted"),
)

# What people type, parsed over virtual fields and then mapped onto the real ones.
_VIRTUAL = Schema(own=TEXT(analyzer=_analyzer()), quoted=TEXT(analyzer=_analyzer()),
                  subject=TEXT(analyzer=_analyzer()), **{"from": TEXT(analyzer=_analyzer())},
                  org=TEXT(analyzer=_analyzer()), topic=KEYWORD(lowercase=True),
                  list=KEYWORD(lowercase=True), lang=KEYWORD(lowercase=True))
_REAL = {"own": [f"own_{lang}" for lang in STEMMED] + ["own_xx"],
         "quoted": [f"quoted_{lang}" for lang in STEMMED] + ["quoted_xx"],
         "subject": ["subject"], "from": ["author"], "org": ["org"], "topic": ["topics"],
         "list": ["lists"], "lang": ["lang"]}


def document(record: dict) -> dict:
    """Return the index document of a message record (as archiver.query builds them)."""
    lang = record.get("language") or ""
    slot = lang if lang in STEMMED else "xx"
    date = record.get("date")
    when = datetime.fromisoformat(date.replace("Z", "+00:00")).replace(tzinfo=None) if date else None
    doc = {
        "msg_id": record["message_id"], "thread": record.get("thread_id") or "",
        "subject": record.get("subject") or "",
        "author": f"{record.get('from_name', '')} {record.get('from_address', '')} "
                  f"{record.get('from_address', '').replace('@', ' ').replace('.', ' ')}",
        "author_facet": record.get("from_address") or "",
        "org": record.get("organisation") or "", "org_facet": record.get("organisation") or "",
        # A placeholder keeps every document's term vector present: Whoosh's overlapping facets
        # fail on a segment where no document has one.
        "lists": ",".join(record.get("lists") or []) or NONE,
        "topics": ",".join(record.get("topics") or []) or NONE,
        "month": date[:7] if date else "", "lang": lang,
        "attachments": bool(record.get("attachments")),
        # Own words are searched with the subject, so a thread's title finds its messages.
        f"own_{slot}": f"{record.get('subject') or ''}\n{record.get('own_text') or ''}",
        f"quoted_{slot}": record.get("quoted_text") or "",
    }
    if when is not None:
        doc["date"] = when
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
    """A Whoosh index in a directory: opened lazily, created when missing."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def _open(self):
        if not index.exists_in(self.path):
            self.path.mkdir(parents=True, exist_ok=True)
            return index.create_in(self.path, SCHEMA)
        return index.open_dir(self.path)

    def doc_count(self) -> int:
        return self._open().doc_count()

    def update(self, records: Iterable[dict], chunk: int = 2000,
               on_commit: Callable[[list[str]], None] | None = None) -> int:
        """Add or replace the documents of records; one commit per chunk, then on_commit(ids)."""
        ix = self._open()
        total = 0
        iterator = iter(records)
        while batch := list(islice(iterator, chunk)):
            writer = ix.writer(limitmb=128)
            try:
                for record in batch:
                    writer.update_document(**document(record))
            except BaseException:
                writer.cancel()
                raise
            writer.commit()
            total += len(batch)
            if on_commit:
                on_commit([r["message_id"] for r in batch])
        return total

    def rebuild(self, records: Iterable[dict]) -> int:
        """Build a fresh index beside the old one and swap it in (readers keep the old files)."""
        fresh = self.path.with_name(self.path.name + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        ix = index.create_in(fresh, SCHEMA)
        writer = ix.writer(limitmb=256)
        count = 0
        try:
            for record in records:
                writer.add_document(**document(record))
                count += 1
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
        old = self.path.with_name(self.path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.path.exists():
            self.path.rename(old)
        fresh.rename(self.path)
        shutil.rmtree(old, ignore_errors=True)
        return count

    def search(self, text: str, *, page: int = 1, per_page: int = 20, sort: str = "relevance",
               by_thread: bool = False, hidden_lists: Iterable[str] = (),
               texts: Callable[[list[str]], dict[str, tuple[str, str, str]]] | None = None) -> Found:
        """Run a query; texts(ids) gives (own, quoted, language) per message for the snippets."""
        if sort not in ("relevance", "newest", "oldest"):
            raise QueryError(f"unknown sort '{sort}': use relevance, newest or oldest")
        if not 1 <= per_page <= MAX_PAGE:
            raise QueryError(f"page size must be between 1 and {MAX_PAGE}")
        if page < 1:
            raise QueryError("pages are numbered from 1")
        parsed = prepare(text)
        ix = self._open()
        with ix.searcher() as searcher:
            q = _parse(parsed.text, searcher.reader()) if parsed.text else query.Every()
            filters = [query.DateRange("date", _naive(parsed.start), _naive(parsed.end))] \
                if parsed.start or parsed.end else []
            mask = query.Or([query.Term("lists", name.lower()) for name in hidden_lists]) \
                if hidden_lists else None
            options = {"groupedby": {name: sorting.FieldFacet(fieldname, allow_overlap=fieldname in
                                                             ("topics", "lists"), maptype=sorting.Count)
                                     for name, fieldname in FACETS.items()},
                       "terms": True}
            if filters:
                options["filter"] = query.And(filters) if len(filters) > 1 else filters[0]
            if mask is not None:
                options["mask"] = mask
            if sort != "relevance":
                options["sortedby"] = "date"
                options["reverse"] = sort == "newest"
            if by_thread:
                options["collapse"] = "thread"
                options["collapse_limit"] = 1
            results = searcher.search(q, limit=page * per_page, **options)
            # With collapsing, every thread counts once: the matches less those folded away.
            total = len(results) - sum(results.collapsed_counts.values()) if by_thread else len(results)
            start = (page - 1) * per_page
            chosen = [results[i] for i in range(start, min(start + per_page, results.scored_length()))]
            hits = [Hit(message_id=h["msg_id"], thread_id=h["thread"], score=round(h.score or 0.0, 4))
                    for h in chosen]
            if texts and hits:
                _snippets(chosen, hits, texts([h.message_id for h in hits]))
            facets = {name: sorted(((str(k), v) for k, v in results.groups(name).items()
                                    if k and k != NONE),
                                   key=lambda kv: (-kv[1], kv[0]))[:15]
                      for name in FACETS}
        pages = max(1, -(-total // per_page))
        return Found(total=total, page=page, pages=pages, per_page=per_page, hits=hits, facets=facets)


def _naive(value: datetime | None) -> datetime | None:
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value else None


def _parse(text: str, reader) -> query.Query:
    parser = qparser.MultifieldParser(["own", "subject"], _VIRTUAL, fieldboosts={"subject": 2.0})
    parser.remove_plugin_class(qparser.WildcardPlugin)
    parser.add_plugin(qparser.PrefixPlugin())
    try:
        parsed = parser.parse(text)
    except Exception as exc:  # the parser raises assorted types on odd input
        raise QueryError(f"the query could not be read: {exc}") from exc
    result = _to_real(parsed, reader)
    if result is query.NullQuery or isinstance(result, query.NullQuery.__class__):
        raise QueryError("the query has no words to search for")
    return result


def _to_real(q: query.Query, reader) -> query.Query:
    """Map a parsed query from the fields people type onto the index's fields, stemming each
    word with each field's analyzer; iterative over the tree (queries can nest deeply)."""
    if isinstance(q, (query.Term, query.Phrase, query.Prefix)):
        return _leaf(q, reader)
    if hasattr(q, "subqueries"):
        return q.apply(lambda child: _to_real(child, reader))
    if isinstance(q, query.Not):
        return query.Not(_to_real(q.query, reader))
    return q


def _leaf(q: query.Query, reader) -> query.Query:
    names = _REAL.get(q.fieldname, [q.fieldname])
    options = []
    for name in names:
        fieldobj = SCHEMA[name]
        if isinstance(q, query.Prefix):
            if len(q.text) < 2:
                raise QueryError(f"'{q.text}*' is too short: give at least two letters before *")
            stem = next(iter(fieldobj.process_text(q.text, mode="query")), q.text.lower())
            words = list(islice(reader.expand_prefix(name, stem), MAX_EXPANSION + 1))
            if len(words) > MAX_EXPANSION:
                raise QueryError(f"'{q.text}*' matches more than {MAX_EXPANSION} words: give more letters")
            options.extend(query.Term(name, w) for w in words)
            continue
        if isinstance(q, query.Phrase):
            stems = [t for word in q.words for t in fieldobj.process_text(word, mode="query")]
            if stems:
                options.append(query.Phrase(name, stems, boost=q.boost))
            continue
        stems = list(fieldobj.process_text(q.text, mode="query")) if fieldobj.analyzer else [q.text]
        if len(stems) == 1:
            options.append(query.Term(name, stems[0], boost=q.boost))
        elif stems:
            options.append(query.Phrase(name, stems, boost=q.boost))
    if not options:
        return query.NullQuery
    return options[0] if len(options) == 1 else query.Or(options)


class _Marks(highlight.Formatter):
    """Mark matched words as <mark>...</mark>, the rest HTML-escaped."""

    between = " … "

    def format_token(self, text, token, replace=False):
        return f"<mark>{highlight.htmlescape(highlight.get_text(text, token, replace))}</mark>"

    def format_fragment(self, fragment, replace=False):
        out, index_ = [], fragment.startchar
        text = fragment.text
        for token in fragment.matches:
            if token.startchar < index_:
                continue
            out.append(highlight.htmlescape(text[index_:token.startchar]))
            out.append(self.format_token(text, token, replace))
            index_ = token.endchar
        out.append(highlight.htmlescape(text[index_:fragment.endchar]))
        return "".join(out)


def _snippets(chosen, hits: list[Hit], texts: dict[str, tuple[str, str, str]]) -> None:
    formatter = _Marks()
    fragmenter = highlight.ContextFragmenter(maxchars=220, surround=60)
    for hit, result in zip(hits, chosen):
        own, quoted, lang = texts.get(hit.message_id, ("", "", ""))
        slot = lang if lang in STEMMED else "xx"
        result.results.fragmenter = fragmenter
        result.results.formatter = formatter
        snippet = result.highlights(f"own_{slot}", text=own, top=2) if own else ""
        if not snippet and quoted:
            snippet = result.highlights(f"quoted_{slot}", text=quoted, top=2)
        hit.snippet = snippet or highlight.htmlescape(" ".join(own.split())[:200])
