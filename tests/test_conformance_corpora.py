"""Conformance: whole third-party corpora through ingest, the mbox splitter and the parser.

notmuch's default and lkml corpora (maildir), bigbang's pipermail months and From-header forms,
the SpamAssassin ham corpus (2,405 single messages), and MimeKit's mboxes with exact byte
offsets and its tricky MIME messages. Everything is read in place from the realdata folder.
"""

from __future__ import annotations

import json
import re
import warnings
from collections import defaultdict
from pathlib import Path

import pytest

from archiver.clean import clean_message, normalise_subject
from archiver.errors import ParseError
from archiver.models import RawMessage
from archiver.parse import parse_from, parse_message
from archiver.pipeline import ingest
from archiver.query import Archive
from archiver.sources import read_source
from archiver.sources.mbox import split_mbox
from conftest import BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """The tests that ingest do so into a store in SQLite, then into one on PostgreSQL."""
    return request.param


# --- helpers ----------------------------------------------------------------------------------

def files_under(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file())


def records(store) -> list[dict]:
    return list(Archive(store).messages())


def by_thread(recs: list[dict]) -> dict[str, list[dict]]:
    threads: dict[str, list[dict]] = defaultdict(list)
    for rec in recs:
        threads[rec["thread_id"]].append(rec)
    return threads


def assert_nothing_lost(report, total: int) -> None:
    assert report.seen == total
    assert report.stored + report.duplicates + report.unchanged + report.rejected == total
    assert sum(report.reasons.values()) == report.rejected


def offsets(raws) -> list[int]:
    return [int(raw.location.rsplit("#", 1)[1]) for raw in raws]


# --- the ingest itself ------------------------------------------------------------------------

def test_ingest_emits_no_deprecation_warning(realdata, store):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        ingest(store, [str(realdata / "notmuch-corpora" / "broken" / "loop")], "loop")


# --- notmuch ----------------------------------------------------------------------------------

def _default_corpus(realdata) -> Path:
    return realdata / "notmuch-corpora" / "default"


def test_notmuch_default_corpus_is_52_messages_in_24_threads(realdata, store):
    """All 53 files (one a duplicate Message-ID) give 52 messages in 24 threads."""
    files = files_under(_default_corpus(realdata))
    assert len(files) == 53
    report = ingest(store, files, "notmuch")
    assert_nothing_lost(report, 53)
    assert (report.stored, report.duplicates, report.rejected) == (52, 1, 0)
    stats = Archive(store).stats()
    assert stats["messages"] == 52 and stats["threads"] == 24


def test_notmuch_default_corpus_threads_match_notmuch_search(realdata, store):
    """Per thread: normalised subject of its oldest message, message count, files (duplicates
    included), author names and newest date, as notmuch's 'search *' summary lists them."""
    summary = json.loads((realdata / "threading-expected" / "notmuch.json").read_text("utf-8"))
    expected = sorted(
        (normalise_subject(t["subject"])[0], t["messages"], t["files_incl_duplicates"],
         tuple(sorted(t["authors"])), t["newest_date"])
        for t in summary["default_corpus_thread_summary"]["threads"])
    ingest(store, files_under(_default_corpus(realdata)), "notmuch")
    ours = []
    for recs in by_thread(records(store)).values():
        oldest = min(recs, key=lambda r: r["date"])
        ours.append((normalise_subject(oldest["subject"])[0], len(recs),
                     sum(len(r["sources"]) for r in recs), tuple(sorted({r["from_name"] for r in recs})),
                     max(r["date"] for r in recs)[:10]))
    assert sorted(ours) == expected


def test_notmuch_default_corpus_folder_is_read_whole(realdata, store):
    report = ingest(store, [str(_default_corpus(realdata))], "notmuch")
    assert report.seen == 53 and report.stored == 52


def test_notmuch_lkml_corpus_keeps_176_unique_of_210(realdata, store):
    report = ingest(store, [str(realdata / "notmuch-corpora" / "lkml")], "lkml")
    assert_nothing_lost(report, 210)
    assert (report.stored, report.duplicates) == (176, 34)


