"""Bytes -> text with a fallback chain for wrong or missing charset labels."""

from __future__ import annotations

import codecs
from collections import Counter
import re
import unicodedata

# Mail labelled latin-1 or ASCII is very often cp1252 in fact (curly quotes, the euro sign);
# cp1252 decodes every latin-1 text the same way except C1 controls, which mail never means.
_WIDEN = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252",
          "us-ascii": "cp1252", "ascii": "cp1252", "iso8859-1": "cp1252", "l1": "cp1252"}
# Encodings that are 7-bit or wide: strict UTF-8 could "succeed" on them and be wrong.
# (Compared with Python's codec names, as canonical() returns them.)
_LABEL_FIRST = ("iso2022", "utf-7", "utf-16", "utf-32", "hz")
# Python codecs that a label may name but that are not character sets of mail: escape codecs
# read backslashes as code (and warn on bad escapes), the others are for host names or are
# meant to fail; binary-to-binary codecs (base64, zlib) are refused by their text-encoding flag.
_NOT_CHARSETS = frozenset(("unicode-escape", "raw-unicode-escape", "punycode", "idna", "undefined"))


def canonical(label: str | None) -> str | None:
    """Return a Python codec name for a MIME charset label, or None if unknown."""
    if not label:
        return None
    label = label.strip().strip('"').lower()
    label = _WIDEN.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):  # ValueError: a NUL or a lone surrogate in the label
        return None
    if not info._is_text_encoding or info.name in _NOT_CHARSETS:  # noqa: SLF001 - no public flag
        return None
    return info.name


def decode(data: bytes, declared: str | None = None) -> tuple[str, str, str | None]:
    """Decode bytes: strict UTF-8, then the declared label, then detection, then cp1252 with
    replacement. Return (text, charset used, degraded reason or None)."""
    label = canonical(declared)
    if label and label.startswith(_LABEL_FIRST):
        try:
            return data.decode(label), label, None
        except (UnicodeError, LookupError):
            pass
    try:
        return data.decode("utf-8"), "utf-8", None
    except UnicodeDecodeError:
        pass
    if label:
        try:
            return data.decode(label), label, None
        except (UnicodeError, LookupError):
            pass
    guess = "cp1252" if _looks_western(data) else _single_byte(data) or _detect(data)
    if guess:
        try:
            return data.decode(guess), guess, "charset-guessed"
        except (UnicodeError, LookupError):
            pass
    return data.decode("cp1252", "replace"), "cp1252", "charset-replaced"


_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_HIGH = bytes(range(0x80, 0x100))
# Deleting these from bytes leaves ASCII letters and 8-bit bytes: what counts as letters here.
_NOT_LETTERS = bytes(b for b in range(0x80) if not (65 <= b <= 90 or 97 <= b <= 122))
_HIGH_RUN = re.compile(rb"[\x80-\xff]{3,}")


def _looks_western(data: bytes) -> bool:
    """Return True for text whose few 8-bit bytes sit among ASCII letters, as in French, Spanish
    or Portuguese: detectors guess poorly on such short texts, and cp1252 is what they are.
    Cyrillic and Arabic single-byte texts are mostly 8-bit bytes and fail this test."""
    high = len(data) - len(data.translate(None, _HIGH))
    letters = len(data.translate(None, _NOT_LETTERS))
    if not high or high > 0.3 * letters:
        return False
    # Accents sit alone inside Latin words; Cyrillic or Arabic words are runs of 8-bit bytes,
    # even in a message that is mostly English quotes and footer.
    if sum(len(run) for run in _HIGH_RUN.findall(data)) > high / 2:
        return False
    # Bytes that cp1252 leaves undefined never occur in Western text.
    return not any(b in data for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D))


# Single-byte code pages of the dialogue's non-Latin mail (Russian and Arabic) and their
# neighbours. Detectors score short texts in these at zero coherence and often pick a CJK
# multi-byte page instead, so a simple test of script and letter case decides between them.
_SINGLE_BYTE = ("koi8_r", "cp1251", "cp1256", "iso8859_5", "iso8859_6", "cp1253", "cp1255")


def _single_byte(data: bytes) -> str | None:
    """Return the single-byte page under which the 8-bit text reads as one script in natural case."""
    best, best_score = None, 1.3
    for codec in _SINGLE_BYTE:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        score = _plausibility(text)
        if score > best_score:
            best, best_score = codecs.lookup(codec).name, score
    return best


def _plausibility(text: str) -> float:
    """Score 0-1.5: the share of 8-bit letters in the dominant script, plus half the share of
    cased letters that are lower case (prose is mostly lower case; a wrong Cyrillic page inverts it)."""
    counts = Counter(_NON_ASCII.findall(text))
    total = sum(counts.values())
    scripts: Counter = Counter()
    lower = cased = 0
    for ch, n in counts.items():
        if not ch.isalpha():
            continue
        scripts[unicodedata.name(ch, "?").split(" ")[0]] += n
        if ch.lower() != ch.upper():
            cased += n
            lower += n if ch.islower() else 0
    if not total or not scripts:
        return 0.0
    return max(scripts.values()) / total + 0.5 * (lower / cased if cased else 1.0)


def _detect(data: bytes) -> str | None:
    # Imported late: detection is the last resort and costs a few milliseconds per message.
    from charset_normalizer import from_bytes

    best = from_bytes(data[:65536]).best()
    return canonical(best.encoding) if best is not None else None
