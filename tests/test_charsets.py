"""Bytes -> text: label canonicalising and the strict-UTF-8 / label / detection / replacement chain."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.charsets import canonical, decode


@pytest.mark.parametrize("label, expected", [
    ("UTF-8", "utf-8"),
    ("utf8", "utf-8"),
    ("ISO-8859-1", "cp1252"),         # latin-1 is widened to cp1252
    ('"latin1"', "cp1252"),
    ("us-ascii", "cp1252"),
    (" Windows-1252 ", "cp1252"),
    ("koi8-r", "koi8-r"),
    ("windows-1256", "cp1256"),
    ("x-unknown", None),
    ("", None),
    (None, None),
])
def test_canonical(label, expected):
    assert canonical(label) == expected


def test_strict_utf8_first():
    assert decode("Genève — €".encode("utf-8")) == ("Genève — €", "utf-8", None)
    assert decode("Genève".encode("utf-8"), "koi8-r") == ("Genève", "utf-8", None)


def test_latin1_label_decodes_as_cp1252():
    # 0x93/0x94 are curly quotes and 0x80 the euro sign in cp1252 (C1 controls in latin-1).
    assert decode(b"\x93quoted\x94 \x80 5 caf\xe9", "iso-8859-1") == ("\u201cquoted\u201d \u20ac 5 café",
                                                                       "cp1252", None)
    assert decode(b"it\x92s", "us-ascii") == ("it\u2019s", "cp1252", None)


def test_declared_label_when_utf8_fails():
    text = "Встреча в пятницу"
    assert decode(text.encode("koi8-r"), "KOI8-R") == (text, "koi8-r", None)
    assert decode(text.encode("cp1251"), "windows-1251") == (text, "cp1251", None)


def test_seven_bit_wide_labels_are_tried_before_utf8():
    # '+AKM-' is valid ASCII (so valid UTF-8) but means '£' in UTF-7.
    assert decode(b"+AKM-1", "utf-7") == ("£1", "utf-7", None)
    assert decode("hé".encode("utf-16"), "utf-16") == ("hé", "utf-16", None)


def test_iso_2022_jp_label_is_tried_before_utf8():
    text = "日本語のメールです。"
    assert decode(text.encode("iso-2022-jp"), "iso-2022-jp") == (text, "iso2022_jp", None)


def test_unlabelled_cyrillic_and_arabic_are_detected():
    russian = ("Здравствуйте, коллеги!\n\nНапоминаю, что встреча рабочей группы состоится в пятницу "
               "в десять часов утра в большом зале. Просьба подготовить отчёты.\n")
    for codec in ("koi8-r", "cp1251"):
        text, used, reason = decode(russian.encode(codec))
        assert (text, used, reason) == (russian, codec, "charset-guessed")
    arabic = "مرحبا بالجميع، هذه رسالة تجريبية حول الاجتماع يوم الجمعة. يرجى تأكيد الحضور.\n"
    assert decode(arabic.encode("cp1256")) == (arabic, "cp1256", "charset-guessed")


@pytest.mark.parametrize("text, label", [
    ("Merci, à vendredi.\n", None),
    ("Gracias, nos vemos el miércoles en la reunión.\n", None),
    ("café", None),
    ("café crème brûlée, à bientôt\n", "utf-8"),      # mislabelled as UTF-8
    ("café", "x-bogus"),                              # unknown label
])
def test_short_western_text_without_a_usable_label(text, label):
    # Detectors guess poorly on a few accented letters among ASCII (cp1006, cp775, cp1250...).
    decoded, _, reason = decode(text.encode("cp1252"), label)
    assert decoded == text
    assert reason is not None


@pytest.mark.parametrize("label", ["utf\x008", "\x00", "\ud800", "undefined"])
def test_odd_labels_never_raise(label):
    # A NUL or lone surrogate makes codecs.lookup raise ValueError; 'undefined' raises UnicodeError.
    text, _, reason = decode(b"caf\xe9", label)
    assert text.startswith("caf")
    assert reason is not None


_LABELS = st.text(max_size=12)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200), label=st.one_of(st.none(), _LABELS, st.sampled_from(
    ["utf-8", "latin-1", "koi8-r", "utf-16", "utf-7", "iso-2022-jp", "shift_jis", "x-unknown",
     "undefined", "rot13", "base64", "utf\x008"])))
def test_decode_never_raises(data, label):
    text, used, reason = decode(data, label)
    assert isinstance(text, str)
    assert canonical(used) is not None
    assert reason in (None, "charset-guessed", "charset-replaced")
    if reason is None and not data:
        assert text == ""
