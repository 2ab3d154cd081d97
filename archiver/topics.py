"""Agenda-topic tagging: a moderator's taxonomy file, message scores, thread topics, evaluation."""

from __future__ import annotations

import os
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from .errors import ArchiverError

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_LANG = re.compile(r"^[a-z]{2,3}$")
_THREAD_ID = re.compile(r"^[a-z2-7]{32}$")   # archiver.ids.thread_hash: base32 of a SHA-1
_WORD = re.compile(r"\w+")
# A list tag such as "[governance]" names a list, not a topic; reply prefixes match no term.
_LIST_TAG = re.compile(r"\[[^\]\n]{1,40}\]")
TAGGER_DEFAULTS = {"threshold": 3.0, "relative": 0.4, "subject_weight": 1.0, "repeat_factor": 0.5}


@dataclass(frozen=True)
class Topic:
    """One agenda item: where it sits in the programme and the words that signal it."""

    slug: str
    label: str
    day: int
    session: int
    session_title: str
    bullets: tuple[str, ...]
    terms: tuple[tuple[str, str, float], ...]   # (language, term as written, weight)

    @property
    def languages(self) -> set[str]:
        return {lang for lang, _, _ in self.terms}


@dataclass(frozen=True)
class Taxonomy:
    """The topics and the tagger's settings; `index` maps a term's first token to its patterns."""

    topics: tuple[Topic, ...]
    threshold: float = TAGGER_DEFAULTS["threshold"]
    relative: float = TAGGER_DEFAULTS["relative"]
    subject_weight: float = TAGGER_DEFAULTS["subject_weight"]
    repeat_factor: float = TAGGER_DEFAULTS["repeat_factor"]
    index: dict = field(default_factory=dict, compare=False, repr=False)
    # A message token -> the patterns that may start at it, filled as words are met.
    lookup: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self):
        # A Taxonomy built in code (a test, a future models.py) matches like a loaded one.
        if not self.index:
            object.__setattr__(self, "index", _build_index(self.topics))

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(topic.slug for topic in self.topics)


# --- text folding ----------------------------------------------------------------------------
def fold(text: str) -> str:
    """Return text case- and accent-folded ("Coopération" -> "cooperation", "إعلان" -> "اعلان")."""
    if text.isascii():
        return text.lower()   # what casefold and NFKD make of ASCII, at a fraction of the cost
    return unicodedata.normalize("NFKD", text.casefold()).translate(_NOT_COMBINING)


class _Combining(dict):
    """str.translate table that drops combining marks, filled as characters are met."""

    def __missing__(self, code: int) -> int | None:
        value = None if unicodedata.combining(chr(code)) else code
        if len(self) < 1 << 16:   # bounded: hostile text may hold every character there is
            self[code] = value
        return value


_NOT_COMBINING = _Combining()


def _stem(token: str) -> str:
    """Return a light stem so that singular and plural meet: ITRs/ITR, principes/principe,
    delegações/delegação, nacionais/nacional, nationaux/national, policies/policy."""
    if token[:1].isascii():
        if len(token) > 4:
            for end, repl in (("coes", "cao"), ("oes", "ao"), ("ies", "y"), ("aux", "al")):
                if token.endswith(end):
                    return token[: -len(end)] + repl
            if len(token) > 5 and token.endswith("ais"):
                return token[:-3] + "al"
        if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]
        if len(token) > 4 and token.endswith("e"):
            token = token[:-1]
        return token
    # Arabic attaches the article and some prepositions to the word: الوفد is وفد. Other
    # scripts (Cyrillic) are left whole; their terms take endings with '*'.
    for prefix in ("وال", "بال", "فال", "كال", "لل", "ال"):
        if token.startswith(prefix) and len(token) - len(prefix) >= 3:
            return token[len(prefix):]
    return token


def tokens(text: str) -> list[str]:
    """Return the folded, stemmed words of a text."""
    return list(map(_cached_stem, _WORD.findall(fold(text))))


# Mail repeats its words: most tokens were stemmed before.
_cached_stem = lru_cache(maxsize=1 << 16)(_stem)


