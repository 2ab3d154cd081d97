"""The Whoosh index: schema, incremental updates, rebuild, and search (all Whoosh use is here)."""

# Whoosh keeps the index's files: the term dictionary, the postings, the per-document columns,
# the segments and their atomic replacement. Two things are the archive's own:
#
# - How postings are written (codec: `_Codec`): block data is packed bytes (varints, not
#   pickled tuples of Python numbers) and postings are gathered term by term as documents are
#   added (`_Pool`), so a segment is written a block at a time instead of a posting at a time.
# - How queries are matched (match: `_View`, `_match`): Whoosh parses the query, and the
#   archive reads each query term's postings whole into numpy arrays and matches, scores
#   (BM25F, as Whoosh scores), filters, sorts and counts facets there. Whoosh's own matchers
#   step through every posting in Python, which cost 50 to 200 ms a query at 100,000 messages.

from .analysis import STEMMED, analyse, document, fold, term, terms
from .codec import IndexFormatError
from .codec import _Codec, _FieldWriter, _Matcher, _PostingsWriter  # noqa: F401  (pickled)
from .match import _match, _View
from .packed import _np_varints, _unvarints, _varints
from .parse import MAX_EXPANSION, _parse
from .schema import FACETS, INDEX_FORMAT, MULTI, NO_DATE, SCHEMA
from .schema import _Codes, _Positions, _Prepared, _Text  # noqa: F401  (named in pickled schemas)
from .build import SEGMENT_DOCS
from .searchindex import MAX_PAGE, Found, Hit, SearchIndex
from .snippets import snippet
from .backends import open_index

__all__ = ["FACETS", "INDEX_FORMAT", "MAX_EXPANSION", "MAX_PAGE", "MULTI", "NO_DATE", "SCHEMA",
           "SEGMENT_DOCS", "STEMMED", "Found", "Hit", "IndexFormatError", "SearchIndex", "_View",
           "open_index",
           "_match", "_np_varints", "_parse", "_unvarints", "_varints", "analyse", "document",
           "fold", "snippet", "term", "terms"]
