"""A live HyperKitty (Mailman 3) archive: a list's months from its page, one mbox export per month."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from urllib.parse import quote, unquote, urljoin, urlsplit

from bs4 import BeautifulSoup

from ..ids import message_hash, normalise_message_id
from ..models import RawMessage
from .mbox import split_mbox
from .remote import RemoteMonth

# HyperKitty's URLs name a list by its posting address: .../list/<name>@<host>/
_LIST_PATH = re.compile(r"^(.*?/list/([^/@\s]+@[^/@\s]+))/")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


def list_address(url: str) -> str | None:
    """Return the list address a HyperKitty URL names ('bestbits@lists.example'), or None."""
    path = unquote(urlsplit(url).path)
    match = _LIST_PATH.match(path if path.endswith("/") else path + "/")
    return match.group(2) if match else None


def list_root(url: str) -> str:
    """Return the list's page URL (ending in '/list/<address>/') for any URL under it."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    match = _LIST_PATH.match(path if path.endswith("/") else path + "/")
    if not match:
        raise ValueError(f"{url} names no HyperKitty list")
    return f"{parts.scheme}://{parts.netloc}{quote(match.group(1), safe='/@')}/"


def months(body: bytes, url: str) -> list[RemoteMonth]:
    """Return the months a list page links (.../list/<address>/YYYY/M/), oldest first."""
    root = urlsplit(list_root(url)).path
    pattern = re.compile(re.escape(unquote(root)) + r"(\d{4})/(\d{1,2})/?$")
    found: set[tuple[int, int]] = set()
    for link in BeautifulSoup(body, "html.parser").find_all("a", href=True):
        match = pattern.match(unquote(urlsplit(urljoin(url, link["href"].strip())).path))
        if match and 1 <= int(match.group(2)) <= 12:
            found.add((int(match.group(1)), int(match.group(2))))
    return [RemoteMonth(y, m, f"{y:04d}-{m:02d}", (export_url(url, y, m),)) for y, m in sorted(found)]


def export_url(url: str, year: int, month: int) -> str:
    """Return the URL of a month's mbox export (HyperKitty's `end` is exclusive)."""
    root = list_root(url)
    first = RemoteMonth(year, month, "", ())
    end = first.end
    name = quote(f"{list_address(url)}-{year:04d}-{month:02d}", safe="@")
    return (f"{root}export/{name}.mbox.gz?start={year:04d}-{month:02d}-01"
            f"&end={end:%Y-%m-%d}")


def message_url(root: str, message_id: str) -> str:
    """Return a message's HyperKitty page: base32 of the SHA-1 of its Message-ID, as HyperKitty names it."""
    return f"{root}message/{message_hash(normalise_message_id(message_id) or message_id).upper()}/"


def messages(text: bytes, location: str, root: str) -> list[RawMessage]:
    """Return the messages of a downloaded export, each with its HyperKitty page."""
    out = []
    for raw in split_mbox(io.BytesIO(text), location, kind="hyperkitty"):
        head = raw.data.split(b"\n\n", 1)[0]
        match = _MESSAGE_ID.search(head)
        ident = b" ".join(match.group(1).split()).decode("utf-8", "replace") if match else ""
        out.append(replace(raw, archive_url=message_url(root, ident) if ident else None))
    return out
