"""Local mail files: mbox (mboxo, mboxrd, CRLF, gzip), maildir, single messages, stdin."""

from __future__ import annotations

import gzip
import io
import os
import re
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import SourceError
from ..models import RawMessage

GZIP_MAGIC = b"\x1f\x8b"
# A From_ separator must carry an asctime-style date; a body line such as
# "From my perspective, ..." does not, so unescaped body lines never split a message.
_FROM_LINE = re.compile(
    rb"^From (?:\S.*?)??\s*(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? +"
    rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} +"
    rb"\d{1,2}:\d{2}(?::\d{2})?(?: +[A-Za-z]{1,5}| +[+-]\d{4})? +\d{4}"
)
# mboxrd: one '>' is removed from any line of the form >+From (mboxo's ">From " included).
# Separators with no date: Netscape/Thunderbird write "From - ...", some tools just an address.
_FROM_BARE = re.compile(rb"^From (?:-.*|\S+@\S+|MAILER-DAEMON)\s*$")
BOM = b"\xef\xbb\xbf"
_QUOTED_FROM = re.compile(rb"^>(>*From )")
# A header field name as mail software writes them (RFC 5322 allows more, but JSON, HTML or
# prose must not pass for a message): a letter, then letters, digits and hyphens.
_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9_-]{0,75}:")


def open_bytes(path: Path) -> BinaryIO:
    """Open a file for reading, transparently un-gzipping it when its first bytes say gzip."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    # gzip.open owns its file, so closing the stream closes both.
    return gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")


def sniff(head: bytes) -> str | None:
    """Return 'mbox', 'message' or None for the first bytes of a (decompressed) file."""
    text = head.removeprefix(BOM).lstrip(b"\r\n")
    if is_from_line(text.split(b"\n", 1)[0]):
        return "mbox"
    if text.startswith(b"From "):
        # A From_ line whose date we cannot read is still an mbox.
        return "mbox"
    if _HEADER_LINE.match(text):
        return "message"
    return None


def is_from_line(line: bytes) -> bool:
    # Real From_ lines are short; the length bound keeps the regex linear on hostile input.
    if not line.startswith(b"From ") or len(line) >= 1024:
        return False
    line = line.rstrip(b"\r\n")
    return _FROM_LINE.match(line) is not None or _FROM_BARE.match(line) is not None


def _lines(stream: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    """Yield the lines of a stream, read in large blocks (a gzip stream's own readline is slow).

    Lines end at LF (CRLF lines keep their CR); a stream whose first line ends in a lone CR was
    written with classic Mac line ends, and its lines end at CR."""
    pending: list[bytes] = []   # a line longer than a block, in pieces: joined once, not per block
    newline = None
    while block := stream.read(size):
        if newline is None:
            # Decided by the first line end seen (a CR at a block's end may be half a CRLF).
            lone_cr = b"\r" in block[:-1] or bool(pending and pending[-1].endswith(b"\r"))
            newline = b"\n" if b"\n" in block else b"\r" if lone_cr else None
            if newline is None:
                pending.append(block)
                continue
        cut = block.rfind(newline) + 1
        if not cut:
            pending.append(block)
            continue
        head = b"".join(pending) + block[:cut] if pending else block[:cut]
        pending = [block[cut:]] if cut < len(block) else []
        if newline == b"\n":
            yield from io.BytesIO(head)  # splits at b"\n" only, at C speed
        else:
            for line in head.split(newline)[:-1]:
                yield line + newline
    if pending:
        yield b"".join(pending)


def split_mbox(stream: BinaryIO, location: str, kind: str = "mbox") -> Iterator[RawMessage]:
    """Yield the messages of an mbox stream one at a time, with their byte offsets."""
    offset = 0
    start = 0
    envelope: str | None = None
    lines: list[bytes] = []
    first = True
    for line in _lines(stream):
        if first and line.startswith(BOM):
            offset += len(BOM)
            line = line[len(BOM):]
        # The first line is a separator even with a date we cannot read (sniff() said mbox),
        # but only if it is short enough to be one: a whole file on one line is content.
        if line.startswith(b"From ") and (is_from_line(line) or (first and len(line) < 1024)):
            # Blank lines before the first separator are no message; anything else is kept.
            if envelope is not None or any(part.strip() for part in lines):
                yield _mbox_message(lines, envelope, f"{location}#{start}", kind)
            envelope = line.rstrip(b"\r\n").decode("utf-8", "replace")
            lines = []
            start = offset
        elif line.startswith(b">") and line.lstrip(b">").startswith(b"From "):
            lines.append(line[1:])  # mboxrd: >+From lines lose one '>' (mboxo's >From too)
        else:
            lines.append(line)
        first = False
        offset += len(line)
    if lines or envelope is not None:
        yield _mbox_message(lines, envelope, f"{location}#{start}", kind)


def _mbox_message(lines: list[bytes], envelope: str | None, location: str, kind: str) -> RawMessage:
    # The blank line before the next From_ belongs to the mbox, not to the message.
    if lines and lines[-1] in (b"\n", b"\r\n", b"\r"):
        lines = lines[:-1]
    return RawMessage(data=b"".join(lines), kind=kind, location=location, envelope=envelope)


def read_file(path: Path, skipped: list[str]) -> Iterator[RawMessage]:
    """Yield the messages of one file, recognised by its content, not its name."""
    stream = None
    try:
        stream = open_bytes(path)
        head = stream.read(4096)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        if stream is not None:
            stream.close()
        skipped.append(f"{path}: unreadable ({exc})")
        return
    kind = sniff(head)
    if kind is None:
        skipped.append(f"{path}: not mail")
        stream.close()
        return
    with stream:
        stream.seek(0)
        try:
            if kind == "mbox":
                yield from split_mbox(stream, str(path))
            else:
                yield RawMessage(data=stream.read(), kind="eml", location=str(path))
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            skipped.append(f"{path}: truncated ({exc})")


def read_maildir(path: Path) -> Iterator[RawMessage]:
    """Yield the messages of a maildir (cur/ and new/), in file-name order."""
    for sub in ("cur", "new"):
        folder = path / sub
        if folder.is_dir():
            for name in sorted(os.listdir(folder)):
                item = folder / name
                if item.is_file() and not name.startswith("."):
                    yield RawMessage(data=item.read_bytes(), kind="maildir", location=str(item))


def is_maildir(path: Path) -> bool:
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def read_stdin(stream: BinaryIO) -> Iterator[RawMessage]:
    """Yield the messages on standard input: an mbox, or one message."""
    data = stream.read()
    if data[:2] == GZIP_MAGIC:
        data = gzip.decompress(data)
    if sniff(data[:4096]) == "mbox":
        yield from split_mbox(io.BytesIO(data), "-", kind="stdin")
    elif data.strip():
        yield RawMessage(data=data, kind="stdin", location="-")
    else:
        raise SourceError("standard input is empty")
