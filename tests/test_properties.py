"""Property-based tests of the per-message path (parse, clean, language, topics) and of threading.

Each stage may raise only its narrow error (the pipeline turns it into a rejection with a reason);
nothing else may escape, whatever the bytes. Threading terminates on reference loops, places
every message exactly once and needs no recursion, however deep the chain. Cleaning never
returns more text than it was given.
"""

from __future__ import annotations

import hashlib
import io
import re
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver import schema
from archiver.clean import normalise_subject, split_body
from archiver.errors import ParseError
from archiver.models import RawMessage, ThreadInput
from archiver.pipeline import STAGES, ingest_raws, prepare
from archiver.query import Archive
from archiver.thread import thread
from conftest import BACKENDS, on_backend

# Slow examples are the point here (MIME trees, charset detection): only the count is bounded.
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- mail-like bytes --------------------------------------------------------------------------
# Arbitrary bytes rarely get past "no headers"; these strategies write what mail software
# writes, and what it gets wrong: encoded words with odd charsets, raw 8-bit headers, broken
# transfer encodings, nested and unterminated MIME, mixed line ends.

CHARSETS = ["utf-8", "iso-8859-1", "us-ascii", "koi8-r", "windows-1256", "iso-2022-jp", "utf-16",
            "utf-7", "gb2312", "x-unknown", "", "\"", "utf-8\x00", "idna", "rot13", "base64",
            "hex", "zlib", "uu", "punycode", "unicode-escape", "raw-unicode-escape", "mbcs",
            "cp65001", "utf-8-sig", "utf-32", "latin1'", "us-ascii*en"]
ENCODINGS = ["base64", "quoted-printable", "7bit", "8bit", "binary", "x-uuencode", "uuencode",
             "bogus", ""]
TYPES = ["text/plain", "text/html", "text/enriched", "message/rfc822", "message/delivery-status",
         "application/octet-stream", "image/png", "multipart/mixed", "multipart/alternative",
         "multipart/related", "multipart/digest", "multipart/", "text", "/", ""]
NAMES = ["From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References", "Date",
         "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version",
         "Reply-To", "Sender", "List-Id", "X-Mailer"]

words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
raw_bytes = st.binary(max_size=40)


@st.composite
def encoded_words(draw) -> bytes:
    charset = draw(st.sampled_from(CHARSETS))
    kind = draw(st.sampled_from(["q", "b", "Q", "B", "x", ""]))
    payload = draw(st.one_of(st.text(alphabet="abcXYZ=_?+/09 \t", max_size=16), st.just("")))
    return f"=?{charset}?{kind}?{payload}?=".encode("utf-8", "surrogateescape")


@st.composite
def header_values(draw) -> bytes:
    pieces = draw(st.lists(st.one_of(
        words.map(lambda w: w.encode("utf-8")), raw_bytes, encoded_words(),
        st.sampled_from([b"<a@b>", b"<>", b"<<a@b>>", b"a at b (Name)", b'"Q, N" <q@n>', b"(((",
                         b"<x@y> <x@y>", b"Mon, 32 Foo 99999 25:61:61 +9999", b"@", b"\\",
                         b"Tue, 02 Oct 2012 10:00:00 +0200", b"; charset=", b"; boundary=",
                         b"; name*=utf-8''%e9%ZZ", b"; filename*0*=x", b'; boundary=""'])),
        max_size=5))
    sep = draw(st.sampled_from([b" ", b"\n ", b"\r\n\t", b""]))
    return sep.join(pieces)


@st.composite
def headers(draw, required: bool = True) -> bytes:
    lines = []
    if required and draw(st.booleans()):
        lines.append(b"From: Jane <jane@civil.example>")
        lines.append(b"Message-ID: <" + draw(st.sampled_from([b"a", b"b", b"c"])) + b"@civil.example>")
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.one_of(st.sampled_from(NAMES), st.text(alphabet="AZaz09-_:", min_size=1,
                                                               max_size=8)))
        lines.append(name.encode() + b":" + draw(header_values()))
    return b"\n".join(lines)