# --- bigbang: pipermail months ----------------------------------------------------------------

def _bigbang(realdata, name: str) -> str:
    return str(realdata / "bigbang" / name)


def test_bigbang_month_with_every_message_twice_stores_82(realdata, store):
    report = ingest(store, [_bigbang(realdata, "2001-November.txt")], "numpy")
    assert_nothing_lost(report, 164)
    assert (report.stored, report.duplicates, report.rejected) == (82, 82, 0)
    assert Archive(store).stats()["messages"] == 82


def test_bigbang_month_reingested_is_all_unchanged(realdata, store):
    month = _bigbang(realdata, "2001-November.txt")
    ingest(store, [month], "numpy")
    again = ingest(store, [month], "numpy")
    assert (again.seen, again.unchanged, again.stored, again.duplicates) == (164, 164, 0, 0)
    assert again.rethreaded == 0
    assert Archive(store).stats()["messages"] == 82


def test_bigbang_dev_month_threads_are_3_1_2(realdata, store):
    ingest(store, [_bigbang(realdata, "bigbang-dev-test.txt")], "bigbang-dev")
    recs = records(store)
    assert len(recs) == 6
    threads = sorted(by_thread(recs).values(), key=lambda rs: min(r["date"] for r in rs))
    assert [len(t) for t in threads] == [3, 1, 2]
    assert [r["depth"] for r in threads[0]] == [0, 1, 2]


def test_bigbang_dev_scrubbed_html_stub_becomes_an_attachment(realdata, store):
    """Pipermail's 'An HTML attachment was scrubbed... URL: <...>' stub is an attachment with its
    URL, not words of the message."""
    ingest(store, [_bigbang(realdata, "bigbang-dev-test.txt")], "bigbang-dev")
    recs = records(store)
    for rec in recs:
        urls = [a["url"] for a in rec["attachments"] if a.get("url")]
        assert len(urls) == 1 and "/pipermail/bigbang-dev/attachments/" in urls[0], rec["message_id"]
        assert rec["attachments"][0]["content_type"] == "text/html"
        for leftover in ("scrubbed", "next part", "URL:", "attachment.html"):
            assert leftover not in rec["own_text"], (rec["message_id"], rec["own_text"])
    assert [r["own_text"] for r in recs][:2] == ["this is a test",
                                                  "this is a reply to the earlier test message"]
    assert recs[-1]["own_text"] == "thanks!"


# --- bigbang: From-header forms ---------------------------------------------------------------

