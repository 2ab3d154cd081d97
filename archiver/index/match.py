"""Matching in numpy: a searcher's postings and columns read whole, matched, scored and counted."""

from __future__ import annotations

import threading
import weakref
from datetime import datetime

import numpy
from whoosh import query
from whoosh.codec.whoosh3 import LENGTHS_COLUMN
from whoosh.reading import TermNotFound
from whoosh.util.numeric import byte_to_length

from ..errors import QueryError
from .analysis import _micros
from .packed import _np_varints, _segmented_cumsum
from .schema import _CODED, FACETS, MULTI, NO_DATE, _codes, _numbers

B, K1 = 0.75, 1.2       # BM25F's parameters, Whoosh's defaults


_BYTE_LENGTHS = numpy.array([byte_to_length(i) for i in range(256)], dtype=numpy.float64)
_NONE = (numpy.zeros(0, numpy.int64), numpy.zeros(0, numpy.float64))


def _read(matcher, positions: bool):
    """Read a term's postings in one segment whole: (docnums, weights, positions), positions
    being (posting index, position) arrays when asked for, else None. (_Codec never inlines
    postings into the term dictionary, and _check refuses segments of other codecs.)"""
    counts, ids, weights, lens, blobs = [], [], [], [], []
    for count, (idbytes, weight, values) in matcher.blocks():
        counts.append(count)
        ids.append(idbytes)
        if weight is None or isinstance(weight, float):
            weights.append(numpy.full(count, 1.0 if weight is None else weight))
        else:
            weights.append(numpy.frombuffer(weight[1], numpy.uint8 if weight[0] == "B"
                                            else numpy.float32))
        if positions:
            lens.append(values[0])
            blobs.append(values[1])
    deltas = _np_varints(numpy.frombuffer(b"".join(ids), numpy.uint8))
    docs = numpy.cumsum(deltas) if len(counts) == 1 else _segmented_cumsum(deltas, numpy.array(counts))
    weight = numpy.concatenate(weights).astype(numpy.float64)
    if not positions:
        return docs, weight, None
    sizes = _np_varints(numpy.frombuffer(b"".join(lens), numpy.uint8))
    raw = numpy.frombuffer(b"".join(blobs), numpy.uint8)
    owner = numpy.repeat(numpy.arange(docs.size), sizes)[raw < 128]
    spots = _segmented_cumsum(_np_varints(raw), numpy.bincount(owner, minlength=docs.size))
    return docs, weight, (owner, spots)


class _Tables:
    """What matching reads once per set of segments, as numpy arrays: which documents are
    live (a replaced message's old copy is not), each column's values as codes, the facets'
    members, the dates, each text field's lengths. Read-only once made, so one copy serves
    every thread of a process (see _tables): at 1,000,000 messages it is about 110 MB."""

    def __init__(self, leaves: list, size: int):
        self.live = numpy.ones(size, bool)
        for seg, offset in leaves:
            if seg.has_deletions():
                dead = numpy.fromiter(seg.deleted_docs_set, numpy.int64)
                self.live[offset + dead] = False
        self.all_live = bool(self.live.all())
        self.columns = {name: _coded(leaves, name) for name in _CODED}
        self.members = {name: _split(name, self.columns[name][1]) for name in FACETS.values()}
        self.dates = numpy.concatenate(
            [_numbers(seg.column_reader("date", translate=False), seg.doc_count_all(), NO_DATE)
             for seg, _ in leaves] or [numpy.zeros(0, numpy.int64)])
        self.lengths: dict[str, numpy.ndarray] = {}   # per text field, read when first scored


# Tables by the segments they were read from, while some searcher's view holds them.
_SHARED: weakref.WeakValueDictionary[tuple, _Tables] = weakref.WeakValueDictionary()
_SHARING = threading.Lock()


