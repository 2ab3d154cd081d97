"""Message -> its language, detected from the writer's own words (py3langid)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from .models import Message

# The languages the archive's stemmers know, plus those the dialogue is written in; limiting the
# model to them makes it faster and surer on short messages.
LANGUAGES = ("en", "fr", "es", "pt", "de", "it", "nl", "ru", "ar")
MIN_LETTERS = 12
# Matches where a text holds MIN_LETTERS letters: it stops at the twelfth instead of listing all.
_ENOUGH_LETTERS = re.compile(r"[\W\d_]*(?:[^\W\d_][\W\d_]*){%d}" % MIN_LETTERS)
_identifier = None


def detect_language(text: str) -> str:
    """Return an ISO 639-1 code, or '' when the text is too short to tell."""
    global _identifier
    # A few hundred characters decide the language; the model's cost grows with the length.
    sample = text[:600]
    if not _ENOUGH_LETTERS.match(sample):
        return ""
    if _identifier is None:
        _identifier = _load()   # on first use: a command that detects nothing never loads it
    return _identifier.classify(sample)[0]


def preload() -> None:
    """Load the model now, before worker processes are forked: they then share its 61 MB
    with this process (nothing writes to its arrays) instead of each loading a copy."""
    global _identifier
    if _identifier is None:
        _identifier = _load()


def _load():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    class Identifier(LanguageIdentifier):
        """py3langid's model with its byte walk remembered word by word: the walk is the model's
        main cost, and from a given state a given word always yields the same features."""

        def _raw_score(self, text):
            visits = _visits(self, text)
            if visits:
                return self._sparse_score(visits, self.nb_ptc)
            return super()._raw_score(text)   # no features: the library's own answer

    identifier = Identifier.from_model_file(MODEL_FILE)
    if not _walks_alike(identifier):
        # Another py3langid inside than this was written for: its own walk, slower but sure.
        identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    identifier.set_languages(list(LANGUAGES))
    # The model of every language is kept only to restore it by set_languages(None), which
    # the archiver never calls: 28 MB of each process's memory.
    identifier._full_model = (identifier.nb_ptc, identifier.nb_pc, identifier.nb_classes)  # noqa: SLF001
    return identifier


def _walks_alike(identifier) -> bool:
    """Return True when the remembered walk counts what the installed py3langid counts."""
    probe = "Ceci n'est pas une pipe: a probe, 123 ÄÖÜ ру́сский عربى".encode()
    try:
        from py3langid.langid import visit_counts

        want = visit_counts(*_tables(identifier), probe)
        got = _visits(identifier, probe)
    except (ImportError, AttributeError, TypeError, IndexError):
        return False
    return got == want and list(got or ()) == list(want or ())


def _tables(identifier):
    return identifier.tk_nextmove, identifier._rowbase, identifier.tk_output  # noqa: SLF001


_WORDS = re.compile(rb"[^ ]+ *| +")
_walked: dict[tuple[int, bytes], tuple[int, list[int]]] = {}


def _visits(identifier, text: bytes) -> Counter | None:
    """Return the features the model's byte automaton meets in text, counted in the order first
    met (as py3langid's visit_counts does: the scores sum in that order)."""
    nextmove, rowbase, output = _tables(identifier)
    state, found = 0, []
    for word in _WORDS.findall(text):
        known = _walked.get((state, word))
        if known is None:
            at, features = state, []
            for byte in word:
                at = nextmove[rowbase[at] + byte]
                if output[at] >= 0:
                    features.append(output[at])
            if len(_walked) >= 1 << 16:
                _walked.clear()   # a bound on a long-running worker's memory
            known = _walked[(state, word)] = (at, features)
        state = known[0]
        found.extend(known[1])
    return Counter(found) if found else None


def tag_language(message: Message) -> Message:
    """Fill a cleaned message's language from its own words (the subject when they are empty)."""
    return replace(message, language=detect_language(message.own_text or message.subject))