NOT_HELD = None  # the file's line gives no clear expectation for this part
# Each line of from-header-variations.txt -> (name, address). Pipermail writes "x at y (Name)";
# addresses ending in "...." were truncated by the archive page and cannot be held.
FROM_LINES = {
    "tyrion.lannister at gmail.com (Tyrion Lannister)": ("Tyrion Lannister", "tyrion.lannister@gmail.com"),
    "Tyrion.Lannister at gmail.com (Tyrion Lannister)": ("Tyrion Lannister", "tyrion.lannister@gmail.com"),
    "Tyrion.Lannister at gmail.com (Tyrion.Lannister@gmail.com)": (NOT_HELD, "tyrion.lannister@gmail.com"),
    "Tyrion.Lannister@gmail.com (Tyrion Lannister)": ("Tyrion Lannister", "tyrion.lannister@gmail.com"),
    "Tyrion.Lannister@gmail.... (Tyrion Lannister)": ("Tyrion Lannister", NOT_HELD),
    "Tyrion.Lannister@gmail.com": ("", "tyrion.lannister@gmail.com"),
    "Tyrion.Lannister at gmail.com (Tyrion)": ("Tyrion", "tyrion.lannister@gmail.com"),
    "Tyrion.Lannister at gmail.com (Tyrion.Lannister at gmail.com)": (NOT_HELD, "tyrion.lannister@gmail.com"),
    "tyrion at lanister.net (Tyrion Lannister)": ("Tyrion Lannister", "tyrion@lanister.net"),
    "halfman@council.kings-landing.gov (Tyrion Lannister)": ("Tyrion Lannister", "halfman@council.kings-landing.gov"),
    "halfman@council.kings-landing.gov (Tyrion Lannister, Hand of the King)":
        ("Tyrion Lannister, Hand of the King", "halfman@council.kings-landing.gov"),
    "halfman@council.kings-landing.gov (halfman@council.kings-landing.gov)":
        (NOT_HELD, "halfman@council.kings-landing.gov"),
    "tyrion+hand at lanister.net (Tyrion Lannister)": ("Tyrion Lannister", "tyrion+hand@lanister.net"),
    "tyrion.lannister at gmail.com (=?UTF-8?B?RGF2aWQgQWJpw6Fu?=)": ("David Abián", "tyrion.lannister@gmail.com"),
    '"Tyrion Lannister" <Tyrion.Lannister@gmail.com>': ("Tyrion Lannister", "tyrion.lannister@gmail.com"),
    "catelyn.stark at gmail.com (Catelyn Stark)": ("Catelyn Stark", "catelyn.stark@gmail.com"),
    "catelyn.tully.stark at gmail.com (Catelyn Tully Stark)": ("Catelyn Tully Stark", "catelyn.tully.stark@gmail.com"),
    "catelyn at stark.winterfell.gov (Catelyn T. Stark)": ("Catelyn T. Stark", "catelyn@stark.winterfell.gov"),
    "catelyn at stark.winterfell.gov (Stark, Catelyn T.)": ("Stark, Catelyn T.", "catelyn@stark.winterfell.gov"),
    "catelyn@stark.winterfell.... (Catelyn T. Stark)": ("Catelyn T. Stark", NOT_HELD),
    "catelyn@stark.winterfell.... (catelyn@stark.winterfell)": (NOT_HELD, NOT_HELD),
    "catelyntstark at hotmail.com (C. Stark)": ("C. Stark", "catelyntstark@hotmail.com"),
    '"Catelyn T. Stark" <catelyn at stark.winterfell.gov>': ("Catelyn T. Stark", "catelyn@stark.winterfell.gov"),
    "Catylen Tully Stark <catelyn.tully.stark at gmail.com>": ("Catylen Tully Stark", "catelyn.tully.stark@gmail.com"),
    "spidey_sense at council.kings-landing.gov (Lord Varys)": ("Lord Varys", "spidey_sense@council.kings-landing.gov"),
    "spidey_sense@council.kings-landing.gov (spidey_sense@council.kings-landing.gov)":
        (NOT_HELD, "spidey_sense@council.kings-landing.gov"),
    "snow.john at knightswatch.com (John Snow)": ("John Snow", "snow.john@knightswatch.com"),
    "snow.john at knightswatch.com (J. Snow)": ("J. Snow", "snow.john@knightswatch.com"),
    "john.snow at stark.winterfell.gov (John)": ("John", "john.snow@stark.winterfell.gov"),
    "SerJorah at gmail.com (SerJorah)": ("SerJorah", "serjorah@gmail.com"),
    "SerJorah at gmail.com (Jorah)": ("Jorah", "serjorah@gmail.com"),
    "jmormont at hotmail.com (Jorah Mormont)": ("Jorah Mormont", "jmormont@hotmail.com"),
    "jorah.mormont at dothraki.edu (JM)": ("JM", "jorah.mormont@dothraki.edu"),
    "aria at stark.winterfell.gov (Aria Stark)": ("Aria Stark", "aria@stark.winterfell.gov"),
    "ariastark1 at gmail.com (Aria)": ("Aria", "ariastark1@gmail.com"),
    "ariastark1@gmail.... (ariastark1@gmail.com)": (NOT_HELD, NOT_HELD),
    'brynden.tully at gmail.com (Brynden "Blackfish" Tully)': ('Brynden "Blackfish" Tully', "brynden.tully@gmail.com"),
    "starly at gmail.com (Samwell TARLY)": ("Samwell TARLY", "starly@gmail.com"),
    "starly at knightswatch.com (Samwell Tarly)": ("Samwell Tarly", "starly@knightswatch.com"),
    "rstarkwolf at north.mil (Rob J. Stark)": ("Rob J. Stark", "rstarkwolf@north.mil"),
    "rstarkwolf@gmail.... (Rob J. Stark)": ("Rob J. Stark", NOT_HELD),
    "rstarkwolf@yahoo.... (Rob Stark)": ("Rob Stark", NOT_HELD),
}


