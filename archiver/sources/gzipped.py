"""Downloaded gzip data: recognised by its magic bytes, every member's CRC and length checked, bounded."""

from __future__ import annotations

import zlib

from .mbox import GZIP_MAGIC

_STEP = 1 << 20   # bytes of output per decompress call: memory stays bounded on a gzip bomb


class CorruptGzip(ValueError):
    """Gzip data that is truncated or fails its CRC or length check (worth downloading again)."""


class TooLarge(ValueError):
    """Data that decompresses to more than the allowed size (not worth downloading again)."""


def unpack(data: bytes, limit: int) -> bytes:
    """Return data un-gzipped when its first bytes say gzip, else as it is; servers serve plain
    text under a .gz name and gzip under a .txt name, so the name is never trusted."""
    if data[:2] != GZIP_MAGIC:
        if len(data) > limit:
            raise TooLarge(f"more than {limit} bytes")
        return data
    return gunzip(data, limit)


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress every member of gzip data, checking each member's CRC-32 and length (RFC 1952)."""
    out: list[bytes] = []
    total = 0
    members = 0
    while data:
        if data[:2] != GZIP_MAGIC:
            # gzip(1) tolerates zero padding after the last member; anything else is damage.
            if members and not data.strip(b"\0"):
                break
            raise CorruptGzip("bytes after the gzip data that are not gzip")
        # wbits=31: a gzip header and trailer; zlib checks the trailer's CRC-32 and ISIZE itself.
        inflater = zlib.decompressobj(wbits=31)
        pending = data
        while True:
            try:
                chunk = inflater.decompress(pending, _STEP)
            except zlib.error as exc:
                raise CorruptGzip(f"corrupt gzip data ({exc})") from None
            total += len(chunk)
            if total > limit:
                raise TooLarge(f"more than {limit} bytes once decompressed")
            out.append(chunk)
            pending = inflater.unconsumed_tail
            if inflater.eof:
                break
            if not chunk and not pending:
                raise CorruptGzip("truncated gzip data (the download stopped early)")
        members += 1
        data = inflater.unused_data
    return b"".join(out)