@st.composite
def bodies(draw, depth: int = 0) -> bytes:
    """A body: text with quotes and signatures, raw bytes, or a (possibly broken) MIME tree."""
    if depth < 3 and draw(st.integers(0, 3)) == 0:
        boundary = draw(st.sampled_from(["b", "==x==", "", " ", "b" * 80]))
        parts = []
        for _ in range(draw(st.integers(0, 4))):
            ctype = draw(st.sampled_from(TYPES))
            charset = draw(st.sampled_from(CHARSETS))
            cte = draw(st.sampled_from(ENCODINGS))
            sub = draw(bodies(depth + 1))
            head = (f"Content-Type: {ctype}; charset=\"{charset}\"; boundary=\"{boundary}{depth}\"\n"
                    f"Content-Transfer-Encoding: {cte}\n").encode("utf-8", "surrogateescape")
            if draw(st.booleans()):
                head += b"Content-Disposition: attachment; filename=" + draw(header_values()) + b"\n"
            parts.append(b"--" + boundary.encode() + b"\n" + head + b"\n" + sub)
        closing = draw(st.sampled_from([b"--" + boundary.encode() + b"--\n", b"", b"--\n"]))
        return b"\n".join(parts) + b"\n" + closing + draw(raw_bytes)
    return b"\n".join(draw(st.lists(st.one_of(
        words.map(lambda w: w.encode("utf-8")), raw_bytes,
        st.sampled_from([b"> quoted", b">> deeper", b"-- ", b"--", b"On Tue, Jane wrote:",
                         b"-----Original Message-----", b"From: x", b"Sent: y", b"Thanks,",
                         b"_" * 40, b"Mailing list http://x/mailman/listinfo/y", b"=E9=",
                         b"<html><body><blockquote>q</blockquote><a href='http://x'>l</a>",
                         b"begin 644 f", b"end", b"From something", b">From x",
                         b"-------------- next part --------------",
                         b"An HTML attachment was scrubbed...", b"URL: <http://x/a.html>",
                         b"\x00", b"\r", b"\x0c", b"\xef\xbb\xbf", b"=?utf-8?b?w6k=?="])),
        max_size=12)))


@st.composite
def messages(draw) -> bytes:
    top = draw(headers())
    mime = b""
    if draw(st.booleans()):
        ctype = draw(st.sampled_from(TYPES))
        mime = (f"\nMIME-Version: 1.0\nContent-Type: {ctype}; boundary=\"b0\"; "
                f"charset={draw(st.sampled_from(CHARSETS))}\n"
                f"Content-Transfer-Encoding: {draw(st.sampled_from(ENCODINGS))}").encode(
                    "utf-8", "surrogateescape")
    data = draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + top + mime + b"\n\n" + draw(bodies())
    ending = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    return data.replace(b"\n", ending) if ending != b"\n" else data


mail_bytes = st.one_of(st.binary(max_size=300), messages())


def run_stages(data: bytes):
    """Run the per-message stages in order, as prepare() does, but let every error out."""
    value = RawMessage(data=data, kind="eml", location="prop")
    for _name, stage in STAGES:
        value = stage(value)
    return value


def text_fields(message) -> list[str]:
    return [message.message_id, message.subject, message.subject_norm, message.from_name,
            message.from_address, message.body, message.own_text, message.quoted_text,
            message.signature, message.footer, message.language, message.in_reply_to or "",
            *message.references, *(a.filename or "" for a in message.attachments)]


@FAST
@given(data=mail_bytes)
def test_stages_raise_nothing_but_their_narrow_error(data):
    try:
        message = run_stages(data)
    except ParseError as exc:
        assert str(exc)
        return
    assert message.message_id and message.raw_sha256 == hashlib.sha256(data).hexdigest()
    parts = (message.own_text, message.quoted_text, message.signature, message.footer)
    assert sum(map(len, parts)) <= len(message.body)
    for text in text_fields(message):
        # The store writes UTF-8: a lone surrogate (an undecoded 8-bit byte) would fail the batch.
        text.encode("utf-8")


