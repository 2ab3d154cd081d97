"""The Whoosh index: schema, incremental updates, rebuild, and search (all Whoosh use is here).

Whoosh keeps the index's files: the term dictionary, the postings, the per-document columns,
the segments and their atomic replacement. Two things are the archive's own:

- How postings are written (`_Codec`): block data is packed bytes (varints, not pickled
  tuples of Python numbers) and postings are gathered term by term as documents are added
  (`_Pool`), so a segment is written a block at a time instead of a posting at a time.
- How queries are matched (`_View`, `_match`): Whoosh parses the query, and the archive reads
  each query term's postings whole into numpy arrays and matches, scores (BM25F, as Whoosh
  scores), filters, sorts and counts facets there. Whoosh's own matchers step through every
  posting in Python, which cost 50 to 200 ms a query at 100,000 messages.
"""

from __future__ import annotations

import html
import pickle
import re
import shutil
import threading
import time
import unicodedata
import zlib
from array import array
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from itertools import accumulate, chain, islice
from pathlib import Path
from typing import Callable, Iterable

import numpy

from whoosh import columns, formats, index, qparser, query
from whoosh.analysis import LowercaseFilter, RegexTokenizer, Token, Tokenizer
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, WHOOSH3_HEADER_MAGIC, W3Codec, W3FieldWriter, \
    W3LeafMatcher, W3PostingsWriter
from whoosh.fields import BOOLEAN, COLUMN, ID, KEYWORD, TEXT, Schema
from whoosh.index import EmptyIndexError
from whoosh.lang import stemmer_for_language, stopwords_for_language
from whoosh.query.qcore import QueryError as WhooshQueryError
from whoosh.reading import TermNotFound
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.writing import PostingPool, SegmentWriter

from .errors import ArchiverError, QueryError
from .querylang import prepare

STEMMED = ("en", "fr", "es", "pt")   # languages whose stemmer and stop words are applied
MAX_EXPANSION = 200                  # words a prefix* may stand for
MAX_PAGE = 100
FACETS = {"topic": "topics_facet", "author": "author_facet", "org": "org_facet",
          "list": "lists_facet", "month": "month", "lang": "lang_facet"}
MULTI = {"topics_facet", "lists_facet"}   # comma-joined sets: counted per member
_WORD = re.compile(r"\w+", re.UNICODE)

# The index's format: raised whenever the schema or the postings' encoding changes. An index
# of another format is refused with a message to run `archiver reindex`, never half-read.
INDEX_FORMAT = 2
SEGMENT_DOCS = 50_000   # a rebuild writes a segment per this many messages (bounds memory)
BLOCK = 512             # postings per block: fewer, larger blocks to read whole
NO_DATE = -(2 ** 63)    # the date column's value for a message without a date
B, K1 = 0.75, 1.2       # BM25F's parameters, Whoosh's defaults


class IndexFormatError(ArchiverError):
    """The index on disk was written in another format: it must be rebuilt."""


# --- packed numbers ----------------------------------------------------------------------------

def _varints(numbers: list[int]) -> bytes:
    """Pack non-negative integers (a list) as varints: 7 bits a byte, low bits first."""
    if max(numbers, default=0) < 128:
        return bytes(numbers)
    out = bytearray()
    for n in numbers:
        while n >= 128:
            out.append((n & 127) | 128)
            n >>= 7
        out.append(n)
    return bytes(out)


def _unvarints(data: bytes) -> list[int]:
    if data.isascii():
        return list(data)
    out, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 127) << shift
        if byte < 128:
            out.append(value)
            value, shift = 0, 0
        else:
            shift += 7
    return out


def _np_varints(buf: numpy.ndarray) -> numpy.ndarray:
    """Decode a uint8 array of varints into int64 values, in numpy."""
    if not buf.size:
        return numpy.zeros(0, numpy.int64)
    ends = buf < 128
    if ends.all():
        return buf.astype(numpy.int64)
    starts = numpy.concatenate(([0], numpy.flatnonzero(ends)[:-1] + 1))
    group = numpy.cumsum(ends) - ends
    shift = (numpy.arange(buf.size) - starts[group]) * 7
    return numpy.add.reduceat((buf & 127).astype(numpy.int64) << shift, starts)


