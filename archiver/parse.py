"""Raw bytes -> Message: headers, dates, addresses and a bounded, non-recursive MIME walk."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from email.errors import MessageError
from email.header import decode_header
from email.message import Message as EmailMessage
from email.feedparser import BytesFeedParser
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_tz

from . import charsets
from .errors import ParseError
from .htmltext import flatten, html_to_text
from .ids import normalise_message_id, parse_in_reply_to, parse_references, synthetic_message_id
from .models import Attachment, Message, RawMessage

MAX_PARTS = 1000
MAX_BYTES = 50 * 1024 * 1024
# Characters of a header read as text (subjects, names, dates, ids): the stdlib decodes encoded
# words and addresses in quadratic time, and no real subject or name comes near this.
MAX_HEADER = 16 * 1024
# Characters of a Content-Type or Content-Disposition read for parameters (quadratic in the
# stdlib too); a boundary is at most 70 characters, a file name rarely a few hundred.
MAX_PARAMS = 16 * 1024
# Characters of References read, from the end: the nearest ancestors come last.
MAX_REFERENCES = 64 * 1024
# Characters of body text kept; the raw bytes keep the rest.
MAX_TEXT = 10 * 1024 * 1024
# Bytes fed to the MIME parser at a time, between checks of how many parts it has made.
PARSE_BLOCK = 64 * 1024
# Parenthesised comments nest; the stdlib's address parser recurses once per level.
MAX_COMMENT_DEPTH = 32
# Pipermail writes "user at domain (Full Name)".
_PIPERMAIL_FROM = re.compile(r"^\s*([^\s@()<>]+) at ([^\s@()<>]+)\s*(?:\((.*)\))?\s*$", re.S)
_ESCAPED = re.compile("[\udc80-\udcff]")   # raw 8-bit header bytes, as compat32 keeps them
_AT_IN_BRACKETS = re.compile(r"<\s*([^\s<>@]+) at ([^\s<>@]+)\s*>")
_STUB = re.compile(
    r"(?:^-{5,} next part -{5,}\n)?^An? (HTML|non-text) attachment was scrubbed\.\.\.\n"
    r"(?:(?:Name|Type|Size|Desc|Description): .*\n)*"
    r"(?:URL|Url): <?(\S+?)>?[ \t]*$\n?", re.M)
# Lines of a Mailman list footer: they do not count as text of the message's own.
_FOOTERISH = re.compile(r"^_{5,}\s*$|mailing list|/listinfo/| at lists\.|@lists\.", re.I)
_DATE_NOISE = re.compile(r"\([^)]*\)|\b(?:at|um|à|a las)\b", re.I)
_ASCTIME = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun),? +(\w{3}) +(\d{1,2}) +(\d{1,2}:\d{2}(?::\d{2})?)"
                      r"(?: +[A-Za-z]{1,5}| +[+-]\d{4})? +(\d{4})")


class _Part(EmailMessage):
    """A compat32 message whose MIME parameters are read from a bounded prefix of their header:
    the stdlib splits parameters in quadratic time, and the parser itself asks for the boundary
    of every multipart."""

    def _get_params_preserve(self, failobj, header):
        value = self.get(header)
        if value is not None and len(str(value)) > MAX_PARAMS:
            short = EmailMessage()
            short[header] = str(value)[:MAX_PARAMS]
            return short._get_params_preserve(failobj, header)  # noqa: SLF001 - the one hook
        return super()._get_params_preserve(failobj, header)


def _parse_mime(data: bytes, max_parts: int, degraded: list[str]) -> EmailMessage:
    """Parse a message, fed to the stdlib's parser in blocks; once it has made more parts than
    the walk will read, the rest is not fed: a 50 MB message of tiny parts would otherwise
    become millions of objects (the raw bytes keep every part)."""
    made = 0

    def factory(policy=compat32) -> _Part:
        nonlocal made
        made += 1
        return _Part(policy)

    parser = BytesFeedParser(factory, policy=compat32)
    for start in range(0, len(data), PARSE_BLOCK):
        parser.feed(data[start:start + PARSE_BLOCK])
        if made > max_parts + 1:   # +1: the parser makes one to try the factory
            degraded.append("mime-parts-truncated")
            break
    return parser.close()


def parse_message(raw: RawMessage, max_parts: int = MAX_PARTS, max_bytes: int = MAX_BYTES) -> Message:
    """Parse one raw message; raise ParseError only when the bytes are not mail at all."""
    data = raw.data
    # A byte-order mark before the first header is editor damage; the raw bytes keep it.
    parse_data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        raise ParseError("empty message")
    degraded: list[str] = []
    if len(data) > max_bytes:
        degraded.append("too-large-body-dropped")
        msg = BytesHeaderParser(_Part, policy=compat32).parsebytes(parse_data[: 1024 * 1024])
        msg.set_payload("")
    else:
        try:
            msg = _parse_mime(parse_data, max_parts, degraded)
        except RecursionError:
            degraded.append("mime-too-deep")
            msg = BytesHeaderParser(_Part, policy=compat32).parsebytes(parse_data)
    if not msg.keys():
        raise ParseError("no headers")
    if msg.defects:
        degraded.append("mime-defects")
    sha = hashlib.sha256(data).hexdigest()

    ident = normalise_message_id(_header(msg, "message-id", degraded))
    synthetic = ident is None
    if synthetic:
        ident = synthetic_message_id(data)
        degraded.append("no-message-id")
    name, address = parse_from(_header(msg, "from", degraded) or "")
    if not address:
        degraded.append("no-from-address")
    date, offset = parse_date(_header(msg, "date", degraded), raw.envelope, degraded)
    body, content_type, charset, attachments = walk_body(msg, max_parts, degraded)
    body, stub_attachments = replace_stubs(body, raw.scrubbed, degraded)
    return Message(
        message_id=ident, synthetic_id=synthetic,
        subject=_header(msg, "subject", degraded) or "",
        from_name=name, from_address=address, date=date, date_offset=offset,
        in_reply_to=parse_in_reply_to(_in_reply_to(msg, degraded)),
        references=tuple(parse_references(_references(msg, degraded))),
        body=body, content_type=content_type, charset=charset,
        attachments=tuple(attachments) + tuple(stub_attachments),
        degraded=tuple(dict.fromkeys(degraded)), raw_sha256=sha,
    )


def decode_header_value(value: str | None) -> tuple[str, bool]:
    """Decode an RFC 2047 header value; return (text, degraded)."""
    if value is None:
        return "", False
    value = str(value)
    bad = False
    if _has_escapes(value):
        # compat32 keeps raw 8-bit header bytes as surrogates: decode them like a body.
        text, _, reason = charsets.decode(value.encode("ascii", "surrogateescape"))
        value, bad = text, reason is not None
    if "=?" not in value:
        return " ".join(value.split()), bad
    try:
        pieces = decode_header(value)
    except (ValueError, LookupError, AssertionError, MessageError):
        # MessageError: HeaderParseError on a broken base64 word ("=??b?/?="), which is no
        # ValueError and would otherwise escape the stage.
        return " ".join(value.split()), True
    out = []
    for chunk, label in pieces:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        text, _, reason = charsets.decode(chunk, label)
        bad = bad or reason is not None
        out.append(text)
    return " ".join("".join(out).split()), bad


def _raw_value(msg: EmailMessage, name: str) -> str | None:
    """Return a header's value as stored, 8-bit bytes kept as surrogate escapes: compat32's get()
    would wrap such a value in a Header whose text has already lost those bytes."""
    for key, value in msg.raw_items():
        if key.lower() == name:
            return value if isinstance(value, str) else str(value)
    return None


def _header(msg: EmailMessage, name: str, degraded: list[str]) -> str | None:
    try:
        raw = _raw_value(msg, name)
    except (ValueError, LookupError, TypeError):
        degraded.append(f"bad-header-{name}")
        return None
    if raw is None:
        return None
    if len(raw) > MAX_HEADER:
        degraded.append(f"long-header-{name}")
        raw = raw[:MAX_HEADER]
    text, bad = decode_header_value(raw)
    if bad:
        degraded.append(f"bad-header-{name}")
    return text


def _plain(msg: EmailMessage, name: str) -> str | None:
    """Return a header as str (no RFC 2047 decoding), 8-bit bytes decoded like a body."""
    value = _raw_value(msg, name)
    if value is not None and _has_escapes(value):
        value = charsets.decode(value.encode("ascii", "surrogateescape"))[0]
    return value


def _in_reply_to(msg: EmailMessage, degraded: list[str]) -> str | None:
    value = _plain(msg, "in-reply-to")
    if value is not None and len(value) > MAX_HEADER:
        degraded.append("long-header-in-reply-to")
        value = value[:MAX_HEADER]
    return value


def _references(msg: EmailMessage, degraded: list[str]) -> str | None:
    value = _plain(msg, "references")
    if value is not None and len(value) > MAX_REFERENCES:
        degraded.append("long-header-references")
        value = value[-MAX_REFERENCES:]
        # The cut may fall inside an id: start at the first whole one.
        value = value[value.find("<"):] if "<" in value else value
    return value


def _has_escapes(value: str) -> bool:
    return _ESCAPED.search(value) is not None


def parse_from(value: str) -> tuple[str, str]:
    """Return (name, address) of a From header: RFC 5322 forms, pipermail's
    'user at domain (Name)' and 'Name <user at domain>', and LISTSERV's 'Name user@domain'."""
    value = " ".join(value.split())
    match = _PIPERMAIL_FROM.match(value)
    if match:
        name, _ = decode_header_value((match.group(3) or "").strip())
        return name, f"{match.group(1)}@{match.group(2)}".lower()
    value = _AT_IN_BRACKETS.sub(r"<\1@\2>", value)
    # The stdlib's address parser recurses into nested comments: deep ones are read as words.
    pairs = getaddresses([value]) if _comment_depth(value) <= MAX_COMMENT_DEPTH else []
    name, address = pairs[0] if pairs else ("", "")
    address = address.strip()
    if "@" not in address or " " in address or address.lower() not in value.lower():
        # getaddresses glues bare words together; the last token with an @ is the address.
        tokens = value.replace('"', " ").split()
        marked = [i for i, token in enumerate(tokens) if "@" in token]
        if marked:
            address = tokens[marked[-1]].strip("<>()[],;")
            name = " ".join(tokens[:marked[-1]]).strip("<>()[],; ")
            if name.lower() == address.lower():
                name = ""   # "x@y x@y": the address twice, no name
        else:
            # An address without a domain is a name in the wrong place more often than an address.
            name, address = name or address, ""
    name, _ = decode_header_value(name.strip().strip('"').strip())
    return name, address.lower()


