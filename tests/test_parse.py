"""Raw bytes -> Message: addresses, dates, ids, charsets, MIME walking, pipermail stubs, bounds."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver.errors import ParseError
from archiver.ids import SYNTHETIC_DOMAIN
from archiver.models import RawMessage
from archiver.parse import parse_date, parse_from, parse_message

MESSAGES = Path(__file__).resolve().parent.parent / "fixtures" / "messages"
ENVELOPE = "From jane.doe@civil.example Tue Oct  2 10:00:00 2012"
HEAD = (b"From: Jane Doe <jane.doe@civil.example>\nMessage-ID: <head.1@civil.example>\n"
        b"Date: Tue, 02 Oct 2012 10:00:00 +0200\nSubject: Test\nMIME-Version: 1.0\n")


def raw(data: bytes, envelope: str | None = None, scrubbed: dict | None = None) -> RawMessage:
    return RawMessage(data=data, kind="eml", location="test", envelope=envelope,
                      scrubbed=scrubbed or {})


def fixture(name: str, **kw) -> RawMessage:
    return raw((MESSAGES / name).read_bytes(), **kw)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# --- From ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value, name, address", [
    ("jane.doe at civil.example (Jane Doe)", "Jane Doe", "jane.doe@civil.example"),
    ("Jane.Doe at Civil.Example (Jane Doe)", "Jane Doe", "jane.doe@civil.example"),
    ("jane.doe at civil.example", "", "jane.doe@civil.example"),
    ("jose.garcia at redes.example (=?iso-8859-1?q?Jos=E9_Garc=EDa?=)", "José García",
     "jose.garcia@redes.example"),
    ("jose.garcia at redes.example (=?utf-8?q?Jos=C3=A9_Garc=C3=ADa?=)", "José García",
     "jose.garcia@redes.example"),
    ("Jane Doe <jane.doe@civil.example>", "Jane Doe", "jane.doe@civil.example"),
    ('"Doe, Jane" <Jane.Doe@Civil.example>', "Doe, Jane", "jane.doe@civil.example"),
    ("jane.doe@civil.example (Jane Doe)", "Jane Doe", "jane.doe@civil.example"),
    ("<jane.doe@civil.example>", "", "jane.doe@civil.example"),
    ("jane.doe@civil.example", "", "jane.doe@civil.example"),
    ("Jane Doe <jane.doe at civil.example>", "Jane Doe", "jane.doe@civil.example"),
    ("Jane Doe jane.doe@civil.example", "Jane Doe", "jane.doe@civil.example"),     # LISTSERV
    ("García, José <jose.garcia@redes.example>", "García, José", "jose.garcia@redes.example"),
    ("jane.doe@civil.example <jane.doe@civil.example>", "", "jane.doe@civil.example"),
    ("undisclosed-recipients", "undisclosed-recipients", ""),
    ("", "", ""),
])
def test_parse_from(value, name, address):
    assert parse_from(value) == (name, address)


def test_pipermail_from_with_rfc2047_name():
    message = parse_message(fixture("pipermail-from.eml"))
    assert (message.from_name, message.from_address) == ("José García", "jose.garcia@redes.example")
    assert message.degraded == ()


def test_rfc2047_latin1_name_and_subject():
    message = parse_message(fixture("rfc2047-name-latin1.eml"))
    assert message.from_name == "José García"
    assert message.from_address == "jose.garcia@redes.example"
    assert message.subject == "Re: Reunión de coordinación"
    assert message.degraded == ()


def test_rfc2047_quoted_name_with_comma():
    data = HEAD.replace(b"From: Jane Doe <jane.doe@civil.example>",
                        b'From: "=?iso-8859-1?Q?Garc=EDa=2C_Jos=E9?=" <jose.garcia@redes.example>')
    message = parse_message(raw(data + b"\nbody\n"))
    assert (message.from_name, message.from_address) == ("García, José", "jose.garcia@redes.example")


def test_rfc2047_unquoted_name_with_encoded_comma():
    # Decoded before it is split, '=2C' becomes a bare comma: the address must survive it.
    message = parse_message(fixture("rfc2047-name-comma.eml"))
    assert message.from_address == "jose.garcia@redes.example"
    assert message.from_name == "García, José"
    assert "no-from-address" not in message.degraded


# --- raw 8-bit headers ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["header-8bit-utf8.eml", "header-8bit-latin1.eml"])
def test_raw_8bit_headers_never_raise_and_keep_the_address(name):
    message = parse_message(fixture(name))
    assert message.from_address == "jose.garcia@redes.example"
    assert message.message_id.startswith("header-8bit")
    assert message.date == utc(2012, 10, 3, 21, 30)


@pytest.mark.parametrize("name, subject", [
    ("header-8bit-utf8.eml", "Réunion à Genève — ordre du jour"),
    ("header-8bit-latin1.eml", "Réunion à Genève"),
])
def test_raw_8bit_headers_are_decoded(name, subject):
    message = parse_message(fixture(name))
    assert message.from_name == "José García"
    assert message.subject == subject
    assert "\ufffd" not in message.from_name + message.subject


# --- dates ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, when, offset", [
    ("Tue, 02 Oct 2012 10:00:00 +0200", utc(2012, 10, 2, 8, 0), 120),
    ("Tue, 02 Oct 2012 10:00:00 -0530", utc(2012, 10, 2, 15, 30), -330),
    ("Tue, 02 Oct 2012 10:00:00 +0530 (IST)", utc(2012, 10, 2, 4, 30), 330),
    ("Tue, 02 Oct 2012 10:00:00 GMT", utc(2012, 10, 2, 10, 0), 0),
    ("2 Oct 2012 10:00 +0000", utc(2012, 10, 2, 10, 0), 0),
    ("Wed, 03 Oct 2012 23:30:00 -0300", utc(2012, 10, 4, 2, 30), -180),
])
def test_dates_are_utc_with_the_original_offset(value, when, offset):
    degraded: list[str] = []
    assert parse_date(value, None, degraded) == (when, offset)
    assert degraded == []


def test_date_offset_from_fixture():
    message = parse_message(fixture("date-half-hour-offset.eml"))
    assert (message.date, message.date_offset) == (utc(2012, 10, 2, 4, 30), 330)
    assert message.date.tzinfo is timezone.utc


def test_bad_date_falls_back_to_the_envelope():
    message = parse_message(fixture("bad-date.eml", envelope=ENVELOPE))
    assert message.date == utc(2012, 10, 2, 10, 0)
    assert message.date_offset is None
    assert "date-from-envelope" in message.degraded
    assert "no-date" not in message.degraded


def test_bad_date_without_envelope_has_no_date():
    message = parse_message(fixture("bad-date.eml"))
    assert (message.date, message.date_offset) == (None, None)
    assert "no-date" in message.degraded


@pytest.mark.parametrize("value", ["Tue, 02 Oct 1912 10:00:00 +0000", "Tue, 32 Oct 2012 10:00:00 +0000",
                                   "mardi 2 octobre 2012", "", None])
def test_unreadable_or_implausible_dates(value):
    degraded: list[str] = []
    assert parse_date(value, "From - garbage", degraded) == (None, None)
    assert degraded == ["no-date"]


def test_pipermail_envelope_with_at():
    degraded: list[str] = []
    when, offset = parse_date(None, "From jane.doe at civil.example  Tue Oct  2 10:00:00 2012", degraded)
    assert (when, offset, degraded) == (utc(2012, 10, 2, 10, 0), None, ["date-from-envelope"])


# --- Message-IDs --------------------------------------------------------------------------------
def test_missing_message_id_gets_a_stable_synthetic_id():
    first = parse_message(fixture("missing-message-id.eml"))
    again = parse_message(fixture("missing-message-id.eml"))
    assert first.synthetic_id is True
    assert re.fullmatch(r"[0-9a-f]{32}@" + re.escape(SYNTHETIC_DOMAIN), first.message_id)
    assert first.message_id == again.message_id
    assert "no-message-id" in first.degraded
    other = parse_message(raw((MESSAGES / "missing-message-id.eml").read_bytes() + b"PS.\n"))
    assert other.message_id != first.message_id


def test_empty_message_id_is_treated_as_missing():
    message = parse_message(fixture("empty-message-id.eml"))
    assert message.synthetic_id is True
    assert message.message_id.endswith("@" + SYNTHETIC_DOMAIN)
    assert "no-message-id" in message.degraded


def test_folded_message_id_and_references():
    data = (b"From: Jane Doe <jane.doe@civil.example>\nMessage-ID:\n <folded.1@civil.example>\n"
            b"Subject: a very\n long subject\nReferences: <a@civil.example>\n\t<b@civil.example>\n"
            b" <a@civil.example>\nIn-Reply-To: <b@civil.example>\n\nbody\n")
    message = parse_message(raw(data))
    assert message.message_id == "folded.1@civil.example"
    assert message.subject == "a very long subject"
    assert message.references == ("a@civil.example", "b@civil.example")
    assert message.in_reply_to == "b@civil.example"
    assert message.thread_refs == ("a@civil.example", "b@civil.example")


def test_your_message_of_in_reply_to():
    message = parse_message(fixture("your-message-of.eml"))
    assert message.in_reply_to == "bad-date.1@civil.example"
    assert message.thread_refs == ("bad-date.1@civil.example",)
    bare = parse_message(fixture("your-message-of-no-id.eml"))
    assert bare.in_reply_to is None
    assert bare.thread_refs == ()


def test_thread_refs_appends_in_reply_to_and_drops_self():
    data = (b"From: a@civil.example\nMessage-ID: <self@civil.example>\n"
            b"References: <root@civil.example> <self@civil.example>\nIn-Reply-To: <mid@civil.example>\n\nx\n")
    message = parse_message(raw(data))
    assert message.thread_refs == ("root@civil.example", "mid@civil.example")


# --- charsets ---------------------------------------------------------------------------------
def test_latin1_label_is_read_as_cp1252():
    message = parse_message(fixture("latin1-labelled-cp1252.eml"))
    assert message.body == "The \u201cBest Bits\u201d statement costs \u20ac10 to print \u2013 café included.\n"
    assert message.charset == "cp1252"
    assert message.degraded == ()


def test_strict_utf8_wins_over_a_wrong_label():
    data = HEAD + b"Content-Type: text/plain; charset=iso-8859-1\n\n" + "Genève, 3 € — ok\n".encode()
    message = parse_message(raw(data))
    assert message.body == "Genève, 3 € — ok\n"
    assert message.charset == "utf-8"


def test_unlabelled_koi8r_is_detected():
    message = parse_message(fixture("koi8r-unlabelled.eml"))
    assert message.charset == "koi8-r"
    assert message.body.startswith("Здравствуйте, коллеги!\n")
    assert "Иван Петров" in message.body
    assert "charset-guessed" in message.degraded


def test_unlabelled_windows_1256_is_detected():
    message = parse_message(fixture("cp1256-unlabelled.eml"))
    assert message.charset == "cp1256"
    assert message.body.startswith("مرحبا بالجميع")
    assert "charset-guessed" in message.degraded


def test_unlabelled_short_koi8r_is_detected():
    message = parse_message(fixture("koi8r-unlabelled-short.eml"))
    assert message.body == "Спасибо, согласен. Увидимся в пятницу.\n"


def test_unlabelled_short_latin1_reads_as_cp1252():
    message = parse_message(fixture("latin1-unlabelled-short.eml"))
    assert message.body == "Obrigado! Até amanhã.\n"


def test_iso_2022_jp_label_is_honoured():
    # 7-bit ISO-2022-JP is valid UTF-8 too: the label must be tried first.
    message = parse_message(fixture("iso2022jp-labelled.eml"))
    assert message.body == "日本語のメールです。よろしくお願いします。\n"


@pytest.mark.parametrize("label", [b"undefined", b'"utf\x00 8"'])
def test_odd_charset_label_does_not_lose_the_message(label):
    data = HEAD + b"Content-Type: text/plain; charset=" + label + b"\n\ncaf\xe9 ok\n"
    message = parse_message(raw(data))
    assert message.body.startswith("caf") and message.body.endswith(" ok\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=300), label=st.sampled_from(
    [None, "utf-8", "iso-8859-1", "us-ascii", "koi8-r", "x-unknown", "utf-16", "iso-2022-jp", "\"bad"]))
def test_any_body_bytes_decode_without_raising(body, label):
    data = HEAD + (f"Content-Type: text/plain; charset={label}\n".encode() if label else b"") + b"\n" + body
    message = parse_message(raw(data))
    assert isinstance(message.body, str)
    assert message.message_id == "head.1@civil.example"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_give_a_message_or_parse_error(data):
    try:
        message = parse_message(raw(data))
    except ParseError:
        return
    assert message.raw_sha256 == hashlib.sha256(data).hexdigest()
    assert message.message_id


# --- bodies and MIME --------------------------------------------------------------------------
def test_html_only_becomes_text():
    message = parse_message(fixture("html-only.eml"))
    assert message.content_type == "text/html"
    assert message.body == ("Dear all,\nPlease read the draft <https://docs.bestbits.example/draft> "
                            "before Friday.\n\n> Earlier words from someone else.\n\nJane")
    assert "tracking" not in message.body and "color" not in message.body


def test_html_with_mailman_footer_part_keeps_the_html_text():
    message = parse_message(fixture("html-with-list-footer.eml"))
    assert "The statement is ready for signatures." in message.body


def test_multipart_alternative_prefers_text_plain():
    message = parse_message(fixture("multipart-alternative.eml"))
    assert message.body == "The plain version of the text."
    assert message.content_type == "text/plain"
    assert message.attachments == ()


def test_attachments_metadata():
    message = parse_message(fixture("attachments.eml"))
    assert message.body == "Please find the agenda attached."
    assert [(a.filename, a.content_type, a.size, a.url) for a in message.attachments] == [
        ("agenda.pdf", "application/pdf", 48, None),
        ("résumé.txt", "text/plain", 10, None),
    ]


def test_forwarded_message_part_is_read():
    data = HEAD + (b'Content-Type: multipart/mixed; boundary="z"\n\n--z\nContent-Type: text/plain\n\n'
                   b"Forwarding this.\n--z\nContent-Type: message/rfc822\n\nFrom: Bob <bob@ngo.example>\n"
                   b"Subject: orig\n\nOriginal words.\n--z--\n")
    message = parse_message(raw(data))
    assert message.body == "Forwarding this.\n\nOriginal words."


def test_quoted_printable_and_base64_bodies():
    qp = HEAD + (b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
                 b"R=C3=A9union =\n=C3=A0 10h\n")
    assert parse_message(raw(qp)).body == "Réunion à 10h\n"
    b64 = HEAD + (b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: base64\n\n"
                  b"Uul1bmlvbiDgIDEwaAo=\n")
    message = parse_message(raw(b64))
    assert (message.body, message.charset) == ("Réunion à 10h\n", "cp1252")


def test_pipermail_stub_removed_and_urls_kept():
    message = parse_message(fixture("pipermail-scrubbed-mixed.eml"))
    assert message.body == "Here is the agenda for the Baku meeting."
    base = "http://lists.bestbits.example/pipermail/bestbits/attachments/20121002/5a6b7c8d/"
    assert [(a.content_type, a.url) for a in message.attachments] == [
        ("text/html", base + "attachment.html"),
        ("application/octet-stream", base + "agenda.pdf"),
    ]
    assert message.degraded == ()


def test_pipermail_html_stub_alone_is_degraded():
    message = parse_message(fixture("pipermail-scrubbed-html.eml"))
    assert message.body == ""
    assert "text-only-in-scrubbed-attachment" in message.degraded
    assert message.attachments[0].url.endswith("/20121002/4f1c2e9a/attachment.html")


def test_pipermail_html_stub_with_scrubbed_bytes_becomes_the_body():
    url = "http://lists.bestbits.example/pipermail/bestbits/attachments/20121002/4f1c2e9a/attachment.html"
    html = "<html><body><p>The statement, signed by <b>42</b> groups.</p><p>Jane</p></body></html>"
    message = parse_message(fixture("pipermail-scrubbed-html.eml", scrubbed={url: html.encode()}))
    assert message.body == "The statement, signed by 42 groups.\nJane"
    assert "text-only-in-scrubbed-attachment" not in message.degraded
    assert [a.url for a in message.attachments] == [url]


@pytest.mark.parametrize("data", [b"", b"   \n\n\t\n"])
def test_empty_input_is_a_parse_error(data):
    with pytest.raises(ParseError, match="empty"):
        parse_message(raw(data))


def test_text_without_headers_is_a_parse_error():
    with pytest.raises(ParseError, match="no headers"):
        parse_message(raw(b"just some words, no header at all\n"))


def test_byte_order_mark_before_headers():
    data = b"\xef\xbb\xbf" + HEAD + b"\nbody\n"
    message = parse_message(raw(data))
    assert message.from_address == "jane.doe@civil.example"
    assert message.raw_sha256 == hashlib.sha256(data).hexdigest()


def _nested(levels: int) -> bytes:
    out = [HEAD + b'Content-Type: multipart/mixed; boundary="b0"\n\n']
    for i in range(levels):
        out.append(b'--b%d\nContent-Type: multipart/mixed; boundary="b%d"\n\n' % (i, i + 1))
    out.append(b"--b%d\nContent-Type: text/plain\n\ndeep words\n" % levels)
    out.extend(b"--b%d--\n" % i for i in range(levels, -1, -1))
    return b"".join(out)


def test_moderate_mime_nesting_is_walked():
    assert parse_message(raw(_nested(50))).body == "deep words"


def test_deep_mime_nesting_does_not_crash():
    message = parse_message(raw(_nested(2000)))
    assert message.message_id == "head.1@civil.example"
    assert message.body == "deep words" or "mime-too-deep" in message.degraded


def test_max_parts_bound_is_respected():
    parts = b"".join(b"--z\nContent-Type: application/octet-stream\n\nxx\n" for _ in range(50))
    data = HEAD + b'Content-Type: multipart/mixed; boundary="z"\n\n' + parts + \
        b"--z\nContent-Type: text/plain\n\nlate text\n--z--\n"
    bounded = parse_message(raw(data), max_parts=10)
    assert "mime-parts-truncated" in bounded.degraded
    assert len(bounded.attachments) == 9     # the root counts as a part
    full = parse_message(raw(data))
    assert (full.body, len(full.attachments), full.degraded) == ("late text", 50, ())


def test_too_large_message_keeps_headers_only():
    data = HEAD + b"\n" + b"x" * 5000
    message = parse_message(raw(data), max_bytes=1000)
    assert message.message_id == "head.1@civil.example"
    assert message.body == ""
    assert "too-large-body-dropped" in message.degraded
