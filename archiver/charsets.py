"""Bytes -> text with a fallback chain for wrong or missing charset labels."""

from __future__ import annotations

import codecs

# Mail labelled latin-1 or ASCII is very often cp1252 in fact (curly quotes, the euro sign);
# cp1252 decodes every latin-1 text the same way except C1 controls, which mail never means.
_WIDEN = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252",
          "us-ascii": "cp1252", "ascii": "cp1252", "iso8859-1": "cp1252", "l1": "cp1252"}
# Encodings that are 7-bit or wide: strict UTF-8 could "succeed" on them and be wrong.
_LABEL_FIRST = ("iso-2022", "utf-7", "utf-16", "utf-32", "hz-gb")


def canonical(label: str | None) -> str | None:
    """Return a Python codec name for a MIME charset label, or None if unknown."""
    if not label:
        return None
    label = label.strip().strip('"').lower()
    label = _WIDEN.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode(data: bytes, declared: str | None = None) -> tuple[str, str, str | None]:
    """Decode bytes: strict UTF-8, then the declared label, then detection, then cp1252 with
    replacement. Return (text, charset used, degraded reason or None)."""
    label = canonical(declared)
    if label and label.startswith(_LABEL_FIRST):
        try:
            return data.decode(label), label, None
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("utf-8"), "utf-8", None
    except UnicodeDecodeError:
        pass
    if label:
        try:
            return data.decode(label), label, None
        except (UnicodeDecodeError, LookupError):
            pass
    guess = _detect(data)
    if guess:
        try:
            return data.decode(guess), guess, "charset-guessed"
        except (UnicodeDecodeError, LookupError):
            pass
    return data.decode("cp1252", "replace"), "cp1252", "charset-replaced"


def _detect(data: bytes) -> str | None:
    # Imported late: detection is the last resort and costs a few milliseconds per message.
    from charset_normalizer import from_bytes

    best = from_bytes(data[:65536]).best()
    return canonical(best.encoding) if best is not None else None