# How prepare() words a rejection that its safety net caught: "stage: ValueError: ...".
CAUGHT = re.compile(r"^\w+: \w+(?:Error|Exception|Warning|Exit|Interrupt)\b")


@FAST
@given(data=mail_bytes)
def test_prepare_stores_or_rejects_with_a_reason(data):
    entry = prepare(RawMessage(data=data, kind="eml", location="prop"), "sha")
    if entry.message is None:
        # Only the parse stage's own narrow error is a reason to reject; an exception caught
        # by the pipeline's safety net would mean a stage let something escape.
        assert entry.reason and entry.reason.startswith("parse: "), entry.reason
        assert not CAUGHT.match(entry.reason), entry.reason
    else:
        assert entry.reason is None


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """The stores of this module's ingest tests are in SQLite and on PostgreSQL."""
    return request.param


@pytest.fixture(scope="module", params=BACKENDS)
def shared_store(request, tmp_path_factory):
    from archiver.store import Store

    server = on_backend(request)
    url = (server.create_database() if server else
           f"sqlite:///{tmp_path_factory.mktemp('props') / 'props.sqlite3'}")
    store = Store(url)
    yield store
    store.close()
    if server:
        server.drop_database(url)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(mail_bytes, min_size=1, max_size=4))
def test_ingest_of_any_bytes_loses_nothing(shared_store, batch):
    raws = [RawMessage(data=data, kind="eml", location=f"prop#{i}") for i, data in enumerate(batch)]
    report = ingest_raws(shared_store, raws, "props", workers=1)
    assert report.seen == len(batch)
    assert report.stored + report.duplicates + report.unchanged + report.rejected == len(batch)
    assert sum(report.reasons.values()) == report.rejected
    for data in batch:
        # Stored, duplicate or rejected: the original bytes are kept, byte for byte.
        assert shared_store.raw_bytes(hashlib.sha256(data).hexdigest()) == data
    assert Archive(shared_store).stats()["messages"] >= report.stored


# --- cleaning ---------------------------------------------------------------------------------

def non_space(text: str) -> Counter:
    return Counter(ch for ch in text if not ch.isspace())


body_text = st.lists(st.one_of(
    words, st.sampled_from(["> quoted", "> > two", ">>> three", "-- ", "--", "On Tue, Jane wrote:",
                            "Jane <j@x> wrote:", "-----Original Message-----", "From: Jane",
                            "Sent: Tuesday", "To: list", "Thanks,", "Best regards,", "Jane",
                            "_" * 40, "bestbits mailing list", "https://x/mailman/listinfo/y",
                            "-------------- next part --------------", "Sent from my iPhone",
                            "", " ", "\r", "\t", "\u2028", "\x0c", "\x85", "Le mar., Jean a écrit :"])),
    max_size=30).map("\n".join)


@FAST
@given(body=st.one_of(body_text, st.text(max_size=300)))
def test_cleaning_never_returns_more_text_than_it_was_given(body):
    """own + quoted + signature + footer never hold more than the body. Cleaning normalises
    only whitespace (CRLF and CR to LF, trailing spaces and runs of blank lines dropped, the line
    breaks between parts not repeated), so lengths are compared after the same CR folding, and
    every non-space character out must have come in."""
    own, quoted, signature, footer = split_body(body)
    folded = body.replace("\r\n", "\n").replace("\r", "\n")
    assert len(own) + len(quoted) + len(signature) + len(footer) <= len(folded)
    assert non_space(own) + non_space(quoted) + non_space(signature) + non_space(footer) \
        <= non_space(body)


@FAST
@given(subject=st.one_of(words, st.text(max_size=80),
                         st.lists(st.sampled_from(["Re:", "RE :", "Fwd:", "[list]", "AW:", "x",
                                                   "[Fwd: y]", "Re[2]:", " "]),
                                  max_size=40).map(" ".join)))
def test_subject_normalising_never_adds_text(subject):
    norm, _ = normalise_subject(subject)
    assert len(norm) <= len(subject)
    assert non_space(norm) <= non_space(subject)


