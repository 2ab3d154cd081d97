"""Organisations from mail domains, read from a data file a moderator can edit."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from .errors import ArchiverError


class Organisations:
    """Map an address to its organisation's name (None for webmail and unknown senders)."""

    def __init__(self, domains: dict[str, str], webmail: set[str]):
        self.domains = {k.lower(): v for k, v in domains.items()}
        self.webmail = {w.lower() for w in webmail}

    def of(self, address: str) -> str | None:
        domain = address.rpartition("@")[2].lower()
        if not domain or domain in self.webmail:
            return None
        parts = domain.split(".")
        # lists.example.org and example.org are one organisation: try parent domains too.
        for i in range(len(parts) - 1):
            found = self.domains.get(".".join(parts[i:]))
            if found:
                return found
        return domain


@lru_cache(maxsize=8)
def load_organisations(path: str) -> Organisations:
    """Read the organisations file (TOML: webmail = [...], [domains] domain = "Name")."""
    file = Path(path)
    if not file.is_file():
        return Organisations({}, set())
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ArchiverError(f"{path}: not valid TOML ({exc})") from exc
    domains, webmail = data.get("domains", {}), data.get("webmail", [])
    if not isinstance(domains, dict) or not all(isinstance(v, str) for v in domains.values()):
        raise ArchiverError(f"{path}: [domains] must map domains to names")
    if not isinstance(webmail, list):
        raise ArchiverError(f"{path}: webmail must be a list of domains")
    return Organisations(domains, set(webmail))
