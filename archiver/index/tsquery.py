"""The query language in PostgreSQL: a parsed query as a WHERE clause of tsquery matches and filters."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import text as sql
from whoosh import query

from ..errors import QueryError
from ..schema import _escape_nul
from .analysis import fold

# Fields people type -> the search table's columns. Text columns are matched with tsqueries
# made by every configuration whose analysis a document may have had; names and
# organisations were analysed without stemming.
_TEXT = {"own": "own", "quoted": "quoted", "subject": "subject", "from": "author_v", "org": "org_v"}
_STEMMED_COLUMNS = {"own", "quoted", "subject"}
_KEYWORDS = {"topic": "topic_keys", "list": "list_keys"}
MAX_RANKED = 16                        # words weighed by their frequency; the rest only filter
_LEXEME = re.compile(r"'((?:[^']|'')*)'")


@dataclass
class Translation:
    """A query as SQL over the search table: its filter, what ranks it, and their parameters."""

    where: str = "TRUE"
    params: dict = field(default_factory=dict)
    matched: dict[str, list[str]] = field(default_factory=dict)   # column -> wanted spellings
    ranked: list[tuple[str, str]] = field(default_factory=list)   # (column, tsquery) to weigh

    def param(self, value) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    @property
    def asks_quoted(self) -> bool:
        return bool(self.matched.get("quoted"))

    def wanted(self, quoted: bool) -> str:
        """The tsquery of the words a reader looks for: in own words and subject, or in quoted text."""
        columns = ("quoted",) if quoted else ("own", "subject")
        return _any([q for c in columns for q in self.matched.get(c, [])])


def _any(tsqueries: list[str]) -> str:
    unique = list(dict.fromkeys(q for q in tsqueries if q))
    return unique[0] if len(unique) == 1 else " | ".join(f"( {q} )" for q in unique)


def translate(conn, typed: query.Query | None, configs: dict[str, tuple[str, str]]) -> Translation:
    """Translate a query parsed onto the typed fields (index.parse._typed) into SQL."""
    found = Translation()
    if typed is None:
        return found
    leaves = _leaves(typed)
    lexemes = _analyse(conn, leaves, configs)
    where = _clause(typed, found, lexemes, positive=True)
    if where is None:
        raise QueryError("the query has only very common words (such as 'the' or 'de'): add more")
    found.where = where
    # The spellings a relevance ranking weighs, each once (the rest of a long query only filters).
    found.ranked = list(dict.fromkeys((column, q) for column, qs in sorted(found.matched.items())
                                      for q in qs))[:MAX_RANKED]
    return found


def _leaves(typed: query.Query) -> list[query.Query]:
    found, stack = [], [typed]
    while stack:
        node = stack.pop()
        if isinstance(node, (query.Term, query.Phrase, query.Prefix)):
            found.append(node)
        else:
            stack.extend(node.children())
    return found


def _analyse(conn, leaves: list[query.Query], configs: dict[str, tuple[str, str]]) -> dict[tuple, str]:
    """Return the tsquery each language's analysis makes of each text leaf, in one round trip:
    {(leaf id, configuration): tsquery text ('' when the words are all stop words)}.
    configs: language -> (its plain configuration, its folding one), as documents were analysed."""
    asks: list[tuple[int, tuple[str, str], str, str]] = []
    for leaf in leaves:
        if leaf.fieldname not in _TEXT:
            continue
        if isinstance(leaf, query.Prefix):
            stem = fold(leaf.text.lower())
            if len(stem) < 2:
                raise QueryError(f"'{leaf.text}*' is too short: give at least two letters before *")
            asks.append((id(leaf), configs[""], stem, "w"))
            continue
        chosen = configs.values() if leaf.fieldname in _STEMMED_COLUMNS else [configs[""]]
        words = " ".join(leaf.words) if isinstance(leaf, query.Phrase) else leaf.text
        kind = "p" if isinstance(leaf, query.Phrase) else "w"
        asks += [(id(leaf), c, words, kind) for c in chosen]
    if not asks:
        return {}
    rows = conn.execute(sql(
        "SELECT x.c, x.i, archive_tsquery(CAST(x.p AS regconfig), CAST(x.c AS regconfig), x.t, "
        "x.k = 'p')::text FROM unnest(CAST(:ps AS text[]), CAST(:cs AS text[]), "
        "CAST(:ts AS text[]), CAST(:ks AS text[])) WITH ORDINALITY AS x(p, c, t, k, i)"),
        {"ps": [a[1][0] for a in asks], "cs": [a[1][1] for a in asks],
         "ts": [a[2].replace("\x00", " ") for a in asks], "ks": [a[3] for a in asks]}).all()
    return {(asks[i - 1][0], c): tsq for c, i, tsq in rows}


def _clause(node: query.Query, found: Translation, lexemes: dict, positive: bool) -> str | None:
    """The SQL of a query node; None for a part that can match nothing on its own (only stop
    words), which its parent leaves out as the Whoosh index's parser does."""
    if isinstance(node, (query.Term, query.Phrase, query.Prefix)):
        return _leaf(node, found, lexemes, positive)
    if isinstance(node, query.Every):
        return "TRUE"
    if node is query.NullQuery or isinstance(node, type(query.NullQuery)):
        return None
    if isinstance(node, query.Not):
        inner = _clause(node.query, found, lexemes, not positive)
        return None if inner is None else f"NOT ({inner})"
    if isinstance(node, (query.And, query.Or)):
        parts = [p for p in (_clause(c, found, lexemes, positive) for c in node.subqueries) if p]
        if not parts:
            return None
        joiner = " AND " if isinstance(node, query.And) else " OR "
        return parts[0] if len(parts) == 1 else "(" + joiner.join(parts) + ")"
    if isinstance(node, query.AndNot):
        first = _clause(node.a, found, lexemes, positive)
        second = _clause(node.b, found, lexemes, not positive)
        return first if first is None or second is None else f"({first} AND NOT ({second}))"
    if isinstance(node, query.AndMaybe):
        _clause(node.b, found, lexemes, positive)   # ranks, does not filter
        return _clause(node.a, found, lexemes, positive)
    if isinstance(node, query.Require):
        parts = [p for p in (_clause(node.a, found, lexemes, positive),
                             _clause(node.b, found, lexemes, positive)) if p]
        return " AND ".join(parts) if parts else None
    raise QueryError(f"the query uses a form the search cannot run ({type(node).__name__})")