def _pattern(term: str) -> tuple[str, ...]:
    """Return a term's token pattern; a word ending in '*' matches any word it begins."""
    out = []
    for word in term.split():
        star = word.endswith("*")
        parts = _WORD.findall(fold(word))
        if not parts:
            continue
        out.extend(_stem(p) for p in parts[:-1])
        out.append(parts[-1] + "*" if star else _stem(parts[-1]))
    return tuple(out)


# --- loading ---------------------------------------------------------------------------------
def cached_taxonomy(path) -> Taxonomy:
    """The taxonomy file, read again only when it changes (pages ask for labels on every view)."""
    try:
        stat = os.stat(path)   # asked once a message by the pipeline: no Path object
    except OSError:
        return load_taxonomy(path)   # says clearly what is wrong with the path
    return _cached(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _cached(path: str, _mtime: int, _size: int) -> Taxonomy:
    return load_taxonomy(path)


def load_taxonomy(path) -> Taxonomy:
    """Read and check a taxonomy TOML file (see fixtures/topics.toml)."""
    data = _read_toml(path, "taxonomy")
    where = str(path)
    # A misspelt table ("[taggr]", "[[topic]]") would otherwise be ignored without a word.
    _no_unknown_keys(data, {"tagger", "topics"}, where)
    tagger = data.get("tagger", {})
    if not isinstance(tagger, dict):
        raise ArchiverError(f"{where}: [tagger] must be a table")
    _no_unknown_keys(tagger, set(TAGGER_DEFAULTS), f"{where}: [tagger]")
    settings = {}
    for name, default in TAGGER_DEFAULTS.items():
        value = tagger.get(name, default)
        if not _is_number(value) or value < 0 or (name == "relative" and value > 1):
            raise ArchiverError(f"{where}: [tagger] {name} must be a number"
                                f"{' between 0 and 1' if name == 'relative' else ' >= 0'}, got {value!r}")
        settings[name] = float(value)
    raw_topics = data.get("topics")
    if not isinstance(raw_topics, list) or not raw_topics:
        raise ArchiverError(f"{where}: no [[topics]] defined")
    topics = [_topic(raw, i, where) for i, raw in enumerate(raw_topics, 1)]
    seen: set[str] = set()
    for topic in topics:
        if topic.slug in seen:
            raise ArchiverError(f"{where}: duplicate topic slug {topic.slug!r}")
        seen.add(topic.slug)
    return Taxonomy(tuple(topics), **settings)


def _topic(raw, number: int, where: str) -> Topic:
    if not isinstance(raw, dict):
        raise ArchiverError(f"{where}: topic #{number} must be a table")
    slug = raw.get("slug")
    if not isinstance(slug, str) or not _SLUG.match(slug):
        raise ArchiverError(f"{where}: topic #{number} needs a slug of lowercase words joined by "
                            f"hyphens, got {slug!r}")
    name = f"{where}: topic {slug!r}"
    _no_unknown_keys(raw, {"slug", "label", "day", "session", "bullets", "terms"}, name)
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip():
        raise ArchiverError(f"{name} needs a label")
    day = raw.get("day")
    if not isinstance(day, int) or isinstance(day, bool) or day < 1:
        raise ArchiverError(f"{name}: day must be a positive whole number, got {day!r}")
    session = raw.get("session")
    if (not isinstance(session, dict) or set(session) != {"number", "title"}
            or not isinstance(session["number"], int) or isinstance(session["number"], bool)
            or not isinstance(session["title"], str) or not session["title"].strip()):
        raise ArchiverError(f"{name}: session must be {{ number = N, title = \"...\" }}")
    bullets = raw.get("bullets", [])
    if not isinstance(bullets, list) or not all(isinstance(b, str) and b.strip() for b in bullets):
        raise ArchiverError(f"{name}: bullets must be a list of non-empty strings")
    terms = raw.get("terms")
    if not isinstance(terms, dict) or not terms:
        raise ArchiverError(f"{name} has no [topics.terms.<language>] tables")
    found = []
    for lang, table in terms.items():
        if not _LANG.match(lang) or not isinstance(table, dict):
            raise ArchiverError(f"{name}: terms.{lang} must be a table named by a language code")
        for term, weight in table.items():
            if not _pattern(term):
                raise ArchiverError(f"{name}: term {term!r} ({lang}) has no words")
            if not _is_number(weight) or weight <= 0:
                raise ArchiverError(f"{name}: term {term!r} ({lang}) needs a positive number as its "
                                    f"weight, got {weight!r}")
            found.append((lang, term, float(weight)))
    return Topic(slug, label.strip(), day, session["number"], session["title"].strip(),
                 tuple(bullets), tuple(found))


def _build_index(topics) -> dict:
    """Map a first token to [(pattern, {slug: weight})]; a pattern starting with a prefix word
    ("виз*") is filed under '*' and the prefix's first letter."""
    merged: dict[tuple[str, ...], dict[str, float]] = {}
    for topic in topics:
        for _, term, weight in topic.terms:
            per = merged.setdefault(_pattern(term), {})
            # The same word listed under two languages (an acronym, "Marco Civil") counts once.
            per[topic.slug] = max(weight, per.get(topic.slug, 0.0))
    index: dict[str, list] = {}
    for pattern, weights in merged.items():
        key = "*" + pattern[0][0] if pattern[0].endswith("*") else pattern[0]
        index.setdefault(key, []).append((pattern, weights))
    for entries in index.values():
        entries.sort(key=lambda entry: -len(entry[0]))   # longest first: phrases win
    return index


def load_overrides(path, taxonomy: Taxonomy) -> dict[str, dict[str, list[str]]]:
    """Read moderator overrides: {thread_id: {"pin": [slugs], "remove": [slugs]}}."""
    data = _read_toml(path, "overrides")
    where = str(path)
    threads = data.get("threads", {})
    if set(data) - {"threads"} or not isinstance(threads, dict):
        raise ArchiverError(f"{where}: overrides live in [threads.<thread id>] tables only")
    known = set(taxonomy.slugs)
    out = {}
    for thread_id, entry in threads.items():
        name = f"{where}: thread {thread_id!r}"
        if not _THREAD_ID.match(thread_id):
            raise ArchiverError(f"{name}: not a thread id (32 characters a-z, 2-7, from thread_hash)")
        if not isinstance(entry, dict) or set(entry) - {"pin", "remove", "note"}:
            raise ArchiverError(f"{name}: only pin, remove and note are allowed")
        lists = {}
        for key in ("pin", "remove"):
            value = entry.get(key, [])
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise ArchiverError(f"{name}: {key} must be a list of topic slugs")
            unknown = [s for s in value if s not in known]
            if unknown:
                raise ArchiverError(f"{name}: {key} names unknown topics {unknown}")
            lists[key] = list(dict.fromkeys(value))
        both = set(lists["pin"]) & set(lists["remove"])
        if both:
            raise ArchiverError(f"{name}: {sorted(both)} both pinned and removed")
        out[thread_id] = lists
    return out


def _read_toml(path, what: str) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ArchiverError(f"cannot read {what} file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ArchiverError(f"{path}: not valid TOML: {exc}") from exc


def _no_unknown_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ArchiverError(f"{where}: unknown keys {unknown} (expected {sorted(allowed)})")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- scoring ---------------------------------------------------------------------------------
def _matches(words: list[str], taxonomy: Taxonomy):
    """Yield the {slug: weight} of each term found, leftmost-longest, so a phrase's words are
    not counted again as single words ("statement to WCIT" is not also "WCIT")."""
    lookup = taxonomy.lookup
    i, end = 0, len(words)
    while i < end:
        word = words[i]
        candidates = lookup.get(word)
        if candidates is None:
            candidates = _candidates(word, taxonomy)
        for pattern, weights, rest, plain in candidates:
            # The first word is known to fit; a plain rest is compared as one list.
            if not rest or (words[i + 1:i + len(pattern)] == rest if plain
                            else _fits(rest, words, i + 1)):
                yield pattern, weights
                i += len(pattern)
                break
        else:
            i += 1


def _candidates(word: str, taxonomy: Taxonomy) -> tuple:
    """Return the patterns that may start at a word, longest first (a stable sort: of equally
    long ones the first filed wins), as (pattern, weights, the rest of it, whether the rest has
    no prefix words), and remember them."""
    index, lookup = taxonomy.index, taxonomy.lookup
    fitting = [entry for entry in index.get(word, []) + index.get("*" + word[0], [])
               if _fits(entry[0][:1], [word], 0)]
    found = tuple((pattern, weights, list(pattern[1:]), not any(w.endswith("*") for w in pattern[1:]))
                  for pattern, weights in sorted(fitting, key=lambda entry: -len(entry[0])))
    if len(lookup) >= 1 << 16:
        lookup.clear()   # a bound on memory in a long-running worker; refilled as words recur
    lookup[word] = found
    return found


def _fits(pattern: tuple[str, ...], words: list[str], at: int) -> bool:
    if at + len(pattern) > len(words):
        return False
    for want, word in zip(pattern, words[at:at + len(pattern)]):
        if not (word.startswith(want[:-1]) if want.endswith("*") else word == want):
            return False
    return True


def score_message(own_text: str, subject: str, taxonomy: Taxonomy) -> dict[str, float]:
    """Score every topic a message's own words and subject support (never pass quoted text)."""
    scores: dict[str, float] = {}
    for text, factor in ((own_text or "", 1.0), (_LIST_TAG.sub(" ", subject or ""), taxonomy.subject_weight)):
        counts: dict[tuple, int] = {}
        for pattern, weights in _matches(tokens(text), taxonomy):
            counts[pattern] = counts.get(pattern, 0) + 1
            # Repeating a term adds less each time: a summary repeats, a topic broadens.
            step = factor * (taxonomy.repeat_factor ** (counts[pattern] - 1))
            for slug, weight in weights.items():
                scores[slug] = scores.get(slug, 0.0) + weight * step
    return {slug: round(score, 3) for slug, score in scores.items() if score > 0}


def tag_message(own_text: str, subject: str, taxonomy: Taxonomy) -> dict[str, float]:
    """Return the topics whose score passes the absolute threshold and the share of the best."""
    scores = score_message(own_text, subject, taxonomy)
    if not scores:
        return {}
    floor = max(taxonomy.threshold, taxonomy.relative * max(scores.values()))
    return {slug: score for slug, score in scores.items() if score >= floor}


def thread_topics(message_tags: list[dict[str, float]], overrides: dict | None = None) -> dict[str, float]:
    """Return a thread's topics weighted by score-weighted share of its messages, overrides applied."""
    weights: dict[str, float] = {}
    for tags in message_tags:
        if tags:
            best = max(tags.values())
            for slug, score in tags.items():
                weights[slug] = weights.get(slug, 0.0) + score / best
    count = len(message_tags) or 1
    out = {slug: round(total / count, 3) for slug, total in weights.items()}
    for slug in (overrides or {}).get("remove", []):
        out.pop(slug, None)
    for slug in (overrides or {}).get("pin", []):
        out[slug] = 1.0
    return dict(sorted(out.items(), key=lambda item: (-item[1], item[0])))


# --- evaluation ------------------------------------------------------------------------------
def evaluate(truth_records, predicted: dict[str, set[str]]) -> dict:
    """Compare predictions with truth records ({message_id, topics}); per topic and micro-averaged."""
    counts: dict[str, list[int]] = {}          # slug -> [tp, fp, fn]
    messages = 0
    for record in truth_records:
        messages += 1
        truth = set(record.get("topics") or ())
        guess = set(predicted.get(record["message_id"], ()))
        for slug in truth | guess:
            row = counts.setdefault(slug, [0, 0, 0])
            row[0 if slug in truth and slug in guess else 1 if slug in guess else 2] += 1
    topics = {slug: _prf(*row) for slug, row in sorted(counts.items())}
    overall = _prf(*(sum(row[i] for row in counts.values()) for i in range(3)))
    return {"messages": messages, "topics": topics, "micro": overall}


def _prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "support": tp + fn, "tp": tp, "fp": fp, "fn": fn}


def format_evaluation(result: dict) -> str:
    """Return an evaluation as a plain-text table, one topic a line, then the micro average."""
    lines = [f"{'topic':<22} {'prec':>6} {'recall':>6} {'f1':>6} {'support':>7}"]
    rows = list(result["topics"].items()) + [("micro (overall)", result["micro"])]
    for slug, row in rows:
        lines.append(f"{slug:<22} {row['precision']:>6.3f} {row['recall']:>6.3f} {row['f1']:>6.3f} "
                     f"{row['support']:>7}")
    return "\n".join(lines)
