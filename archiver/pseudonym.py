"""Pseudonymised exports: salted HMAC pseudonyms, masked bodies, opt-out lists (pure)."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from email.utils import parseaddr
from pathlib import Path
from typing import Iterable, Mapping

from .errors import ArchiverError

SALT_ENV = "ARCHIVE_PSEUDONYM_SALT"
MIN_SALT = 16       # characters: a short salt lets anyone with a list of addresses test guesses

# user@example.org, and pipermail's rewritten 'user at example.org'
_ADDRESS = re.compile(r"[\w.+-]+(?:@| at )[\w-]+(?:\.[\w-]+)+", re.ASCII)
# A run of digits with phone separators, bounded (no quadratic scan of a long digit table).
_PHONE = re.compile(r"(?<![\w+])(?:\+|\(\+?)?\d[\d ()./-]{5,24}\d(?!\w)")
_DATE = re.compile(r"\b(?:19|20)\d\d[-/.]\d\d?[-/.]\d\d?\b|\b\d\d?[-/.]\d\d?[-/.](?:19|20)?\d\d\b")
_PHONE_WORDS = ("tel", "phone", "fax", "mobile", "cell", "móvil", "celular", "portable", "whatsapp")
# Capitalised words seen in From names that are not names: never masked on their own.
_NOT_NAMES = frozenset("""The And For Info List Team Admin Office Secretariat Group Network
    Society Internet Forum Council Centre Center Foundation Institute Association Coalition Project
    Digital Rights Civil Global International National Mailman Mailing News Best Bits Caucus
    Governance Media Support Contact Director Coordinator Programme Program Policy Open""".split())


class Pseudonymiser:
    """Turn participants and message ids into stable pseudonyms: HMAC-SHA256 under a secret salt,
    so the same address gets the same pseudonym in every export made with the same salt."""

    def __init__(self, salt: str):
        if len(salt) < MIN_SALT:
            raise ArchiverError(f"the pseudonym salt must be at least {MIN_SALT} characters long")
        self._key = salt.encode("utf-8")

    @classmethod
    def from_env(cls, variable: str = SALT_ENV, environ: Mapping[str, str] | None = None) -> "Pseudonymiser":
        """Read the salt from an environment variable; refuse when it is unset or short."""
        salt = (os.environ if environ is None else environ).get(variable, "")
        if not salt:
            raise ArchiverError(f"--pseudonymise needs a secret salt in the environment variable "
                                f"{variable} (at least {MIN_SALT} characters; keep it to make the "
                                f"same pseudonyms again, never publish it)")
        return cls(salt)

    def _mac(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}:{value}".encode("utf-8", "surrogateescape"),
                        hashlib.sha256).hexdigest()[:16]

    def person(self, address: str | None) -> str:
        """Return the pseudonym of a participant's address ('p-' and 16 hex digits)."""
        return "p-" + self._mac("person", (address or "").strip().lower())

    def ident(self, value: str | None, kind: str = "m") -> str | None:
        """Return the pseudonym of a message id ('m-…') or thread id ('t-…'); None stays None."""
        return None if value is None else f"{kind}-" + self._mac(kind, value)

    def check(self) -> str:
        """Return a fingerprint of the salt: two manifests with the same one used the same salt."""
        return self._mac("salt-check", "bestbits-archive")

    def text(self, text: str | None, names: "Names | None" = None) -> str:
        """Mask a text: addresses become their pseudonyms, phone numbers '[phone]', and the
        given names their pseudonyms."""
        if not text:
            return text or ""
        masked = _ADDRESS.sub(lambda m: self.person(m.group(0).replace(" at ", "@")), text) \
            if "@" in text or " at " in text else text
        out = _PHONE.sub(lambda m: "[phone]" if _is_phone(m, masked) else m.group(0), masked)
        return names.sub(out) if names else out

    def record(self, record: dict, names: "Names | None" = None,
               organisations_named: bool = True) -> dict:
        """Return a record with its participant, ids and texts pseudonymised; what leads back to
        the public archive without the salt (archive URLs, sources, raw hash, permalink hash,
        signature, attachment names) is left out."""
        out = dict(record)
        out["from_address"] = self.person(record.get("from_address"))
        out["from_name"] = ""
        if not organisations_named:
            out["organisation"] = None
        for key in ("message_id", "parent_id", "in_reply_to"):
            out[key] = self.ident(record.get(key))
        out["references"] = [self.ident(r) for r in record.get("references") or []]
        out["thread_id"] = self.ident(record.get("thread_id"), "t")
        for key in ("subject", "subject_norm", "own_text", "quoted_text", "footer"):
            if key in record:
                out[key] = self.text(record.get(key), names)
        out.update(msg_hash=None, signature="", archive_url=None, raw_sha256=None)
        out["attachments"] = [{"content_type": a.get("content_type"), "size": a.get("size")}
                              for a in record.get("attachments") or []]
        out["sources"] = [{"list": s.get("list"), "kind": s.get("kind")}
                          for s in record.get("sources") or []]
        return out


def _is_phone(match: re.Match, text: str) -> bool:
    found = match.group(0)
    digits = sum(ch.isdigit() for ch in found)
    if _DATE.search(found) or digits > 15:
        return False
    before = text[max(0, match.start() - 16):match.start()].lower()
    if any(word in before for word in _PHONE_WORDS):
        return digits >= 6
    return digits >= 9 or (found[:1] in "+(" and digits >= 8)


class Names:
    """Participants' names and their pseudonyms, with one regex matching any of them as whole
    words, longest first."""

    def __init__(self, mapping: dict[str, str]):
        self.map = mapping
        key = tuple(sorted(mapping, key=lambda n: (-len(n), n)))
        self.pattern = _PATTERNS.get(key) if key else None
        if key and self.pattern is None:
            if len(_PATTERNS) > 4096:
                _PATTERNS.clear()
            self.pattern = _PATTERNS[key] = re.compile(
                r"(?<!\w)(?:" + "|".join(re.escape(n) for n in key) + r")(?!\w)")

    def __bool__(self) -> bool:
        return bool(self.map)

    def sub(self, text: str) -> str:
        return self.pattern.sub(lambda m: self.map[m.group(0)], text) if self.pattern else text


_PATTERNS: dict[tuple[str, ...], re.Pattern] = {}


def name_map(people: Iterable[tuple[str, str]], pseudonym) -> Names:
    """Map each participant's display name, and each of its parts of three letters or more
    starting with a capital, to their pseudonym; a part two people share maps to '[name]'."""
    full: dict[str, str] = {}
    parts: dict[str, str] = {}
    for address, name in people:
        name = re.sub(r"\(.*?\)|\[.*?\]|[\"']", " ", name or "").strip()
        if not name or "@" in name:
            continue
        alias = pseudonym(address)
        full[" ".join(name.split())] = alias
        for part in re.split(r"[\s,]+", name):
            if len(part) >= 3 and part[0].isupper() and part.isalpha() and part not in _NOT_NAMES:
                parts[part] = alias if parts.get(part, alias) == alias else "[name]"
    return Names({**parts, **full})


def load_opt_out(path: str | os.PathLike) -> frozenset[str]:
    """Read an opt-out list: one address a line ('Name <address>' too); blank lines and lines
    starting with '#' are skipped. Returns lower-cased addresses."""
    found: set[str] = set()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ArchiverError(f"cannot read the opt-out list {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        address = parseaddr(line)[1] if "<" in line else line
        if "@" not in address or any(ch.isspace() for ch in address):
            raise ArchiverError(f"{Path(path).name} line {number}: {line[:80]!r} is not an address")
        found.add(address.lower())
    return frozenset(found)
