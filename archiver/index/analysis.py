"""Text analysis: folding, stop words and stemming per language, and a message's index document."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone
from functools import lru_cache

from whoosh.lang import stemmer_for_language, stopwords_for_language

STEMMED = ("en", "fr", "es", "pt")   # languages whose stemmer and stop words are applied
_WORD = re.compile(r"\w+", re.UNICODE)


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
