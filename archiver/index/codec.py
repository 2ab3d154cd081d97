"""Whoosh's codec with packed postings, gathered by term and written a block at a time."""

from __future__ import annotations

import pickle
import zlib
from array import array
from itertools import accumulate

from whoosh.codec.whoosh3 import (
    WHOOSH3_HEADER_MAGIC,
    W3Codec,
    W3FieldWriter,
    W3LeafMatcher,
    W3PostingsWriter,
)
from whoosh.util.numeric import length_to_byte
from whoosh.writing import PostingPool, SegmentWriter

from ..errors import ArchiverError
from .packed import _unvarints, _varints
from .schema import BLOCK, INDEX_FORMAT, SCHEMA
from .schema import _Positions as _PositionsFormat, _spots


class IndexFormatError(ArchiverError):
    """The index on disk was written in another format: it must be rebuilt."""


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
        else:
            _Pool.extend(self.terms, self.unsorted, key, entry, docnum, weight, value)

    @staticmethod
    def extend(terms: dict, unsorted: set, key: tuple, entry, docnum: int, weight: float, value) -> None:
        """Add a posting to a term seen before (entry, its postings so far)."""
        if isinstance(entry, tuple):
            first, w, v = entry
            entry = terms[key] = [array("I", [first]), array("f", [w]), bytearray(v),
                                  array("I", [len(v)])]
        if entry[0][-1] >= docnum:
            unsorted.add(key)
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


class _SegmentWriter(SegmentWriter):
    """Whoosh's segment writer, adding the words of the analysed text fields (the most
    postings by far) straight into the pool: one loop a field instead of a generator, a
    tuple and a call for each word through the field, its format and the pool (a quarter of
    a build's time). What it writes is what Whoosh's own add_document writes (a test compares
    every posting, length, stored value and column)."""

    def add_document(self, **fields):
        self._check_state()
        schema, docnum, perdocwriter = self.schema, self.docnum, self.perdocwriter
        if any(name.startswith("_") for name in fields):   # boosts: Whoosh's own way
            return super().add_document(**fields)
        names = sorted(fields)
        self._check_fields(schema, names)
        terms, unsorted, add_post = self.pool.terms, self.pool.unsorted, self.pool.add
        perdocwriter.start_doc(docnum)
        try:
            for name in names:
                value = fields[name]
                if value is None:
                    continue
                field = schema[name]
                length = 0
                if field.indexed and isinstance(field.format, _PositionsFormat):
                    boost = field.format.field_boost
                    encode = field.format.encode
                    for word, spots in _spots(value).items():
                        length += len(spots)
                        key = (name, word.encode("utf-8"))
                        data = encode(spots)
                        entry = terms.get(key)
                        if entry is None:
                            terms[key] = (docnum, len(spots) * boost, data)
                        else:
                            _Pool.extend(terms, unsorted, key, entry, docnum, len(spots) * boost, data)
                    if not field.scorable:
                        length = 0
                elif field.indexed:
                    scorable = field.scorable
                    for tbytes, freq, weight, vbytes in field.index(value):
                        if scorable:
                            length += freq
                        add_post((name, tbytes, docnum, weight, vbytes))
                perdocwriter.add_field(name, field, value if field.stored else None, length)
                column = field.column_type
                if column:
                    perdocwriter.add_column_value(name, column, field.to_column_value(value))
        except Exception:
            perdocwriter.cancel_doc()
            raise
        perdocwriter.finish_doc()
        self._added = True
        self.docnum += 1


def _writer(ix, plain: bool = False) -> SegmentWriter:
    """A writer of segments in this codec; plain: with Whoosh's own add_document (tests)."""
    writer = (SegmentWriter if plain else _SegmentWriter)(ix, codec=_Codec())
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


# Whoosh pickles the codec with each segment: its name stays `archiver.index._Codec` (see
# schema.py) whatever file defines it.
for _cls in (_Codec, _PostingsWriter, _Matcher, _FieldWriter):
    _cls.__module__ = "archiver.index"