# --- threading --------------------------------------------------------------------------------

BASE = datetime(2012, 10, 2, tzinfo=timezone.utc)


@st.composite
def thread_inputs(draw) -> list[ThreadInput]:
    """Messages whose references point anywhere: at each other (loops, self-references), at
    missing messages, in any order, with duplicate ids and missing dates."""
    n = draw(st.integers(1, 30))
    ids = [f"m{i}" for i in range(n)]
    pool = ids + ["ghost1", "ghost2", "ghost3"]
    items = []
    for order in range(draw(st.integers(n, n + 3))):
        mid = ids[order] if order < n else draw(st.sampled_from(ids))   # duplicates at the end
        refs = tuple(draw(st.lists(st.sampled_from(pool), max_size=6)))
        hour = draw(st.one_of(st.none(), st.integers(0, 48)))
        items.append(ThreadInput(
            message_id=mid, refs=refs, subject_norm=draw(st.sampled_from(["A", "B", ""])),
            is_reply=draw(st.booleans()), date=None if hour is None else BASE + timedelta(hours=hour),
            order=order))
    return draw(st.permutations(items))


def assert_one_tree_per_thread(placements, items) -> None:
    placed = {}
    for p in placements:
        assert p.message_id not in placed, f"{p.message_id} placed twice"
        placed[p.message_id] = p
    # Never loses a message: every distinct id is placed once, as a real (not dummy) container.
    assert {p.message_id for p in placements if not p.dummy} == {i.message_id for i in items}
    for p in placements:
        # Every chain of parents ends at the root the placement names, at its depth: no loops.
        node, steps = p, 0
        while node.parent_id is not None:
            node = placed[node.parent_id]
            steps += 1
            assert steps <= len(placements), "parent chain loops"
        assert (node.message_id, steps) == (p.root_id, p.depth)
        assert node.thread_id == p.thread_id


@settings(max_examples=200, deadline=None)
@given(items=thread_inputs())
def test_threading_terminates_on_loops_and_loses_nothing(items):
    assert_one_tree_per_thread(thread(items), items)


def test_reference_loop_through_every_message_keeps_them_all():
    """a -> b -> c -> a, each naming the next as its parent, in References and In-Reply-To."""
    n = 1000
    items = [ThreadInput(message_id=f"m{i}", refs=(f"m{(i + 1) % n}",), subject_norm="loop",
                         is_reply=True, date=BASE, order=i) for i in range(n)]
    assert_one_tree_per_thread(thread(items), items)


# --- threading per batch ------------------------------------------------------------------------
# Per message: subject (two subjects, a post or a reply to it), day (or undated), hour, and
# references (to earlier messages of the case, or to a missing one).
mail_case = st.lists(st.tuples(st.sampled_from(["A", "Re: A", "Re: A", "B", "Re: B"]),
                               st.one_of(st.none(), st.integers(1, 4)), st.sampled_from([10, 11]),
                               st.lists(st.integers(-2, 30), max_size=2)),
                     min_size=2, max_size=14)