def _leaf(node, found: Translation, lexemes: dict, positive: bool) -> str | None:
    name = node.fieldname
    if name in _TEXT:
        column = _TEXT[name]
        made = [lexemes.get((id(node), c), "") for c in _configs(lexemes, node)]
        if isinstance(node, query.Prefix):
            made = [_LEXEME.sub(lambda m: m.group(0) + ":*", q) for q in made]
        # Each spelling once (a stem of one language, a folded form; the configurations make
        # many alike): OR binds loosest in a tsquery, so its top-level parts are the spellings.
        spellings = list(dict.fromkeys(part for q in made if q
                                       for part in (q.split(" | ") if "(" not in q else [q])))
        if not spellings:
            return None
        if positive:
            # The Whoosh index scores each term on its own: a spelling few messages have
            # weighs more. Ranking does the same with these.
            found.matched.setdefault(column, []).extend(spellings)
        return f"{column} @@ CAST({found.param(_any(spellings))} AS tsquery)"
    words = [node.text] if not isinstance(node, query.Phrase) else node.words
    words = [_escape_nul(w.lower()) for w in words]   # stored escaped, as the store keeps them
    if isinstance(node, query.Prefix):
        stem = fold(node.text.lower())
        if len(stem) < 2:
            raise QueryError(f"'{node.text}*' is too short: give at least two letters before *")
        like = found.param(stem.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        if name == "lang":
            return f"lang LIKE {like}"
        return f"EXISTS (SELECT 1 FROM unnest({_KEYWORDS[name]}) AS k WHERE k LIKE {like})"
    # Keyword fields keep no positions: "a b" there means both values.
    if name == "lang":
        parts = [f"lang = {found.param(w)}" for w in words]
    elif name in _KEYWORDS:
        parts = [f"{_KEYWORDS[name]} @> CAST(ARRAY[{found.param(w)}] AS text[])" for w in words]
    else:
        raise QueryError(f"unknown field '{name}:'")
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def _configs(lexemes: dict, node) -> list[str]:
    return [c for (leaf, c) in lexemes if leaf == id(node)]
