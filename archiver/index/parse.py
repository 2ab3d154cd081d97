"""Query parsing: what people type, parsed by Whoosh and mapped onto the index's analysed fields."""

from __future__ import annotations

from itertools import islice

from whoosh import qparser, query
from whoosh.analysis import LowercaseFilter, RegexTokenizer
from whoosh.fields import KEYWORD, TEXT, Schema

from ..errors import QueryError
from .analysis import STEMMED, fold, term

MAX_EXPANSION = 200                  # words a prefix* may stand for

_TYPED = RegexTokenizer(r"\w+") | LowercaseFilter()
_VIRTUAL = Schema(own=TEXT(analyzer=_TYPED), quoted=TEXT(analyzer=_TYPED),
                  subject=TEXT(analyzer=_TYPED), **{"from": TEXT(analyzer=_TYPED)},
                  org=TEXT(analyzer=_TYPED), topic=KEYWORD(lowercase=True),
                  list=KEYWORD(lowercase=True), lang=KEYWORD(lowercase=True))
_REAL = {"own": "own", "quoted": "quoted", "subject": "subject", "from": "author", "org": "org",
         "topic": "topics", "list": "lists", "lang": "lang"}
_ANALYSED = {"own", "quoted", "subject", "author", "org"}
_STEMMED_FIELDS = {"own", "quoted", "subject"}


def _typed(text: str) -> query.Query:
    """Parse a query onto the fields people type (own, quoted, subject, from, org, topic, list,
    lang): both search backends start from this tree, so they read one language alike."""
    parser = qparser.QueryParser("own", _VIRTUAL)
    parser.remove_plugin_class(qparser.WildcardPlugin)
    parser.remove_plugin_class(qparser.RangePlugin)
    parser.add_plugin(qparser.PrefixPlugin())
    try:
        return _with_forms(parser.parse(text))
    except Exception as exc:  # the parser raises assorted types on odd input
        raise QueryError(f"the query could not be read: {exc}") from exc


# Portuguese nouns in -ão/-ões and Spanish ones in -ión/-iones are stemmed apart by number
# and by accents: 'declaração' is 'declar' but 'declaracao' is 'declaraca', 'eleição' is
# 'eleica' and 'eleições' 'eleico', 'declaraciones' 'declar' and 'declaracion' 'declaracion'.
# A typed word of these families is looked up in each of its forms as well, with and without
# accents, singular and plural. (ending replaced, ending the word folded has, ending it is
# typed with, the endings of its forms)
_PT = ("ão", "ões", "ao", "oes")
_ES = ("ión", "iones", "ion")
_FAMILIES = (
    ("oes", "oes", "", _PT), ("ao", "ao", "", _PT), ("iones", "iones", "", _ES), ("ion", "cion", "", _ES),
    # Unaccented, -ion is English ('session', 'nation'): Spanish forms only for -ión as typed.
    ("ion", "ion", "ión", _ES),
)
_FORMED = {"own", "quoted", "subject"}   # the typed fields whose words are stemmed


def forms(word: str) -> list[str]:
    """Return a typed word (lower case) and, for a Portuguese or Spanish noun of the families
    above, its other forms ('eleicao' -> eleicao, eleição, eleições, eleicoes)."""
    lower = word.lower()
    plain = fold(lower)
    for replaced, ending, typed, endings in _FAMILIES:
        base = plain[:-len(replaced)]
        if plain.endswith(ending) and lower.endswith(typed) and len(base) >= 2:
            # Portuguese writes c before a and o as ç ('eleição'); folding took the cedilla off.
            soft = base[:-1] + "ç" if base.endswith("c") and endings is _PT else base
            return list(dict.fromkeys([lower] + [(soft if e[0] in "ãõ" else base) + e for e in endings]))
    return [lower]


def _with_forms(q: query.Query) -> query.Query:
    """A typed query with each word of the families above looked up in all its forms: a word
    becomes an OR of its forms, a phrase one phrase per form (the nth of each word's)."""
    if isinstance(q, query.Term) and q.fieldname in _FORMED:
        words = forms(q.text)
        return q if len(words) == 1 else query.Or([query.Term(q.fieldname, w, boost=q.boost) for w in words])
    if isinstance(q, query.Phrase) and q.fieldname in _FORMED:
        each = [forms(w) for w in q.words]
        if all(len(f) == 1 for f in each):
            return q
        shapes = dict.fromkeys(tuple(f[min(n, len(f) - 1)] for f in each) for n in range(max(map(len, each))))
        return query.Or([query.Phrase(q.fieldname, list(s), slop=q.slop, boost=q.boost) for s in shapes])
    return q.apply(_with_forms)


def _parse(text: str, reader) -> query.Query:
    typed = _typed(text)
    try:
        result = _to_real(typed, reader)
    except QueryError:
        raise
    except Exception as exc:  # odd trees raise assorted types
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
    # Names and organisations are indexed unstemmed (analyse(..., "")): a query word is looked
    # up as it is there, or from:rede would find 'Red' by the Portuguese stem of 'rede'.
    langs = (STEMMED + ("",) if name in _STEMMED_FIELDS else ("",)) if name in _ANALYSED else None
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