def _segmented_cumsum(values: numpy.ndarray, counts: numpy.ndarray) -> numpy.ndarray:
    """Cumulative sums that restart at each group of `counts` consecutive values."""
    total = numpy.cumsum(values)
    before = numpy.concatenate(([0], total))[numpy.cumsum(counts) - counts]
    return total - numpy.repeat(before, counts)


_HIGH = bytes(range(128, 256))
_VARINT = [_varints([n]) for n in range(1 << 14)]   # the packed numbers of two bytes or less


# --- text fields: positions as varints ---------------------------------------------------------

class _Positions(formats.Positions):
    """Positions as varint deltas (Whoosh pickles a list per posting: larger, slower to read).
    Reads words already analysed by analyse(): split at spaces, 'a|b' is two terms at one
    position."""

    def word_values(self, value, analyzer, **kwargs):
        boost = self.field_boost
        found: dict[str, list[int]] = {}
        for pos, group in enumerate(value.split()):
            for word in group.split("|") if "|" in group else (group,):
                spots = found.get(word)
                if spots is None:
                    found[word] = [pos]
                else:
                    spots.append(pos)
        for word, spots in found.items():
            yield word, len(spots), len(spots) * boost, self.encode(spots)

    def encode(self, poslist):
        if len(poslist) == 1 and poslist[0] < len(_VARINT):
            return _VARINT[poslist[0]]
        deltas = [b - a for a, b in zip([0, *poslist], poslist)]
        try:
            return b"".join([_VARINT[d] for d in deltas])
        except IndexError:
            return _varints(deltas)

    def decode_positions(self, valuestring):
        return list(accumulate(_unvarints(valuestring)))

    def decode_frequency(self, valuestring):
        return len(valuestring.translate(None, _HIGH))

    def decode_weight(self, valuestring):
        return self.decode_frequency(valuestring) * self.field_boost

    def combine(self, vs):
        return self.encode(sorted({p for v in vs for p in self.decode_positions(v)}))


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


_PREPARED = _Prepared()


class _Text(TEXT):
    """A text field of words already analysed for the message's language, with positions."""

    def __init__(self, field_boost: float = 1.0):
        super().__init__(analyzer=_PREPARED, field_boost=field_boost)
        self.format = _Positions(field_boost=field_boost)


# --- columns: a value per document, read whole into numpy --------------------------------------

class _Codes(columns.Column):
    """Each document's value (a str) as a number into the segment's list of distinct values,
    so that facets, threads and months load as one numpy array."""

    reversible = False

    def default_value(self, reverse=False):
        return ""

    def writer(self, dbfile):
        return _Codes.Writer(dbfile)

    def reader(self, dbfile, basepos, length, doccount):
        return _Codes.Reader(dbfile, basepos, length, doccount)

    class Writer(columns.ColumnWriter):
        def __init__(self, dbfile):
            self._dbfile = dbfile
            self._refs = array("I")
            self._values = {"": 0}

        def fill(self, docnum):
            if docnum > len(self._refs):
                self._refs.extend(array("I", bytes(4 * (docnum - len(self._refs)))))

        def add(self, docnum, value):
            self.fill(docnum)
            self._refs.append(self._values.setdefault(value, len(self._values)))

        def finish(self, doccount):
            self.fill(doccount)
            width = 1 if len(self._values) <= 256 else 2 if len(self._values) <= 65536 else 4
            refs = numpy.frombuffer(self._refs, dtype=numpy.uint32).astype(f"<u{width}")
            self._dbfile.write(refs.tobytes())
            self._dbfile.write(pickle.dumps(list(self._values), 4))
            self._dbfile.write(bytes([width]))

    class Reader(columns.ColumnReader):
        def __init__(self, dbfile, basepos, length, doccount):
            self._doccount = doccount
            width = dbfile.get_byte(basepos + length - 1)
            size = doccount * width
            self.refs = numpy.frombuffer(dbfile.get(basepos, size), dtype=f"<u{width}")
            self.values = pickle.loads(dbfile.get(basepos + size, length - 1 - size))

        def __len__(self):
            return self._doccount

        def __getitem__(self, docnum):
            return self.values[self.refs[docnum]]

        def __iter__(self):
            values = self.values
            return (values[r] for r in self.refs.tolist())