def _comment_depth(value: str) -> int:
    """Return how deeply parentheses nest in a value (unbalanced ones count as they open)."""
    depth = deepest = 0
    for char in value:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")" and depth:
            depth -= 1
    return deepest


def parse_date(value: str | None, envelope: str | None, degraded: list[str]) -> tuple[datetime | None, int | None]:
    """Return (UTC datetime, original offset in minutes) from the Date header or, failing that,
    the From_ line; each fallback is recorded in degraded."""
    parsed = _parse_rfc(value) or _parse_rfc(_DATE_NOISE.sub(" ", value or ""))
    if parsed:
        return parsed
    if envelope:
        match = _ASCTIME.search(envelope)
        if match:
            wd, mon, day, clock, year = match.groups()
            parsed = _parse_rfc(f"{wd}, {day} {mon} {year} {clock} +0000")
            if parsed:
                degraded.append("date-from-envelope")
                return parsed[0], None
    degraded.append("no-date")
    return None, None


def _parse_rfc(value: str | None) -> tuple[datetime, int] | None:
    if not value or not value.strip():
        return None
    try:
        parts = parsedate_tz(value)
        if parts is None:
            return None
        offset = parts[9] or 0
        if abs(offset) > 14 * 3600:
            offset = 0
        local = datetime(*parts[:6])
        stamp = (local - timedelta(seconds=offset)).replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, TypeError, IndexError):
        return None
    if not 1970 <= stamp.year <= 2100:
        return None
    return stamp, offset // 60


