"""Which kind of live archive a URL is (pipermail index, HyperKitty list page), its list and months."""

from __future__ import annotations

from urllib.parse import urlsplit

from . import hyperkitty, remote_pipermail
from .remote import RemoteMonth


def recognise(url: str, body: bytes) -> str | None:
    """Return 'hyperkitty' or 'pipermail' for an archive's front page, or None."""
    if hyperkitty.list_address(url) and (b"hyperkitty" in body.lower()
                                         or hyperkitty.months(body, url)):
        return "hyperkitty"
    if remote_pipermail.months(body, url):
        return "pipermail"
    return None


def list_name(kind: str, url: str) -> str:
    """Return the list's short name as its archive URL says it ('bestbits')."""
    if kind == "hyperkitty":
        address = hyperkitty.list_address(url)
        if address:
            return address.split("@", 1)[0]
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if parts and "." in parts[-1]:
        parts.pop()   # .../pipermail/bestbits/index.html
    return parts[-1] if parts else urlsplit(url).hostname or "list"


def months(kind: str, url: str, body: bytes) -> list[RemoteMonth]:
    """Return the archive's months, oldest first, with their download URLs."""
    reader = hyperkitty if kind == "hyperkitty" else remote_pipermail
    return reader.months(body, url)
