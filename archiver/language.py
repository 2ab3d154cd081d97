"""Message -> its language, detected from the writer's own words (py3langid)."""

from __future__ import annotations

import re
from dataclasses import replace

from .models import Message

# The languages the archive's stemmers know, plus those the dialogue is written in; limiting the
# model to them makes it faster and surer on short messages.
LANGUAGES = ("en", "fr", "es", "pt", "de", "it", "nl", "ru", "ar")
MIN_LETTERS = 12
_LETTERS = re.compile(r"[^\W\d_]")
_identifier = None


def detect_language(text: str) -> str:
    """Return an ISO 639-1 code, or '' when the text is too short to tell."""
    global _identifier
    # A few hundred characters decide the language; the model's cost grows with the length.
    sample = text[:600]
    if len(_LETTERS.findall(sample)) < MIN_LETTERS:
        return ""
    if _identifier is None:
        # Loaded on first use: the model takes a moment and each worker process loads its own.
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        _identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
        _identifier.set_languages(list(LANGUAGES))
    return _identifier.classify(sample)[0]


def tag_language(message: Message) -> Message:
    """Fill a cleaned message's language from its own words (the subject when they are empty)."""
    return replace(message, language=detect_language(message.own_text or message.subject))
