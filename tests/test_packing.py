"""Packing raw bytes and texts with and without a store's preset dictionary."""

from __future__ import annotations

import zlib

import pytest

from archiver.packing import DICTIONARY_BYTES, pack, pack_texts, train, unpack, unpack_texts
from archiver.store import Store
from conftest import BACKENDS

HEADERS = (b"Received: from mail.civil.example by lists.bestbits.example\n"
           b"List-Id: Best Bits <bestbits.lists.bestbits.example>\n"
           b"Content-Type: text/plain; charset=utf-8\n\n")


def message(n: int) -> bytes:
    return HEADERS + f"Message {n} on enhanced cooperation and the IGF.\n".encode()


def test_dictionary_is_bounded_and_holds_only_lines_many_messages_share():
    samples = [message(n) for n in range(5000)]
    samples[7] += b"A private line only message 7 carries, to be expunged.\n"
    samples[8] += b"Reach me at someone@private.example about it.\n" * 3
    zdict = train(samples)
    assert 0 < len(zdict) <= DICTIONARY_BYTES
    assert all(line in zdict for line in HEADERS.splitlines() if line)
    # One message's own lines (or any line with an address) never enter it: an expunge must
    # be able to remove a message's words, and the dictionary is never rewritten.
    assert b"private line" not in zdict and b"Message 7 " not in zdict and b"@" not in zdict
    assert train([]) == b""


def test_a_dictionary_packs_small_messages_smaller_and_round_trips():
    zdict = train([message(n) for n in range(200)])
    data = message(10_001)
    with_dict, plain = pack(data, zdict), pack(data)
    assert len(with_dict) < len(plain) / 2
    assert unpack(with_dict, zdict) == data and unpack(plain, zdict) == data and unpack(plain) == data


def test_a_missing_or_wrong_dictionary_fails_instead_of_giving_wrong_bytes():
    zdict = train([message(n) for n in range(200)])
    packed = pack(message(1), zdict)
    with pytest.raises(zlib.error, match="dictionary"):
        unpack(packed)
    with pytest.raises(zlib.error):
        unpack(packed, b"another dictionary entirely")


def test_texts_pack_against_their_raw_message_and_round_trip_any_characters():
    texts = ("Own words \x00 with a NUL", "> quoted\n> «text»", "-- \nJo", "Footer ünïcode")
    files = [{"filename": "a.pdf", "content_type": "application/pdf", "size": 10, "url": None}]
    raw = HEADERS + "\n".join(texts).encode("utf-8")
    packed = pack_texts(*texts, files, raw)
    assert len(packed) < len(pack_texts(*texts, files, b""))
    assert unpack_texts(packed, raw) == {"own_text": texts[0], "quoted_text": texts[1],
                                         "signature": texts[2], "footer": texts[3], "attachments": files}
    with pytest.raises(zlib.error):
        unpack_texts(packed)   # without its raw message
    assert unpack_texts(None) == {**dict.fromkeys(("own_text", "quoted_text", "signature", "footer"), ""),
                                  "attachments": []}


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """The store's part runs in SQLite and on PostgreSQL."""
    return request.param


def test_the_store_makes_its_dictionary_once(store_url):
    url = store_url("a")
    store = Store(url)
    assert store.zdict() == b""
    first = store.ensure_zdict([message(n) for n in range(100)])
    assert first and store.ensure_zdict([b"other samples"]) == first
    again = Store(url)
    assert again.zdict() == first
    store.close()
    again.close()