def test_from_header_variations_are_all_covered(realdata):
    lines = [line.rstrip("\n") for line in
             (realdata / "bigbang" / "from-header-variations.txt").read_text("utf-8").splitlines()]
    assert [line for line in lines if line] == list(FROM_LINES)


@pytest.mark.parametrize("line", list(FROM_LINES))
def test_from_header_variation_gives_name_and_address(realdata, line):
    assert line in (realdata / "bigbang" / "from-header-variations.txt").read_text("utf-8")
    name, address = parse_from(line)
    want_name, want_address = FROM_LINES[line]
    if want_name is not NOT_HELD:
        assert name == want_name
    if want_address is not NOT_HELD:
        assert address == want_address
    assert " " not in address


def parse_tiny_yaml(text: str) -> list[tuple[str, list]]:
    """The subset of YAML address_header_test_file.yaml uses: quoted top-level keys, each a list
    of scalars ('quoted', bare or null) or of single-key maps holding such lists."""
    def scalar(token: str):
        token = token.strip()
        if token == "null":
            return None
        if token.startswith("'") and token.endswith("'"):
            return token[1:-1].replace("''", "'")
        return token

    entries: list[tuple[str, list]] = []
    nested: list | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            entries.append((scalar(line.rstrip()[:-1]), []))
            nested = None
        elif re.match(r"^  - \d+:$", line):
            nested = []
            entries[-1][1].append(nested)
        elif line.startswith("    - ") and nested is not None:
            nested.append(scalar(line[6:]))
        elif line.startswith("  - "):
            entries[-1][1].append(scalar(line[4:]))
        else:
            raise ValueError(f"unexpected line: {line!r}")
    return entries


# A q-encoded name decodes to real text; a b-encoded one was lowercased by the file and is
# garbage once decoded, so only its address is held.
YAML_DECODED_NAMES = {5: "fredrik sundström", 7: NOT_HELD}


def _yaml_entries(realdata) -> list[tuple[str, list]]:
    return parse_tiny_yaml((realdata / "bigbang" / "address_header_test_file.yaml").read_text("utf-8"))


def test_address_header_yaml_has_the_ten_cases_parsed_here(realdata):
    entries = _yaml_entries(realdata)
    assert len(entries) == 10
    assert all(len(values) == 3 for _, values in entries[:9])
    assert len(entries[9][1]) == 3 and all(len(v) == 3 for v in entries[9][1])


@pytest.mark.parametrize("index", range(10))
def test_address_header_yaml_case(realdata, index):
    header, values = _yaml_entries(realdata)[index]
    if isinstance(values[0], list):     # several addresses: the first is the sender
        values = [None, *values[0][1:]]
    want_name, local, domain = values
    name, address = parse_from(header)
    if local is None:
        assert address == ""            # nothing there to be found: none is made up
    else:
        assert address == f"{local}@{domain}"
    want_name = YAML_DECODED_NAMES.get(index, want_name)
    if want_name is not None and want_name is not NOT_HELD:
        assert name.lower() == want_name


# --- SpamAssassin ham (jwz-go test data) ------------------------------------------------------