def _tables(source: tuple, leaves: list, size: int) -> _Tables:
    """Return the tables of these segments of the index at source (its directory, and the
    directory's inode): the web gives each server thread a searcher of its own, and each
    made its own copy (four at 1,000,000 messages were most of the server's memory).
    Segments never change, and deletions only grow, so a segment's id, size and number of
    deletions say what its tables hold within one index; the source tells two copies of an
    index apart, whose segments have the same ids but may have other deletions."""
    key = (source, *((seg.segment().segment_id(), seg.doc_count_all(), seg.segment().deleted_count(), offset)
                     for seg, offset in leaves))
    with _SHARING:   # a second thread waits for the first's tables instead of making its own
        found = _SHARED.get(key)
        if found is None:
            found = _SHARED[key] = _Tables(leaves, size)
        return found


def _coded(leaves: list, name: str) -> tuple[numpy.ndarray, list[str]]:
    """Return each document's value of a column as a code, and the values of the codes."""
    known: dict[str, int] = {}
    parts = []
    for seg, _ in leaves:
        refs, values = _codes(seg.column_reader(name, translate=False), seg.doc_count_all())
        mapping = numpy.array([known.setdefault(v, len(known)) for v in values], numpy.int32)
        parts.append(mapping[refs])
    return numpy.concatenate(parts or [numpy.zeros(0, numpy.int32)]), list(known)


def _split(name: str, values: list[str]):
    """Return a facet's values (members of comma-joined sets, each once) and, per code,
    where its members start in `flat` and how many it has."""
    names: dict[str, int] = {}
    flat, counts = [], []
    for value in values:
        members = [v for v in (value.split(",") if name in MULTI else [value]) if v]
        flat += [names.setdefault(v, len(names)) for v in members]
        counts.append(len(members))
    counts = numpy.array(counts, numpy.int64)
    return list(names), numpy.cumsum(counts) - counts, counts, numpy.array(flat, numpy.int64)


class _View:
    """What matching needs of one searcher: its reader and segments (postings are read per
    query through them, so a view is one thread's), and the tables it shares (_Tables)."""

    def __init__(self, searcher, source: tuple):
        self.searcher = searcher
        self.reader = reader = searcher.reader()
        self.schema = reader.schema
        self.leaves = list(reader.leaf_readers())
        self.size = reader.doc_count_all()
        self.tables = tables = _tables(source, self.leaves, self.size)
        self.live, self.all_live = tables.live, tables.all_live
        self.columns, self._members, self.dates = tables.columns, tables.members, tables.dates

    def facet(self, name: str, docs: numpy.ndarray, by_thread: bool) -> list[tuple[str, int]]:
        """Count a facet's values over the matches, in numpy over codes: messages, or (one
        hit per thread) threads, so that a count is the total the search gets with that value
        as a filter. The fifteen most frequent values."""
        codes, values = self.columns[name]
        names, starts, counts, flat = self._members[name]
        if not by_thread:
            per_code = numpy.bincount(codes[docs], minlength=len(values))
            found = numpy.bincount(flat, weights=numpy.repeat(per_code, counts), minlength=len(names))
        else:
            # Each (thread, value) once: a thread counts once for each value its matches have.
            pairs = numpy.unique(self.columns["thread"][0][docs].astype(numpy.int64) * len(values)
                                 + codes[docs])
            code, thread = pairs % len(values), pairs // len(values)
            many = counts[code]
            if name not in MULTI:   # one value a message: (thread, value) pairs are unique
                found = numpy.bincount(flat[starts[code[many > 0]]], minlength=len(names))
            else:
                at = numpy.repeat(starts[code], many) + numpy.arange(many.sum()) \
                    - numpy.repeat(numpy.cumsum(many) - many, many)
                pairs = numpy.unique(numpy.repeat(thread, many) * len(names) + flat[at])
                found = numpy.bincount(pairs % len(names), minlength=len(names))
        present = numpy.flatnonzero(found)
        ranked = sorted(((names[i], int(found[i])) for i in present), key=lambda kv: (-kv[1], kv[0]))
        return ranked[:15]

    def lengths(self, fieldname: str) -> numpy.ndarray:
        found = self.tables.lengths.get(fieldname)
        if found is None:
            parts = []
            for seg, _ in self.leaves:
                raw = numpy.zeros(seg.doc_count_all(), numpy.uint8)
                name = f"_{fieldname}_len"
                if seg._perdoc.has_column(name):
                    column = seg._perdoc.column_reader(name, LENGTHS_COLUMN)
                    count = min(column._count, raw.size)
                    raw[:count] = numpy.frombuffer(column._dbfile.get(column._basepos, count),
                                                   numpy.uint8)
                parts.append(raw)
            found = self.tables.lengths[fieldname] = _BYTE_LENGTHS[
                numpy.concatenate(parts or [numpy.zeros(0, numpy.uint8)])]
        return found

    def postings(self, fieldname: str, text: str, positions: bool = False):
        """Return a term's postings in every segment: document numbers (ascending, deleted
        ones included), weights and, when asked, (posting index, position) pairs."""
        fieldobj = self.schema[fieldname]
        tbytes = fieldobj.to_bytes(text)
        found = []
        for seg, offset in self.leaves:
            try:
                matcher = seg._terms.matcher(fieldname, tbytes, fieldobj.format)
            except TermNotFound:
                continue
            docs, weights, spots = _read(matcher, positions)
            found.append((docs + offset, weights, spots))
        if len(found) == 1:
            return found[0]
        if not found:
            empty = numpy.zeros(0, numpy.int64)
            return empty, numpy.zeros(0), (empty, empty) if positions else None
        docs = numpy.concatenate([f[0] for f in found])
        weights = numpy.concatenate([f[1] for f in found])
        if not positions:
            return docs, weights, None
        starts = numpy.cumsum([0] + [f[0].size for f in found[:-1]])
        owner = numpy.concatenate([f[2][0] + start for f, start in zip(found, starts)])
        return docs, weights, (owner, numpy.concatenate([f[2][1] for f in found]))

    def scores(self, fieldname: str, frequency: int, docs: numpy.ndarray,
               weights: numpy.ndarray) -> numpy.ndarray:
        """Score postings as Whoosh's BM25F does (non-scorable fields: the weight), given the
        term's document frequency (its postings, deleted documents' included, as Whoosh's)."""
        if not self.schema[fieldname].scorable:
            return weights
        idf = numpy.log(self.size / (frequency + 1)) + 1
        average = (self.reader.field_length(fieldname) / (self.size or 1)) or 1
        lengths = self.lengths(fieldname)[docs]
        return idf * (weights * (K1 + 1)) / (weights + K1 * ((1 - B) + B * lengths / average))

    def alive(self, docs: numpy.ndarray, scores: numpy.ndarray):
        if self.all_live:
            return docs, scores
        keep = self.live[docs]
        return docs[keep], scores[keep]


