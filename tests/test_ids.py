"""Message-ID normalising, synthetic ids, References/In-Reply-To parsing and permalink hashes."""

from __future__ import annotations

import re

import pytest

from archiver.ids import (SYNTHETIC_DOMAIN, message_hash, normalise_message_id, parse_in_reply_to,
                          parse_references, synthetic_message_id, thread_hash)


@pytest.mark.parametrize("value, expected", [
    ("<AbC.123@Example.example>", "AbC.123@Example.example"),         # case kept
    ("  <id.1@civil.example>  ", "id.1@civil.example"),
    ("junk before <id.2@civil.example> (added by a relay)", "id.2@civil.example"),
    ("(comment) <id.3@civil.example>", "id.3@civil.example"),
    ("<first@civil.example> <second@civil.example>", "first@civil.example"),
    ("<id.4@civil.\r\n example>", "id.4@civil.example"),              # folding inside the id
    ("<id.5@\n\tcivil.example>", "id.5@civil.example"),
    ("<a b@civil.example>", "ab@civil.example"),                       # whitespace is never part of it
    ("bare.6@civil.example", "bare.6@civil.example"),                  # brackets dropped by a client
    ("garbage bare.7@civil.example trailing", "bare.7@civil.example"),
    ('<"quoted"+tag%2B=@civil.example>', '"quoted"+tag%2B=@civil.example'),  # characters unchanged
    ("<$Ch.Ü$@civil.example>", "$Ch.Ü$@civil.example"),
])
def test_normalise_message_id(value, expected):
    assert normalise_message_id(value) == expected


@pytest.mark.parametrize("value", [None, "", "   ", "\n\t"])
def test_normalise_message_id_empty_is_none(value):
    assert normalise_message_id(value) is None


def test_synthetic_id_is_stable_for_the_same_bytes():
    raw = b"From: jane.doe@civil.example\nSubject: no id\n\nbody\n"
    first, again = synthetic_message_id(raw), synthetic_message_id(bytes(raw))
    assert first == again
    assert re.fullmatch(r"[0-9a-f]{32}@" + re.escape(SYNTHETIC_DOMAIN), first)
    assert synthetic_message_id(raw + b" ") != first
    # The id is a plain string a normaliser keeps as it is.
    assert normalise_message_id(f"<{first}>") == first


@pytest.mark.parametrize("value, expected", [
    ("<a@x.example> <b@x.example>", ["a@x.example", "b@x.example"]),
    ("<a@x.example>\n\t<b@x.example>\n <c@x.example>", ["a@x.example", "b@x.example", "c@x.example"]),
    ("<a@x.example><b@x.example>", ["a@x.example", "b@x.example"]),
    ("<a@x.example> <b@x.example> <a@x.example>", ["a@x.example", "b@x.example"]),   # duplicates
    ("a@x.example b@x.example a@x.example", ["a@x.example", "b@x.example"]),       # no brackets
    ("a@x.example, b@x.example", ["a@x.example", "b@x.example"]),
    ("<Case@X.example> <case@x.example>", ["Case@X.example", "case@x.example"]),  # case matters
    ("", []),
    (None, []),
    ("no ids in here", []),
])
def test_parse_references(value, expected):
    assert parse_references(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("<parent.1@civil.example>", "parent.1@civil.example"),
    ("  <parent.1@civil.example>  ", "parent.1@civil.example"),
    ("parent.1@civil.example", "parent.1@civil.example"),
    # RFC 822 allowed phrases: the old MH form carries the id after the date.
    ('Your message of "Tue, 02 Oct 2012 10:00:00 +0200."\n             <parent.2@civil.example>',
     "parent.2@civil.example"),
    ("your message of Tue, 2 Oct 2012 <parent.3@civil.example>", "parent.3@civil.example"),
    ('<parent.4@civil.example> (Jane Doe\'s message of "Tue, 02 Oct 2012 10:00:00 +0200")',
     "parent.4@civil.example"),
    # Forms that carry no id at all: better none than a wrong one.
    ("Your message of Tue, 02 Oct 2012 10:00:00 +0200", None),
    ("Your message of Mon, 1 Oct 2012 jane.doe@civil.example", None),
    ("Jane Doe's message of Tue, 2 Oct 2012 10:00:00 +0200", None),
    ("a@x.example b@x.example", None),     # two bare candidates: ambiguous
    ("", None),
    (None, None),
])
def test_parse_in_reply_to(value, expected):
    assert parse_in_reply_to(value) == expected


def test_message_hash_format_and_known_value():
    value = message_hash("parent.1@civil.example")
    assert re.fullmatch(r"[a-z2-7]{32}", value)
    # base32(SHA-1) of the id, lower case (HyperKitty's permalink hash).
    assert message_hash("a@b") == "2azywized4je6led7jxvqimsaa437bo3"


def test_message_hash_is_case_sensitive_and_distinct():
    assert message_hash("Jane@civil.example") != message_hash("jane@civil.example")
    hashes = {message_hash(f"m{i}@civil.example") for i in range(500)}
    assert len(hashes) == 500
    assert all(re.fullmatch(r"[a-z2-7]{32}", h) for h in hashes)


def test_message_hash_of_non_ascii_and_surrogate_ids():
    # Ids read from raw 8-bit headers may hold surrogate escapes; hashing must not raise.
    assert re.fullmatch(r"[a-z2-7]{32}", message_hash("caf\udce9@civil.example"))
    assert re.fullmatch(r"[a-z2-7]{32}", message_hash("café@civil.example"))


def test_thread_hash_is_the_roots_message_hash():
    assert thread_hash("root.1@civil.example") == message_hash("root.1@civil.example")


def test_a_run_longer_than_any_id_is_no_id():
    """Every reader of ids blanks such runs first (pipermail pages and sources call them too),
    which also keeps them from scanning it in time that grows with the square of its length."""
    assert normalise_message_id("x" * 40_000) is None
    assert parse_references("a" * 40_000 + "@b <ok@x>") == ["ok@x"]
    assert parse_in_reply_to("<" + "c" * 40_000 + "@d>") is None