def _codes(reader, doccount: int) -> tuple[numpy.ndarray, list]:
    """Return a segment's (refs, values) of a _Codes column (a column never written: all '')."""
    if isinstance(reader, _Codes.Reader):
        return reader.refs, reader.values
    return numpy.zeros(doccount, numpy.uint8), [""]


def _numbers(reader, doccount: int, default: int) -> numpy.ndarray:
    """Return a segment's NumericColumn('q') as an int64 array, in one read."""
    found = numpy.full(doccount, default, numpy.int64)
    if isinstance(reader, columns.NumericColumn.Reader):
        count = min(reader._count, doccount)
        raw = reader._dbfile.get(reader._basepos, count * reader._fixedlen)
        found[:count] = numpy.frombuffer(raw, dtype=">i8")
    return found


# What the index holds. Text fields hold words already analysed for the message's language
# (lower case, stop words dropped, stemmed, accents folded) by analyse(): one field for every
# language keeps the index small and a query word a handful of terms in one field. Facets,
# threads, months and dates are columns only: filtered, grouped and counted in numpy.
SCHEMA = Schema(
    msg_id=ID(stored=True, unique=True),
    own=_Text(),
    quoted=_Text(),
    subject=_Text(field_boost=2.0),
    author=_Text(),
    org=_Text(),
    lists=KEYWORD(commas=True, lowercase=True),
    topics=KEYWORD(commas=True, lowercase=True),
    lang=ID(),
    attachments=BOOLEAN(),
    thread=COLUMN(_Codes()),
    author_facet=COLUMN(_Codes()),
    org_facet=COLUMN(_Codes()),
    lists_facet=COLUMN(_Codes()),
    topics_facet=COLUMN(_Codes()),
    month=COLUMN(_Codes()),
    lang_facet=COLUMN(_Codes()),
    date=COLUMN(columns.NumericColumn("q", default=NO_DATE)),
)
_CODED = ("thread", *FACETS.values())


# --- postings: gathered by term, written a block at a time, packed -----------------------------

def _pack_weights(weights: array):
    first = weights[0]
    if weights.count(first) == len(weights):
        return None if first == 1.0 else float(first)
    try:
        small = array("B", map(int, weights))
    except (OverflowError, ValueError):
        small = None
    if small is not None and array("f", small) == weights:
        return ("B", small.tobytes())
    return ("f", weights.tobytes())