def test_spamassassin_ham_no_message_lost_and_raw_bytes_round_trip(realdata, store):
    folder = realdata / "jwz-go-spamassassin-ham"
    report = ingest(store, [str(folder)], "ham")
    assert_nothing_lost(report, 2405)
    archive = Archive(store)
    assert archive.stats()["messages"] == report.stored
    assert len(archive.rejected()) == report.rejected
    assert all(r["reason"] for r in archive.rejected())
    recs = records(store)
    assert len(recs) == report.stored
    for rec in recs[::40]:  # a spread sample of about 60
        source = rec["sources"][0]["location"]
        assert archive.raw(rec["message_id"]) == Path(source).read_bytes(), source


# --- MimeKit: mbox offsets, unescaped From lines, tricky MIME ----------------------------------

MBOXES = ["content-length", "issue1189"]


@pytest.mark.parametrize("name", MBOXES)
def test_mimekit_mbox_offsets_match_lf(realdata, name):
    folder = realdata / "mimekit-testdata" / "mbox"
    expected = [m["mboxMarkerOffset"] for m in json.loads((folder / f"{name}.unix-offsets.json").read_text())]
    raws = list(read_source(str(folder / f"{name}.mbox.txt"), []))
    assert offsets(raws) == expected


@pytest.mark.parametrize("name", MBOXES)
def test_mimekit_mbox_offsets_match_crlf_copy(realdata, tmp_path, name):
    """Only the LF files exist: the CRLF variant is built in a temporary file."""
    folder = realdata / "mimekit-testdata" / "mbox"
    data = (folder / f"{name}.mbox.txt").read_bytes()
    assert b"\r\n" not in data
    crlf = tmp_path / f"{name}.crlf.mbox"
    crlf.write_bytes(data.replace(b"\n", b"\r\n"))
    expected = [m["mboxMarkerOffset"] for m in json.loads((folder / f"{name}.dos-offsets.json").read_text())]
    assert offsets(read_source(str(crlf), [])) == expected


@pytest.mark.parametrize("name", MBOXES)
def test_mimekit_mbox_messages_match_summary_subjects(realdata, name):
    """One parsed message per summary entry, with its subject (runs of spaces compared folded:
    our subjects are whitespace-normalised)."""
    folder = realdata / "mimekit-testdata" / "mbox"
    summary = [" ".join(line[len("Subject: "):].split()) for line in
               (folder / f"{name}-summary.txt").read_text("utf-8").splitlines() if line.startswith("Subject: ")]
    with open(folder / f"{name}.mbox.txt", "rb") as stream:
        subjects = [parse_message(raw).subject for raw in split_mbox(stream, name)]
    assert subjects == summary


def test_mimekit_unmunged_from_body_line_does_not_split(realdata):
    """'From Russia with love' in a body is not a separator: the mbox holds exactly 2 messages."""
    path = realdata / "mimekit-testdata" / "mbox" / "unmunged.mbox.txt"
    raws = list(read_source(str(path), []))
    assert len(raws) == 2
    first, second = (parse_message(raw) for raw in raws)
    assert first.subject == "This is a test message with an unmunged From line"
    assert second.subject == "Another test message with an unmunged From line"
    assert "From Russia with love\n\nWhat does Thunderbird do?" in first.body
    assert "From Russia with love\nYear: 1963" in second.body
    assert second.body.rstrip().endswith("What did Thunderbird do this time?")


MIMEKIT_MESSAGES = [
    "body.1.txt", "body.2.txt", "body.3.txt", "body.4.txt", "body.5.txt", "body.6.txt", "body.7.txt",
    "body.8.txt", "body.9.txt", "bounce.txt", "delivery-status-multiple-blank-lines.txt",
    "delivery-status-no-blank-line.txt", "delivery-status.anonymized.eml", "delivery-status.txt",
    "delivery-status2.txt", "disposition-notification.anonymized.eml", "disposition-notification.txt",
    "empty-multipart.txt", "epilogue.txt", "feedback-report.txt", "issue1130.txt", "issue358.txt",
    "japanese.txt", "missing-subtype.txt", "multipart-digest.txt", "multipart-related-mhtml.txt",
    "rfc2060.txt", "simple-embedded-message.anonymized.eml", "simple-embedded-message.eml",
    "simple-multipart.anonymized.eml", "simple-multipart.eml", "stack-overflow.txt",
]