def _match(q: query.Query, view: _View) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Return the live documents a query matches (ascending) and their scores."""
    boost = getattr(q, "boost", 1.0)
    if isinstance(q, query.Term):
        if q.fieldname not in view.schema or not view.schema[q.fieldname].indexed:
            return _NONE
        docs, weights, _ = view.postings(q.fieldname, q.text)
        docs, scores = view.alive(docs, view.scores(q.fieldname, docs.size, docs, weights))
        return docs, scores * boost
    if isinstance(q, query.Phrase):
        return _phrase(q, view)
    if isinstance(q, query.Or):
        parts = [p for p in (_match(c, view) for c in q.subqueries) if p[0].size]
        if not parts:
            return _NONE
        if len(parts) == 1:
            docs, scores = parts[0]
        else:
            docs, inverse = numpy.unique(numpy.concatenate([p[0] for p in parts]), return_inverse=True)
            scores = numpy.bincount(inverse, weights=numpy.concatenate([p[1] for p in parts]),
                                    minlength=docs.size)
        return docs, scores * boost
    if isinstance(q, query.And):
        wanted = [c for c in q.subqueries if not isinstance(c, query.Not)]
        unwanted = [c.query for c in q.subqueries if isinstance(c, query.Not)]
        docs, scores = _all(wanted, view)
        for child in unwanted:
            if docs.size:
                docs, scores = _without(docs, scores, _match(child, view)[0])
        return docs, scores * boost
    if isinstance(q, query.AndNot):
        docs, scores = _match(q.a, view)
        if docs.size:
            docs, scores = _without(docs, scores, _match(q.b, view)[0])
        return docs, scores * boost
    if isinstance(q, query.Not):
        docs, scores = _without(*_every(view), _match(q.query, view)[0])
        return docs, scores * boost
    if isinstance(q, query.AndMaybe):
        docs, scores = _match(q.a, view)
        more, extra = _match(q.b, view)
        common, mine, theirs = numpy.intersect1d(docs, more, assume_unique=True, return_indices=True)
        scores = scores.copy()
        scores[mine] += extra[theirs]
        return docs, scores * boost
    if isinstance(q, query.Require):
        docs, scores = _match(q.a, view)
        common, mine, _ = numpy.intersect1d(docs, _match(q.b, view)[0], assume_unique=True,
                                            return_indices=True)
        return common, scores[mine] * boost
    if isinstance(q, query.Every) and not q.fieldname:
        docs, scores = _every(view)
        return docs, scores * boost
    if q is query.NullQuery or isinstance(q, query.NullQuery.__class__):
        return _NONE
    # Anything else the parser may give: Whoosh matches it (scored, every match).
    results = view.searcher.search(q, limit=None)
    pairs = sorted((docnum, score) for score, docnum in results.top_n)
    docs = numpy.array([d for d, _ in pairs], numpy.int64)
    return docs, numpy.array([s for _, s in pairs], numpy.float64)


def _all(children: list[query.Query], view: _View):
    if not children:
        return _every(view)
    docs, scores = _match(children[0], view)
    for child in children[1:]:
        if not docs.size:
            break
        more, extra = _match(child, view)
        docs, mine, theirs = numpy.intersect1d(docs, more, assume_unique=True, return_indices=True)
        scores = scores[mine] + extra[theirs]
    return docs, scores


def _without(docs, scores, unwanted):
    keep = ~numpy.isin(docs, unwanted, assume_unique=True)
    return docs[keep], scores[keep]


def _every(view: _View):
    docs = numpy.flatnonzero(view.live).astype(numpy.int64)
    return docs, numpy.ones(docs.size)


def _phrase(q: query.Phrase, view: _View):
    """Match a phrase exactly: documents where the words stand at consecutive positions."""
    name, words = q.fieldname, list(q.words)
    if name not in view.schema:
        return _NONE
    if not view.schema[name].format.supports("positions"):
        raise QueryError(f"'{name}' keeps no word positions: a phrase cannot be searched there")
    if len(words) == 1:
        return _match(query.Term(name, words[0], boost=q.boost), view)
    lists = [view.postings(name, w, positions=True) for w in words]
    if any(not docs.size for docs, _, _ in lists):
        return _NONE
    candidates = lists[0][0]
    for docs, _, _ in lists[1:]:
        candidates = numpy.intersect1d(candidates, docs, assume_unique=True)
    if not view.all_live:
        candidates = candidates[view.live[candidates]]
    if not candidates.size:
        return _NONE
    # Each word's (candidate, position - its place in the phrase) as one number: a phrase
    # starts where every word has the same number.
    span = max(int(spots.max()) for _, _, (_, spots) in lists) + len(words) + 1
    keys = None
    for place, (docs, _, (owner, spots)) in enumerate(lists):
        doc = docs[owner]
        rank = numpy.minimum(numpy.searchsorted(candidates, doc), candidates.size - 1)
        ok = (candidates[rank] == doc) & (spots >= place)
        mine = rank[ok] * span + (spots[ok] - place)
        keys = mine if keys is None else numpy.intersect1d(keys, mine, assume_unique=True)
        if not keys.size:
            return _NONE
    ranks = keys // span   # ascending: intersect1d's keys are sorted
    matched = candidates[ranks[numpy.concatenate(([True], ranks[1:] != ranks[:-1]))]]
    # Scored as Whoosh scores a phrase: the sum of its words' scores.
    scores = numpy.zeros(matched.size)
    for docs, weights, _ in lists:
        at = numpy.searchsorted(docs, matched)
        scores += view.scores(name, docs.size, matched, weights[at])
    return matched, scores * q.boost


def _in_dates(view: _View, docs, scores, start: datetime | None, end: datetime | None):
    """Keep the documents dated in [start, end)."""
    dates = view.dates[docs]
    keep = dates != NO_DATE
    if start is not None:
        keep &= dates >= _micros(start)
    if end is not None:
        keep &= dates < _micros(end)
    return docs[keep], scores[keep]