_cases = iter(range(10**9))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mail_case, seed=st.randoms(use_true_random=False), cuts=st.sets(st.integers(1, 13), max_size=5))
def test_threading_per_batch_equals_threading_at_once(shared_store, case, seed, cuts):
    """Whatever the messages (posts, replies with and without references, a reply dated before
    its root, undated ones, references to missing messages) and however they are split into
    batches and ordered, threading each batch as it is stored places every message in the
    thread that threading them all at once gives it."""
    from archiver.store import Entry

    tag = f"c{next(_cases)}"   # each example's ids and subjects, apart from the others' in the store
    ids = [f"{tag}.m{i}@x.example" for i in range(len(case))]
    mails = []
    for i, (subject, day, hour, refs) in enumerate(case):
        named = [ids[r] if 0 <= r < i else f"{tag}.gone{abs(r)}@x.example" for r in refs if r < i]
        head = f"From: Jane Doe <jane@x.example>\nMessage-ID: <{ids[i]}>\nSubject: {subject} {tag}\n"
        if day is not None:
            head += f"Date: Tue, {day:02d} Jan 2013 {hour}:00:00 +0000\n"
        if named:
            head += f"References: {' '.join(f'<{r}>' for r in named)}\nIn-Reply-To: <{named[-1]}>\n"
        data = (head + "\nBody.\n").encode()
        mails.append(prepare(RawMessage(data=data, kind="eml", location=f"{tag}#{i}"),
                             hashlib.sha256(data).hexdigest()))
    seed.shuffle(mails)
    bounds = [0, *sorted(c for c in cuts if c < len(mails)), len(mails)]
    for low, high in zip(bounds, bounds[1:]):
        batch: list[Entry] = mails[low:high]
        new_ids, _ = shared_store.write_batch("props", batch)
        shared_store.write_threads(thread(shared_store.thread_inputs(new_ids)))
    inputs = shared_store.thread_inputs(ids)
    at_once = {p.message_id: p.thread_id for p in thread(inputs) if not p.dummy}
    m = schema.messages.c
    with shared_store.engine.connect() as conn:
        stored = dict(conn.execute(select(m.message_id, m.thread_id).where(m.message_id.in_(ids))).all())
    assert stored == at_once


class LowRecursionLimit:
    """Run a block with a recursion limit of 200 (or 60 frames above the caller, where the test
    runner's own stack is deeper): recursion on a 100,000-deep input cannot fit."""

    def __enter__(self):
        self.saved = sys.getrecursionlimit()
        frame, depth = sys._getframe(), 0
        while frame is not None:
            frame, depth = frame.f_back, depth + 1
        sys.setrecursionlimit(max(200, depth + 60))
        return self

    def __exit__(self, *exc):
        sys.setrecursionlimit(self.saved)
        return False


@pytest.mark.parametrize("order", ["oldest-first", "newest-first", "refs-only-parent-missing"])
def test_hundred_thousand_deep_chain_threads_without_recursion(order):
    n = 100_000
    items = [ThreadInput(message_id=f"m{i}", refs=(f"m{i - 1}",) if i else (),
                         subject_norm="deep", is_reply=bool(i), date=BASE + timedelta(seconds=i),
                         order=i) for i in range(n)]
    if order == "newest-first":
        items.reverse()
    elif order == "refs-only-parent-missing":
        items = items[1:]           # the root is referenced but missing: a dummy, then pruned
    with LowRecursionLimit():
        placements = thread(items)
    assert len(placements) == len(items)
    last = {p.message_id: p for p in placements}[f"m{n - 1}"]
    assert last.depth == len(items) - 1
    assert len({p.thread_id for p in placements}) == 1


def test_low_recursion_limit_does_catch_recursion():
    def down(n):
        return n and down(n - 1)

    with LowRecursionLimit(), pytest.raises(RecursionError):
        down(1000)


# --- regressions: inputs these properties found -------------------------------------------------

def ingest_one(store, data: bytes):
    report = ingest_raws(store, [RawMessage(data=data, kind="eml", location="regression")],
                         "regressions", workers=1)
    assert report.seen == 1 and store.raw_bytes(hashlib.sha256(data).hexdigest()) == data
    return report, list(Archive(store).messages())


def test_broken_base64_encoded_word_does_not_crash_the_ingest(store):
    """decode_header raised HeaderParseError (no ValueError) out of the parse stage, and the
    pipeline's safety net let it through: one header stopped the whole ingest."""
    report, (record,) = ingest_one(store, b"From: =??b?/?=\nMessage-ID: <b64@x.example>\n\nHello.\n")
    assert report.stored == 1
    assert record["from_name"] == "=??b?/?=" and "bad-header-from" in record["degraded"]


@pytest.mark.parametrize("label", ["unicode-escape", "unicode\x01escape", "raw-unicode-escape",
                                   "punycode", "idna", "undefined", "base64", "rot13"])
