"""A live pipermail archive: months from its index page, article URLs from date.html, scrubbed parts."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Callable
from urllib.parse import unquote, urljoin, urlsplit

from bs4 import BeautifulSoup

from ..ids import normalise_message_id
from ..models import RawMessage
from .http import Client, FetchError
from .mbox import split_mbox
from .pipermail import _ARCHIVE_URL, _MONTH_FILE, MONTHS
from .remote import RemoteMonth

_MONTH_DIR = re.compile(r"^(\d{4})-(" + "|".join(MONTHS) + r")$")
_ARTICLE = re.compile(r"^(\d{6})\.html$")
_STUB_LINE = re.compile(r"^(?:-{5,} ?next part ?-{5,}|An? (?:HTML|non-text) attachment was scrubbed\.\.\."
                        r"|(?:Name|Type|Size|Desc|Description|URL|Url): .*)$")
# A Mailman list footer's lines (as parse.py reads them): not text of the message's own.
_FOOTERISH = re.compile(r"^_{5,}\s*$|mailing list|/listinfo/| at lists\.|@lists\.", re.I)
_ALIGN_WINDOW = 50   # articles looked ahead for a message's subject when the counts differ


def months(body: bytes, base: str) -> list[RemoteMonth]:
    """Return the months an index page links, oldest first, with their text URLs preferred first.

    Links may be relative or absolute, to .txt or .txt.gz, with any link text; links to other
    hosts are not this archive's. The running month's plain .txt comes first: pipermail appends
    each message to it at once and makes the .txt.gz from it only nightly, so it is never older.
    """
    host = urlsplit(base).hostname
    texts: dict[tuple[int, int], dict[str, str]] = {}
    pages: dict[tuple[int, int], str] = {}
    names: dict[tuple[int, int], str] = {}
    for link in BeautifulSoup(body, "html.parser").find_all("a", href=True):
        url = urljoin(base, link["href"].strip())
        parts = urlsplit(url)
        if parts.hostname != host:
            continue
        segments = [unquote(s) for s in parts.path.split("/")]
        text = _MONTH_FILE.match(segments[-1])
        folder = _MONTH_DIR.match(segments[-2]) if len(segments) > 1 else None
        if text:
            key = (int(text.group(1)), MONTHS.index(text.group(2)) + 1)
            texts.setdefault(key, {})[".txt.gz" if text.group(3) else ".txt"] = url
            names[key] = f"{text.group(1)}-{text.group(2)}"
        elif folder:
            key = (int(folder.group(1)), MONTHS.index(folder.group(2)) + 1)
            pages[key] = urljoin(url, "date.html")
            names[key] = segments[-2]
    if not names:
        return []
    newest = max(names)
    found = []
    for key in sorted(names):
        name, links = names[key], texts.get(key, {})
        packed = links.get(".txt.gz")
        # The .txt always exists beside the .txt.gz (the index links only one of them).
        plain = links.get(".txt") or urljoin(packed or base, f"{name}.txt")
        if key == newest or not packed:
            urls = (plain, packed) if packed else (plain,)
        else:
            urls = (packed, plain)   # a settled month: the smaller download, the .txt if it is gone
        page = pages.get(key) or urljoin(urls[0], f"{name}/date.html")
        found.append(RemoteMonth(key[0], key[1], name, urls, page))
    return found


def articles(body: bytes, page_url: str) -> list[tuple[int, str, str]]:
    """Return (number, URL, subject) of each article a month's date.html lists, by number."""
    found: dict[int, tuple[int, str, str]] = {}
    for link in BeautifulSoup(body, "html.parser").find_all("a", href=True):
        match = _ARTICLE.match(link["href"].strip())
        if match:
            number = int(match.group(1))
            found.setdefault(number, (number, urljoin(page_url, match.group(0)),
                                      link.get_text(" ", strip=True)))
    return [found[n] for n in sorted(found)]


def messages(client: Client, month: RemoteMonth, text: bytes, location: str, base: str,
             is_known: Callable[[bytes], bool]) -> list[RawMessage]:
    """Return a downloaded month's messages with their article URLs and, where a message's text
    is only a scrubbed-attachment stub (and it is not stored yet), that attachment's bytes.
    Raise FetchError when the month's date.html or an attachment cannot be had."""
    raws = list(split_mbox(io.BytesIO(text), location, kind="pipermail"))
    listed: list[tuple[int, str, str]] = []
    if month.page and raws:
        page = client.get(month.page)
        listed = articles(page.body, page.url)
    first: dict[str, str] = {}
    out = []
    for raw, url in zip(raws, align(raws, listed)):
        ident = normalise_message_id(_headers(raw.data).get("message-id")) or ""
        if ident and url:
            # A message archived twice keeps its first article, as a local mirror's reading does.
            url = first.setdefault(ident, url)
        scrubbed = {}
        if stub_only(raw.data) and not is_known(raw.data):
            scrubbed = _scrubbed(client, raw.data, base)
        out.append(replace(raw, archive_url=url, scrubbed=scrubbed))
    return out


def align(raws: list[RawMessage], listed: list[tuple[int, str, str]]) -> list[str | None]:
    """Pair a month's messages with its articles: pipermail numbers articles in the order it
    appends messages to the month's text, so equal counts pair in order; otherwise (a message
    removed, pages lagging the text) each message takes the next article with its subject."""
    if len(raws) == len(listed):
        return [url for _, url, _ in listed]
    urls: list[str | None] = []
    start = 0
    for raw in raws:
        key = _subject_key(_headers(raw.data).get("subject") or "")
        for index in range(start, min(start + _ALIGN_WINDOW, len(listed))):
            if _subject_key(listed[index][2]) == key:
                urls.append(listed[index][1])
                start = index + 1
                break
        else:
            urls.append(None)
    return urls


def stub_only(data: bytes) -> bool:
    """Return True when a message's body holds nothing but scrubbed-attachment stubs and a footer."""
    if b"attachment was scrubbed" not in data:
        return False
    data = data.replace(b"\r\n", b"\n")
    body = data.split(b"\n\n", 1)[1] if b"\n\n" in data else b""
    return not any(line.strip() and not _STUB_LINE.match(line.strip()) and not _FOOTERISH.search(line)
                   for line in body.decode("latin-1").splitlines())


def _scrubbed(client: Client, data: bytes, base: str) -> dict[str, bytes]:
    """Download the HTML parts a message's stubs point to, from this archive (not the host the
    stub names: a mirror or a moved archive keeps the original URLs in its texts)."""
    found: dict[str, bytes] = {}
    for match in _ARCHIVE_URL.finditer(data.decode("latin-1")):
        if not match.group(1).lower().endswith((".htm", ".html")):
            continue
        try:
            found[match.group(0)] = client.get(urljoin(base, match.group(1)), allow_login=False).body
        except FetchError as exc:
            if exc.status not in (404, 410):
                raise
            # A part that is gone leaves the message degraded, as a mirror without it does.
    return found


def _headers(data: bytes):
    head = data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return BytesHeaderParser(policy=compat32).parsebytes(head + b"\n\n")


def _subject_key(subject: str) -> str:
    """Return a subject as letters and digits only, RFC 2047 words decoded, for comparison."""
    try:
        subject = str(make_header(decode_header(subject)))
    except (ValueError, LookupError, UnicodeError):
        pass
    return "".join(ch for ch in subject.casefold() if ch.isalnum())
