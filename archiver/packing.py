"""How the store packs raw bytes and texts: zlib, with the store's own preset dictionary."""

from __future__ import annotations

import json
import zlib
from functools import lru_cache

# zlib looks back at most 32 KiB; a longer dictionary would only be cut.
DICTIONARY_BYTES = 32 * 1024
SAMPLES = 1000
_TEXTS = ("own_text", "quoted_text", "signature", "footer")


def train(samples: list[bytes]) -> bytes:
    """Make a preset dictionary from sample messages of an archive (its first batch).

    A message is a few kilobytes, too short for zlib to find much repetition within it; most
    of its bytes (header names, MIME and list headers, list footers) repeat across messages.
    The dictionary holds only lines found in three or more of the messages, naming no
    address: never one message's own words or headers, which an expunge must be able to
    remove (a line that three messages carry stays in the other two). Commoner lines go
    last, where zlib finds them cheapest."""
    if not samples:
        return b""
    seen: dict[bytes, int] = {}
    for sample in samples[:SAMPLES]:
        for line in set(sample.splitlines()):
            if 8 <= len(line) <= 200 and b"@" not in line and b" at " not in line:
                seen[line] = seen.get(line, 0) + 1
    common = sorted((n, line) for line, n in seen.items() if n >= 3)
    return b"\n".join(line for _, line in common)[-DICTIONARY_BYTES:]

def pack(data: bytes, zdict: bytes = b"") -> bytes:
    """Compress bytes, with the dictionary when the store has one."""
    if not zdict:
        return zlib.compress(data, 6)
    # Loading a dictionary costs as much as compressing a message: copy a loaded compressor.
    packer = _primed(zdict).copy()
    return packer.compress(data) + packer.flush()


@lru_cache(maxsize=2)
def _primed(zdict: bytes):
    return zlib.compressobj(6, zdict=zdict)


def unpack(blob: bytes, zdict: bytes = b"") -> bytes:
    """Decompress what pack made: the zlib header says whether a dictionary was used (and its
    Adler-32 checksum, so a wrong one fails loudly instead of giving wrong bytes)."""
    if len(blob) > 1 and blob[1] & 0x20:   # FDICT, RFC 1950 section 2.2
        if not zdict:
            raise zlib.error("packed with a preset dictionary the store does not have")
        unpacker = zlib.decompressobj(zdict=zdict)
        return unpacker.decompress(blob) + unpacker.flush()
    return zlib.decompress(blob)


def pack_texts(own_text: str, quoted_text: str, signature: str, footer: str,
               attachments: list[dict], raw: bytes) -> bytes:
    """Pack a message's texts and attachment list together, with its own raw bytes as the
    dictionary: own words, quotes and footer are mostly those bytes again, so they cost about
    a third of what they would packed alone. An expunged message (no raw bytes) packs plain."""
    data = json.dumps([own_text, quoted_text, signature, footer, attachments],
                      ensure_ascii=False).encode("utf-8")
    if not raw:
        return zlib.compress(data, 6)
    packer = zlib.compressobj(6, zdict=raw[-DICTIONARY_BYTES:])
    return packer.compress(data) + packer.flush()


def unpack_texts(blob: bytes | None, raw: bytes = b"") -> dict:
    """Return own_text, quoted_text, signature, footer and attachments (empty when there is no
    row); raw is the message's raw bytes, unpacked, that pack_texts was given."""
    if blob is None:
        return {**dict.fromkeys(_TEXTS, ""), "attachments": []}
    values = json.loads(unpack(blob, raw[-DICTIONARY_BYTES:]).decode("utf-8"))
    return {**dict(zip(_TEXTS, values)), "attachments": values[4]}
