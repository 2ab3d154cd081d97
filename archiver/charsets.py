"""Bytes -> text with a fallback chain for wrong or missing charset labels."""

from __future__ import annotations

import codecs

# Mail labelled latin-1 or ASCII is very often cp1252 in fact (curly quotes, the euro sign);
# cp1252 decodes every latin-1 text the same way except C1 controls, which mail never means.
_WIDEN = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252",
          "us-ascii": "cp1252", "ascii": "cp1252", "iso8859-1": "cp1252", "l1": "cp1252"}
# Encodings that are 7-bit or wide: strict UTF-8 could "succeed" on them and be wrong.
# (Compared with Python's codec names, as canonical() returns them.)
_LABEL_FIRST = ("iso2022", "utf-7", "utf-16", "utf-32", "hz")


def canonical(label: str | None) -> str | None:
    """Return a Python codec name for a MIME charset label, or None if unknown."""
    if not label:
        return None
    label = label.strip().strip('"').lower()
    label = _WIDEN.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):  # ValueError: a NUL or a lone surrogate in the label
        return None


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
    guess = "cp1252" if _looks_western(data) else _detect(data)
    if guess:
        try:
            return data.decode(guess), guess, "charset-guessed"
        except (UnicodeError, LookupError):
            pass
    return data.decode("cp1252", "replace"), "cp1252", "charset-replaced"


def _looks_western(data: bytes) -> bool:
    """Return True for text whose few 8-bit bytes sit among ASCII letters, as in French, Spanish
    or Portuguese: detectors guess poorly on such short texts, and cp1252 is what they are.
    Cyrillic and Arabic single-byte texts are mostly 8-bit bytes and fail this test."""
    high = sum(1 for b in data if b >= 0x80)
    letters = sum(1 for b in data if 65 <= b <= 90 or 97 <= b <= 122) + high
    if not high or high > 0.3 * letters:
        return False
    # Bytes that cp1252 leaves undefined never occur in Western text.
    return not any(b in data for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D))


def _detect(data: bytes) -> str | None:
    # Imported late: detection is the last resort and costs a few milliseconds per message.
    from charset_normalizer import from_bytes

    best = from_bytes(data[:65536]).best()
    return canonical(best.encoding) if best is not None else None