class _PostingsWriter(W3PostingsWriter):
    """Whoosh's block layout (so Whoosh's own matchers and merges still read it) with packed
    block data: ids as varint deltas, weights as bytes when they are small whole numbers, and
    the values as one byte string with their lengths (Whoosh pickles a tuple of Python numbers
    and byte strings, which is larger and slower to read)."""

    def add_many(self, ids: array, weights: array, blob: bytes, lens: array) -> None:
        """Add a term's postings at once (ids ascending)."""
        count, limit = len(ids), self._blocklimit
        start = offset = 0
        while True:
            end = min(count, start + limit)
            size = sum(lens[start:end]) if start or end < count else len(blob)
            self._ids, self._weights = ids[start:end], weights[start:end]
            self._values = (lens[start:end], blob[offset:offset + size])
            self._maxweight = max(self._weights)
            self._minlength, self._maxlength = None, 0
            if end == count:
                return   # the last block stays buffered: finish_postings() writes it
            self._write_block()
            start, offset = end, offset + size

    def _write_block(self, last=False):
        if not self._blockcount:
            self._postfile.write(WHOOSH3_HEADER_MAGIC)
        self._terminfo.add_block(self)
        ids = self._ids
        data = (_varints([b - a for a, b in zip([0, *ids], ids)]), _pack_weights(self._weights),
                self._pack_values())
        databytes = pickle.dumps(data, 4)
        compression = self._compression if len(databytes) >= 64 else 0
        if compression:
            databytes = zlib.compress(databytes, compression)
        infobytes = pickle.dumps((len(ids), ids[-1], self._maxweight, compression,
                                  length_to_byte(self._minlength),
                                  length_to_byte(self._maxlength)), 2)
        length = len(infobytes) + len(databytes)
        self._postfile.write_int(-length if last else length)
        self._postfile.write(infobytes)
        self._postfile.write(databytes)
        self._blockcount += 1
        self._new_block()

    def _pack_values(self):
        fixed = self._format.fixed_value_size()
        if fixed == 0:
            return None
        if isinstance(self._values, tuple):
            lens, blob = self._values
        else:   # added one by one (Whoosh's path)
            lens, blob = [len(v) for v in self._values], b"".join(self._values)
        return bytes(blob) if fixed else (_varints(list(lens)), bytes(blob))


class _Matcher(W3LeafMatcher):
    """Whoosh's matcher over the packed blocks, plus blocks() to read them whole."""

    def _read_ids(self):
        if self._data is None:
            self._read_data()
        self._ids = tuple(accumulate(_unvarints(self._data[0])))

    def _read_weights(self):
        if self._data is None:
            self._read_data()
        weights, count = self._data[1], self._blocklength
        if weights is None or isinstance(weights, float):
            self._weights = array("f", [1.0 if weights is None else weights]) * count
        else:
            self._weights = array("f", array(weights[0], weights[1]))

    def _read_values(self):
        if self._data is None:
            self._read_data()
        values, count = self._data[2], self._blocklength
        if values is None:
            self._values = (None,) * count
        elif isinstance(values, tuple):
            lens, blob = values
            ends = list(accumulate(_unvarints(lens)))
            self._values = tuple(blob[a:b] for a, b in zip([0, *ends], ends))
        else:
            size = len(values) // count
            self._values = tuple(values[i:i + size] for i in range(0, len(values), size))

    def blocks(self):
        """Yield each block's (count, (ids, weights, values)) as stored."""
        while True:
            if self._data is None:
                self._read_data()
            yield self._blocklength, self._data
            if self._lastblock:
                return
            self._goto(self._nextoffset)


class _Codec(W3Codec):
    """Whoosh's codec with packed postings (pickled into each segment's entry in the table of
    contents, with the index format it was written in)."""

    length_stats = False   # per-block length bounds serve Whoosh's top-k skipping, unused here

    def __init__(self):
        super().__init__(blocklimit=BLOCK, compression=3, inlinelimit=1)
        self.format_version = INDEX_FORMAT

    def postings_writer(self, dbfile, byteids=False):
        if byteids:   # term vectors: none in this schema
            return super().postings_writer(dbfile, byteids)
        return _PostingsWriter(dbfile, blocklimit=self._blocklimit, compression=self._compression,
                               inlinelimit=self._inlinelimit)

    def postings_reader(self, dbfile, terminfo, format_, term=None, scorer=None):
        if terminfo.is_inlined():
            return super().postings_reader(dbfile, terminfo, format_, term, scorer)
        offset, length = terminfo.extent()
        return _Matcher(dbfile, offset, length, format_, term=term, scorer=scorer)

    def field_writer(self, storage, segment):
        return _FieldWriter(self, storage, segment)