def _mimekit_message(realdata, name: str) -> Path:
    return realdata / "mimekit-testdata" / "messages" / name


def test_mimekit_messages_are_all_covered(realdata):
    assert sorted(p.name for p in (realdata / "mimekit-testdata" / "messages").iterdir()) == MIMEKIT_MESSAGES


@pytest.mark.parametrize("name", MIMEKIT_MESSAGES)
def test_mimekit_tricky_message_parses_or_is_rejected_with_a_reason(realdata, name):
    raws = list(read_source(str(_mimekit_message(realdata, name)), []))
    assert len(raws) == 1
    try:
        msg = clean_message(parse_message(raws[0]))
    except ParseError as exc:       # the only way a message may fail: a reason, never a crash
        assert str(exc)
        return
    assert msg.message_id and msg.raw_sha256


def test_mimekit_tricky_messages_folder_ingests_without_loss(realdata, store):
    report = ingest(store, [str(realdata / "mimekit-testdata" / "messages")], "mimekit")
    assert_nothing_lost(report, 32)
    # Four files repeat a Message-ID already stored (delivery-status*.txt share one, three
    # simple-*/empty-multipart files another, the two anonymized copies a third).
    assert (report.stored, report.duplicates, report.rejected) == (28, 4, 0)
    assert all(r["reason"] for r in Archive(store).rejected())


def test_mimekit_stack_overflow_header_parses(realdata):
    msg = parse_message(RawMessage(_mimekit_message(realdata, "stack-overflow.txt").read_bytes(),
                                   "eml", "stack-overflow.txt"))
    assert msg.message_id == "aasfasdfasdfa@bb"
    assert msg.body.strip() == "Message Body"


def _nested(depth: int, open_part, close_part, leaf: str) -> bytes:
    head = "From: a@example.org\nMessage-ID: <deep@example.org>\nSubject: deep\nMIME-Version: 1.0\n"
    body = "".join(open_part(i) for i in range(depth)) + leaf + "".join(close_part(i) for i in reversed(range(depth)))
    return (head + body).encode()


@pytest.mark.parametrize("kind", ["multipart", "message/rfc822"])
def test_deeply_nested_mime_is_kept_without_recursion_error(kind):
    """Thousands of nested parts: parsing falls back to the headers and says so, never raises."""
    if kind == "multipart":
        data = _nested(3000, lambda i: f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n',
                       lambda i: f"--b{i}--\n", "Content-Type: text/plain\n\ninnermost\n")
    else:
        data = _nested(2000, lambda i: "Content-Type: message/rfc822\n\nFrom: x@example.org\n",
                       lambda i: "", "Content-Type: text/plain\n\ninnermost\n")
    msg = clean_message(parse_message(RawMessage(data, "eml", "deep")))
    assert msg.message_id == "deep@example.org"
    assert "mime-too-deep" in msg.degraded


def test_deeply_nested_html_flattens_without_recursion_error():
    html = "<html><body>" + "<div>" * 5000 + "deep words" + "</div>" * 5000 + "</body></html>"
    data = ("From: a@example.org\nMessage-ID: <html@example.org>\nContent-Type: text/html\n\n" + html).encode()
    assert clean_message(parse_message(RawMessage(data, "eml", "deep-html"))).own_text == "deep words"


def test_mimekit_japanese_iso_2022_jp_is_decoded(realdata):
    msg = parse_message(RawMessage(_mimekit_message(realdata, "japanese.txt").read_bytes(), "eml", "japanese.txt"))
    assert msg.subject == "日本語メールテスト (testing Japanese emails)"
    assert "日本語が\n正常に\n送れているか\nテスト." in msg.body
    assert "\x1b" not in msg.body


def test_mimekit_mhtml_doctype_is_not_text(realdata):
    msg = clean_message(parse_message(RawMessage(
        _mimekit_message(realdata, "multipart-related-mhtml.txt").read_bytes(), "eml", "mhtml")))
    assert msg.own_text == "def"
