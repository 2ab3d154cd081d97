"""Addresses shown without being given away: 'jane@example.org' becomes 'j…@example.org'."""

from __future__ import annotations

import re

# An address as written (user@example.org) or as pipermail obfuscates it (user at example.org).
# Parts are bounded so a long run of letters (a base64 blob in a body) costs linear time; a
# "domain" followed by another " at " is the local part of the next one ("list at jo.do at x.org"),
# and "meet at 10.30" is no address (a domain ends in letters).
_ADDRESS = re.compile(r"(?<![\w.%+-])([\w.%+-]{1,64})(?:@| at )((?:[\w-]{1,63}\.){1,8}[A-Za-z]{2,24})\b"
                      r"(?!@| at )")


def mask(address: str | None) -> str:
    """One address, masked: its first letter and its domain."""
    if not address or "@" not in address:
        return address or ""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}…@{domain}"


def mask_text(text: str | None) -> str:
    """Mask every address in a text (bodies quote and sign with them)."""
    return _ADDRESS.sub(lambda m: mask(f"{m.group(1)}@{m.group(2)}"), text or "")