class _Pool(PostingPool):
    """Postings gathered term by term as documents are added (in document order), so writing
    a segment sorts the terms, not every posting, and nothing is spilled to disk. A term seen
    once is kept as one tuple (most words of a large archive are)."""

    def __init__(self, tempstore, segment, **kwargs):
        super().__init__(tempstore, segment, **kwargs)
        self.terms: dict[tuple[str, bytes], tuple | list] = {}
        self.unsorted: set[tuple[str, bytes]] = set()

    def add(self, item):
        fieldname, tbytes, docnum, weight, value = item
        key = (fieldname, tbytes)
        entry = self.terms.get(key)
        if entry is None:
            self.terms[key] = (docnum, weight, value or b"")
            return
        if isinstance(entry, tuple):
            first, w, v = entry
            entry = self.terms[key] = [array("I", [first]), array("f", [w]), bytearray(v),
                                       array("I", [len(v)])]
        if entry[0][-1] >= docnum:
            self.unsorted.add(key)
        entry[0].append(docnum)
        entry[1].append(weight)
        if value:
            entry[2] += value
        entry[3].append(len(value) if value else 0)

    def iter_postings(self):
        return _Grouped(self)

    def cleanup(self):
        self.terms = {}
        super().cleanup()


class _Grouped:
    """A pool's postings: by term for _FieldWriter, or as Whoosh's sorted tuples."""

    def __init__(self, pool: _Pool):
        self.pool = pool
        self.terms = pool.terms

    def get(self, key) -> tuple[array, array, bytes, array]:
        entry = self.terms[key]
        if isinstance(entry, tuple):
            docnum, weight, value = entry
            return array("I", [docnum]), array("f", [weight]), value, array("I", [len(value)])
        ids, weights, blob, lens = entry
        if key in self.pool.unsorted:
            ends = list(accumulate(lens))
            pieces = [blob[a:b] for a, b in zip([0, *ends], ends)]
            order = sorted(range(len(ids)), key=ids.__getitem__)
            ids, weights = array("I", (ids[i] for i in order)), array("f", (weights[i] for i in order))
            lens = array("I", (lens[i] for i in order))
            blob = bytearray(b"".join(pieces[i] for i in order))
        return ids, weights, blob, lens

    def __iter__(self):
        for key in sorted(self.terms):
            ids, weights, blob, lens = self.get(key)
            offset = 0
            for docnum, weight, size in zip(ids, weights, lens):
                yield key[0], key[1], docnum, weight, bytes(blob[offset:offset + size])
                offset += size


class _FieldWriter(W3FieldWriter):
    def add_postings(self, schema, lengths, items):
        if not isinstance(items, _Grouped):
            return super().add_postings(schema, lengths, items)
        current = None
        for key in sorted(items.terms):
            fieldname, tbytes = key
            if fieldname != current:
                if current is not None:
                    self.finish_field()
                self.start_field(fieldname, schema[fieldname])
                current = fieldname
            self.start_term(tbytes)
            self._postwriter.add_many(*items.get(key))
            self.finish_term()
        if current is not None:
            self.finish_field()


def _writer(ix) -> SegmentWriter:
    writer = ix.writer(codec=_Codec())
    writer.pool = _Pool(writer._tempstorage, writer.newsegment)
    return writer


def _check(ix) -> None:
    """Refuse an index written in another format (an older version of the archiver)."""
    schema, segments = ix.schema, ix._segments()
    same = schema.names() == SCHEMA.names() and all(
        type(schema[name]) is type(SCHEMA[name]) for name in SCHEMA.names())
    if not same or any(getattr(seg.codec(), "format_version", None) != INDEX_FORMAT
                       for seg in segments):
        raise IndexFormatError(f"the search index in {ix.storage.folder} was written by another "
                               "version of the archiver: run `archiver reindex` to rebuild it")


# --- analysis ----------------------------------------------------------------------------------

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


@lru_cache(maxsize=200_000)
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


_ANALYSED_WORDS: dict[str, dict[str, str]] = {}   # per language: word -> 'term' or 'a|b' or ''


