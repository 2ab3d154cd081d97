"""What the index holds: text fields of analysed words with packed positions, and columns of codes."""

from __future__ import annotations

import pickle
from array import array
from itertools import accumulate

import numpy
from whoosh import columns, formats
from whoosh.analysis import Token, Tokenizer
from whoosh.fields import BOOLEAN, COLUMN, ID, KEYWORD, TEXT, Schema

from .packed import _HIGH, _VARINT, _unvarints, _varints

FACETS = {"topic": "topics_facet", "author": "author_facet", "org": "org_facet",
          "list": "lists_facet", "month": "month", "lang": "lang_facet"}
MULTI = {"topics_facet", "lists_facet"}   # comma-joined sets: counted per member

# The index's format: raised whenever the schema or the postings' encoding changes. An index
# of another format is refused with a message to run `archiver reindex`, never half-read.
INDEX_FORMAT = 2
BLOCK = 512             # postings per block: fewer, larger blocks to read whole
NO_DATE = -(2 ** 63)    # the date column's value for a message without a date


# --- text fields: positions as varints ---------------------------------------------------------

def _spots(value: str) -> dict[str, list[int]]:
    """Each term of analyse()'s output, with its positions: terms at spaces, 'a|b' two terms
    at one position."""
    found: dict[str, list[int]] = {}
    for pos, group in enumerate(value.split()):
        for word in group.split("|") if "|" in group else (group,):
            spots = found.get(word)
            if spots is None:
                found[word] = [pos]
            else:
                spots.append(pos)
    return found


class _Positions(formats.Positions):
    """Positions as varint deltas (Whoosh pickles a list per posting: larger, slower to read).
    Reads words already analysed by analyse(): split at spaces, 'a|b' is two terms at one
    position."""

    def word_values(self, value, analyzer, **kwargs):
        boost = self.field_boost
        for word, spots in _spots(value).items():
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
# Whoosh pickles the schema into the index's table of contents, naming each class by module:
# these names stay `archiver.index.<class>` (re-exported there) whatever file defines them,
# so moving code between the package's modules never makes an index unreadable.
for _cls in (_Positions, _Prepared, _Text, _Codes):
    _cls.__module__ = "archiver.index"

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
