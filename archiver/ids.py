"""Message-ID normalising, permalink hashes and References parsing."""

from __future__ import annotations

import base64
import hashlib
import re

_ANGLE = re.compile(r"<([^<>\s]+)>")
_ANGLE_LOOSE = re.compile(r"<([^<>]+)>")
# A bare id token: something@something, as written by clients that drop the brackets.
_BARE = re.compile(r"[^\s<>\"(),;]+@[^\s<>\"(),;]+")
SYNTHETIC_DOMAIN = "synthetic.archiver.invalid"
# A Message-ID cannot be folded, so none is longer than a header line (RFC 5322: 998).
MAX_ID = 998
# A run of id characters longer than any id: reading ids out of it would cost the square of
# its length, so every reader here blanks such runs first.
_LONG_TOKEN = re.compile(r'(?<![^\s<>"(),;])[^\s<>"(),;]{%d,}' % (MAX_ID + 1))


def _no_long_tokens(value: str) -> str:
    return _LONG_TOKEN.sub(" ", value)


def normalise_message_id(value: str | None) -> str | None:
    """Return the id inside the first <...> (or the bare token), characters unchanged; None if empty."""
    if not value:
        return None
    text = _no_long_tokens(value).strip()
    match = _ANGLE.search(text) or _ANGLE_LOOSE.search(text)
    if match:
        ident = match.group(1).strip()
    else:
        bare = _BARE.search(text)
        ident = bare.group(0) if bare else text.split()[0].strip("<>") if text.split() else ""
    # Folding whitespace inside an id is transport damage, never part of the id (RFC 5322 3.6.4).
    ident = "".join(ident.split())
    return ident or None


def synthetic_message_id(raw: bytes) -> str:
    """Return a stable id for a message that has none: a hash of its raw bytes."""
    return f"{hashlib.sha256(raw).hexdigest()[:32]}@{SYNTHETIC_DOMAIN}"


def parse_references(value: str | None) -> list[str]:
    """Return the ids of a References header, oldest first, duplicates dropped."""
    if not value:
        return []
    value = _no_long_tokens(value)
    found = _ANGLE.findall(value) or _BARE.findall(value)
    seen: set[str] = set()
    out = []
    for ident in found:
        ident = ident.strip()
        if ident and ident not in seen:
            seen.add(ident)
            out.append(ident)
    return out


def parse_in_reply_to(value: str | None) -> str | None:
    """Return the parent id from In-Reply-To, tolerating the old 'Your message of ...' form."""
    if not value:
        return None
    value = _no_long_tokens(value)
    bracketed = _ANGLE.findall(value)
    if bracketed:
        # RFC 822 allowed phrases around the id; the last bracketed token is the id in practice.
        return bracketed[-1]
    bare = _BARE.findall(value)
    # 'Your message of Tue, 02 Oct 2012' carries no id at all: better none than a wrong one.
    return bare[-1] if len(bare) == 1 and not value.lower().startswith("your message") else None


def message_hash(message_id: str) -> str:
    """Return the permalink hash of a Message-ID: base32 of its SHA-1, as HyperKitty does."""
    digest = hashlib.sha1(message_id.encode("utf-8", "surrogateescape")).digest()
    return base64.b32encode(digest).decode("ascii").lower()


def thread_hash(root_id: str) -> str:
    """Return a thread's id: the permalink hash of its root's Message-ID."""
    return message_hash(root_id)


def person_key(address: str) -> str:
    """Return a participant's URL key: 16 characters of base32 SHA-1 of the lower-cased address,
    so pages link people without printing their addresses."""
    return message_hash(address.strip().lower())[:16]