def analyse(text: str, lang: str) -> str:
    """Return text as the space-separated index terms of its language ('a|b': two terms at
    one position)."""
    known = _ANALYSED_WORDS.setdefault(lang, {})
    out = []
    for word in _WORD.findall(text.lower()):
        joined = known.get(word)
        if joined is None:
            if len(known) > 500_000:
                known.clear()
            joined = known[word] = "|".join(terms(word, lang))
        if joined:
            out.append(joined)
    return " ".join(out)


_EPOCH = datetime(1970, 1, 1)


def _micros(value: datetime) -> int:
    """Microseconds since 1970 (UTC) of a datetime (naive ones are UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def document(record: dict) -> dict:
    """Return the index document of a message record (as archiver.query builds them)."""
    language = record.get("language") or ""
    lang = language if language in STEMMED else ""
    date = record.get("date")
    subject = record.get("subject") or ""
    address = record.get("from_address") or ""
    organisation = record.get("organisation") or ""
    lists = ",".join(sorted(record.get("lists") or []))
    topics = ",".join(sorted(record.get("topics") or []))
    doc = {
        "msg_id": record["message_id"], "thread": record.get("thread_id") or "",
        # Own words are searched with the subject, twice: a thread's title finds its messages
        # and weighs more than a word in passing, with one field to search instead of two.
        "own": analyse(f"{subject}\n{subject}\n{record.get('own_text') or ''}", lang),
        "quoted": analyse(record.get("quoted_text") or "", lang),
        "subject": analyse(subject, lang),
        "author": analyse(f"{record.get('from_name', '')} {address} {address.replace('@', ' ')}", ""),
        "author_facet": address, "org": analyse(organisation, ""), "org_facet": organisation,
        "lists": lists, "lists_facet": lists, "topics": topics, "topics_facet": topics,
        "month": date[:7] if date else "", "lang": language, "lang_facet": language,
        "attachments": bool(record.get("attachments")),
    }
    if date:
        doc["date"] = _micros(datetime.fromisoformat(date.replace("Z", "+00:00")))
    return doc


# --- matching in numpy -------------------------------------------------------------------------

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


class _View:
    """What matching needs of one searcher, read once per searcher: the segments and where
    their document numbers start, which documents are live (a replaced message's old copy is
    not), each column's values as codes, each text field's lengths; postings are read per
    query (nothing of a query's result is kept)."""

    def __init__(self, searcher):
        self.searcher = searcher
        self.reader = reader = searcher.reader()
        self.schema = reader.schema
        self.leaves = list(reader.leaf_readers())
        self.size = reader.doc_count_all()
        self.live = numpy.ones(self.size, bool)
        for seg, offset in self.leaves:
            if seg.has_deletions():
                dead = numpy.fromiter(seg.deleted_docs_set, numpy.int64)
                self.live[offset + dead] = False
        self.all_live = bool(self.live.all())
        self.columns = {name: self._coded(name) for name in _CODED}
        self._members = {name: self._split(name) for name in FACETS.values()}
        self.dates = numpy.concatenate(
            [_numbers(seg.column_reader("date", translate=False), seg.doc_count_all(), NO_DATE)
             for seg, _ in self.leaves] or [numpy.zeros(0, numpy.int64)])
        self._lengths: dict[str, numpy.ndarray] = {}

    def _coded(self, name: str) -> tuple[numpy.ndarray, list[str]]:
        """Return each document's value of a column as a code, and the values of the codes."""
        known: dict[str, int] = {}
        parts = []
        for seg, _ in self.leaves:
            refs, values = _codes(seg.column_reader(name, translate=False), seg.doc_count_all())
            mapping = numpy.array([known.setdefault(v, len(known)) for v in values], numpy.int32)
            parts.append(mapping[refs])
        return numpy.concatenate(parts or [numpy.zeros(0, numpy.int32)]), list(known)

    def _split(self, name: str):
        """Return a facet's values (members of comma-joined sets, each once) and, per code,
        where its members start in `flat` and how many it has."""
        names: dict[str, int] = {}
        flat, counts = [], []
        for value in self.columns[name][1]:
            members = [v for v in (value.split(",") if name in MULTI else [value]) if v]
            flat += [names.setdefault(v, len(names)) for v in members]
            counts.append(len(members))
        counts = numpy.array(counts, numpy.int64)
        return list(names), numpy.cumsum(counts) - counts, counts, numpy.array(flat, numpy.int64)

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
        found = self._lengths.get(fieldname)
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
            found = self._lengths[fieldname] = _BYTE_LENGTHS[
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


# --- the index ---------------------------------------------------------------------------------

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

    def update(self, records: Iterable[dict]) -> int:
        """Add or replace the documents of records in one commit (Whoosh merges segments at each
        commit, so one per ingest is much cheaper than one per batch). Into an empty index, the
        documents are written as a rebuild writes them, beside it, and swapped in."""
        records = iter(records)
        first = next(records, None)
        if first is None:
            return 0
        records = chain([first], records)
        ix = self._open()
        if ix.is_empty():
            return self.rebuild(records)
        _check(ix)
        writer = _writer(ix)
        total = 0
        try:
            for record in records:
                writer.update_document(**document(record))
                total += 1
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
        return total

    def rebuild(self, records: Iterable[dict]) -> int:
        """Build a fresh index beside the old one and swap it in (readers keep the old files).
        A segment is written every SEGMENT_DOCS messages, so memory stays bounded."""
        fresh = self.path.with_name(self.path.name + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        ix = index.create_in(fresh, SCHEMA)
        records = iter(records)
        count = 0
        while True:
            writer = _writer(ix)
            added = 0
            try:
                for record in records:
                    writer.add_document(**document(record))
                    added += 1
                    if added == SEGMENT_DOCS:
                        break
            except BaseException:
                writer.cancel()
                raise
            if added:
                writer.commit(merge=False)
            else:
                writer.cancel()
            count += added
            if added < SEGMENT_DOCS:
                break
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
                self._cached = _View(searcher)
            return self._cached

    def _run(self, text: str, sort: str, by_thread: bool):
        """Match a query; return the view, the parsed query, the matches, and their order
        (one hit per thread when by_thread)."""
        if sort not in ("relevance", "newest", "oldest"):
            raise QueryError(f"unknown sort '{sort}': use relevance, newest or oldest")
        parsed = prepare(text)
        view = self._view()
        if view is None:
            return None
        q = _parse(parsed.text, view.reader) if parsed.text else query.Every()
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
               texts: Callable[[list[str]], dict[str, tuple[str, str, str]]] | None = None) -> Found:
        """Run a query; texts(ids) gives (own, quoted, language) per message for the snippets."""
        if not 1 <= per_page <= MAX_PAGE:
            raise QueryError(f"page size must be between 1 and {MAX_PAGE}")
        if page < 1:
            raise QueryError("pages are numbered from 1")
        ran = self._run(text, sort, by_thread)
        if ran is None:
            return Found(total=0, page=page, pages=1, per_page=per_page, hits=[],
                         facets={name: [] for name in FACETS})
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
        facets = {name: view.facet(FACETS[name], docs, by_thread) for name in FACETS}
        pages = max(1, -(-total // per_page))
        return Found(total=total, page=page, pages=pages, per_page=per_page, hits=hits, facets=facets)

    def match_ids(self, text: str, *, limit: int, sort: str = "relevance",
                  by_thread: bool = False) -> tuple[int, list[str]]:
        """Return how many messages (threads, by_thread) a query matches and the message ids
        of its first `limit` hits in the search's order: for exports and feeds, which want
        every hit at once rather than a page of them, and no facets or snippets."""
        ran = self._run(text, sort, by_thread)
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
        import hashlib
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
            writer.commit()
        else:
            writer.cancel()
        return count


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