def walk_body(msg: EmailMessage, max_parts: int, degraded: list[str]):
    """Walk the MIME tree with an explicit stack; return (body, content type, charset, attachments).

    Inline text parts are kept in order (an HTML post plus Mailman's text/plain footer part keeps
    both); of a multipart/alternative only the best version is read: plain text if it has any."""
    texts: list[tuple[str, str, str | None]] = []   # (content type, text, charset)
    attachments: list[Attachment] = []
    stack: list[EmailMessage] = [msg]
    seen = 0
    room = MAX_TEXT   # characters of text still to be kept
    while stack:
        part = stack.pop()
        seen += 1
        if seen > max_parts:
            degraded.append("mime-parts-truncated")
            break
        ctype = _content_type(part)
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                if ctype == "multipart/alternative" and children:
                    children = [_best_alternative(children)]
                stack.extend(reversed(children))
                continue
        filename = _filename(part)
        disposition = (_plain(part, "content-disposition") or "").split(";")[0].strip().lower()
        data = _payload_bytes(part)
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            text, charset, reason = charsets.decode(data, _charset(part))
            if reason:
                degraded.append(reason)
            if ctype == "text/html":
                text, reasons = flatten(text)
                degraded.extend(reasons)
            if len(text) > room:
                degraded.append("body-truncated")
                text = text[:room]
            room -= len(text)
            texts.append((ctype, text, charset))
        else:
            attachments.append(Attachment(filename=filename, content_type=ctype, size=len(data)))
    if not texts:
        return "", "text/plain", None, attachments
    body = "\n\n".join(text for _, text, _ in texts if text.strip())
    return body, texts[0][0], texts[0][2], attachments