def test_python_codecs_that_are_no_mail_charsets_are_refused(label):
    """An encoded word labelled unicode-escape read backslashes as code and warned (an error
    under -W error) out of the parse stage."""
    from archiver.charsets import canonical, decode
    from archiver.parse import parse_message

    assert canonical(label) is None
    # Not UTF-8, so the label would be tried next: the backslash stays a backslash.
    assert decode(b"caf\xe9 \\q", label)[0] == "café \\q"
    subject = f"=?{label}?b?Y2Fm6SBccQ==?=".encode()     # base64 of the bytes above
    message = parse_message(RawMessage(b"From: a@x.example\nSubject: " + subject + b"\n\nBody.\n",
                                       "eml", "label"))
    assert message.subject == "café \\q"


def test_html_the_parser_rejects_keeps_its_words(store):
    """html.parser rejects "<![ " (bs4 raised ParserRejectedMarkup out of the parse stage)."""
    from archiver.htmltext import html_to_text

    assert html_to_text("<p>Agreed, <b>see</b> &amp; sign <![ x</p>") == "Agreed, see & sign"
    report, (record,) = ingest_one(store, b"From: a@x.example\nMessage-ID: <html@x.example>\n"
                                          b"Content-Type: text/html\n\n<p>Agreed <![ x</p>\n")
    assert report.stored == 1 and record["own_text"].startswith("Agreed")
    assert "html-unparsed" in record["degraded"]


def test_from_with_deeply_nested_comments_is_stored_not_rejected(store):
    """The stdlib's address parser recursed once per '(' and the message was rejected with
    'parse: RecursionError'; now the header is read as words."""
    data = b"From: " + b"(" * 5000 + b"jane@x.example\nMessage-ID: <parens@x.example>\n\nHi.\n"
    report, (record,) = ingest_one(store, data)
    assert report.stored == 1 and report.rejected == 0
    assert record["own_text"] == "Hi."


def test_long_message_id_is_no_id():
    """An id longer than a header line can hold is garbage; the message gets a synthetic id."""
    from archiver.parse import parse_message

    data = b"From: a@x.example\nMessage-ID: <" + b"x" * 5000 + b"@x.example>\n\nHi.\n"
    message = parse_message(RawMessage(data, "eml", "long-id"))
    assert message.synthetic_id and "no-message-id" in message.degraded


def mbox_messages(data: bytes) -> list[RawMessage]:
    from archiver.sources.mbox import split_mbox

    return list(split_mbox(io.BytesIO(data), "box"))


def test_mbox_with_classic_mac_line_ends_is_split():
    """CR-only line ends made the whole file one line: it became the first message's envelope,
    and the message itself was empty (rejected, its bytes lost)."""
    one = b"From jane@x.example Tue Oct  2 10:00:00 2012\rFrom: jane@x.example\r" \
          b"Message-ID: <cr1@x.example>\r\rFirst.\r\r"
    two = one.replace(b"10:00", b"11:00").replace(b"cr1", b"cr2").replace(b"First", b"Second")
    raws = mbox_messages(one + two)
    assert [raw.location for raw in raws] == ["box#0", f"box#{len(one)}"]
    assert raws[0].data == one[one.index(b"\r") + 1:-1]
    from archiver.parse import parse_message

    assert [parse_message(raw).body.strip() for raw in raws] == ["First.", "Second."]


def test_mbox_of_one_long_line_is_content_not_an_envelope():
    """A file whose single line starts with 'From ' lost everything to the envelope."""
    data = b"From " + b"x" * 5000 + b" more words"
    (raw,) = mbox_messages(data)
    assert raw.data == data and raw.envelope is None


def test_blank_lines_before_the_first_separator_are_no_message():
    """They made a spurious empty message, rejected as 'empty message'."""
    data = b"\n\r\nFrom jane@x.example Tue Oct  2 10:00:00 2012\nFrom: jane@x.example\n\nHi.\n"
    (raw,) = mbox_messages(data)
    assert raw.data == b"From: jane@x.example\n\nHi.\n"
    # Anything else before it is still kept, as a message of its own.
    assert len(mbox_messages(b"stray words\n" + data)) == 2