def _best_alternative(children: list[EmailMessage]) -> EmailMessage:
    """Pick the version of a multipart/alternative to read: text/plain with text, else HTML,
    else the first structured one (such as multipart/related holding the HTML)."""
    by_type: dict[str, EmailMessage] = {}
    for child in children:
        by_type.setdefault(_content_type(child), child)
    plain = by_type.get("text/plain")
    if plain is not None and _payload_bytes(plain).strip():
        return plain
    for kind in ("text/html", "multipart/related", "multipart/mixed"):
        if kind in by_type:
            return by_type[kind]
    return children[0]


def _charset(part: EmailMessage) -> str | None:
    try:
        return part.get_content_charset()
    except (ValueError, LookupError, TypeError):
        return None


def _content_type(part: EmailMessage) -> str:
    try:
        return part.get_content_type()
    except (ValueError, LookupError, TypeError):
        return "application/octet-stream"


def _filename(part: EmailMessage) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, LookupError, TypeError):
        return None
    return decode_header_value(name)[0] if name else None


def _payload_bytes(part: EmailMessage) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, LookupError, TypeError, AssertionError):
        data = None
    if isinstance(data, bytes):
        return data
    # get_payload() without decoding applies the declared charset and can raise on a bad one;
    # the stored payload is the message's own text with 8-bit bytes escaped.
    raw = part._payload  # noqa: SLF001 - the one way to the bytes when the charset is broken
    return raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else b""


def replace_stubs(body: str, scrubbed: dict[str, bytes], degraded: list[str]):
    """Remove pipermail's scrubbed-attachment stubs from a body, keeping each URL as an attachment;
    where the body held nothing else and the HTML part is at hand, its text becomes the body."""
    first = body.find("attachment was scrubbed")
    if first == -1:
        return body, []
    # A stub starts on the line of its "attachment was scrubbed" or on the "next part" line above
    # it: the pattern, with no literal to skip ahead by, is searched from there, not tried at
    # every character of the message before it.
    start = body.rfind("\n", 0, first) + 1
    found = list(_STUB.finditer(body, body.rfind("\n", 0, start - 1) + 1 if start else 0))
    if not found:
        return body, []
    attachments = [Attachment(filename=None, content_type="text/html" if m.group(1) == "HTML"
                              else "application/octet-stream", size=0, url=m.group(2))
                   for m in found]
    # What _STUB.sub("", body) leaves, without searching the body again.
    ends = [0] + [end for m in found for end in m.span()] + [len(body)]
    rest = "".join(body[ends[i]:ends[i + 1]] for i in range(0, len(ends), 2)).rstrip()
    if any(line.strip() and not _FOOTERISH.search(line) for line in rest.splitlines()):
        return rest, attachments
    for match in found:
        data = scrubbed.get(match.group(2))
        if data is not None and match.group(1) == "HTML":
            text, _, _ = charsets.decode(data)
            return html_to_text(text), attachments
    degraded.append("text-only-in-scrubbed-attachment")
    return rest, attachments
