"""Tests of the synthetic archive generator (fixtures/generate.py) and of the committed sample."""

import gzip
import html
import importlib.util
import json
import re
import time
from collections import Counter
from datetime import timezone
from email import message_from_bytes
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime, parsedate_tz
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "fixtures" / "sample"
LISTS = ("bestbits", "governance")
TOPICS = {
    "ig-history", "itu-itrs", "rights-principles", "enhanced-cooperation",
    "wcit-statement", "igf-principles", "cs-network", "logistics",
}
QUIRKS = {
    "obfuscated-address-in-body", "rfc2047-name", "mboxrd-quoted-from", "unescaped-from-line",
    "html-only", "reply-gmail", "reply-outlook", "reply-thunderbird", "reply-apple", "reply-french",
    "reply-spanish", "reply-portuguese", "reply-custom", "top-posting", "bottom-posting",
    "inline-reply", "sig-dashes", "sig-informal", "list-footer", "missing-message-id", "duplicate",
    "bad-date", "your-message-of", "cross-month-references", "subject-changed", "prefixes",
    "reference-loop", "sign-on", "cross-post", "non-utf8-charset", "no-reference-headers-same-subject",
}
# A pipermail separator: "From user at host  Tue Oct  2 10:00:00 2012" after a blank line.
FROM_LINE = re.compile(
    rb"From \S+ at \S+  (Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
    rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d \d{4}$")
ADDRESS = re.compile(r"([\w.+-]+)@([\w-]+(?:\.[\w-]+)+)")


def load_generator():
    path = ROOT / "fixtures" / "generate.py"
    spec = importlib.util.spec_from_file_location("bestbits_fixture_generate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator():
    return load_generator()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, generator):
    out = tmp_path_factory.mktemp("fresh")
    generator.main(["--out", str(out)])
    return out


@pytest.fixture(scope="module")
def truth():
    with open(SAMPLE / "truth.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def entries():
    """Every message entry of every month text of the sample: (list, month, raw bytes)."""
    found = []
    for lst in LISTS:
        for path in sorted((SAMPLE / lst).glob("*.txt*")):
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            month = path.name.split(".")[0]
            found.extend((lst, month, chunk) for chunk in split_month(data))
    return found


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def split_month(data: bytes) -> list[bytes]:
    """Split a pipermail month on From_ lines that follow a blank line, nothing else."""
    chunks, current, blank = [], None, True
    for line in data.split(b"\n"):
        if blank and FROM_LINE.match(line):
            if current is not None:
                chunks.append(b"\n".join(current))
            current = [line]
        elif current is not None:
            current.append(line)
        blank = line == b""
    if current is not None:
        chunks.append(b"\n".join(current))
    return chunks


def header(msg, name: str) -> str | None:
    value = msg[name]
    if value is None:
        return None
    return str(make_header(decode_header(re.sub(r"\r?\n", "", str(value)))))


def month_of(url: str) -> str:
    return url.rsplit("/", 2)[1]


def normalise(text: str) -> str:
    return " ".join(text.split())


# -- determinism -------------------------------------------------------------------


def test_generation_is_byte_identical(tmp_path, generator, fresh):
    generator.main(["--out", str(tmp_path)])
    assert tree(tmp_path) == tree(fresh)


def test_committed_sample_matches_a_fresh_generation(fresh):
    committed, expected = tree(SAMPLE), tree(fresh)
    differing = sorted(k for k in committed.keys() | expected.keys() if committed.get(k) != expected.get(k))
    assert not differing, f"fixtures/sample is stale; rerun fixtures/generate.py: {differing[:10]}"


def test_gzip_headers_carry_no_time_and_a_fixed_name():
    for path in (SAMPLE / "bestbits").glob("*.txt.gz"):
        head = path.read_bytes()[:32]
        assert head[4:8] == b"\0\0\0\0"
        assert head[10:].startswith(path.name[:-3].encode() + b"\0")


# -- sample shape ------------------------------------------------------------------


def test_sample_counts(truth):
    per_list = Counter(lst for r in truth for lst in r["lists"])
    threads = {(lst, r["thread_root_id"]) for r in truth for lst in r["lists"]}
    assert per_list["bestbits"] >= 400
    assert 40 <= per_list["governance"] <= 60
    assert sum(1 for lst, _ in threads if lst == "bestbits") >= 60
    assert len({r["from_address"] for r in truth}) >= 40
    assert len({r["organisation"] for r in truth if r["organisation"]}) >= 25
    assert any(r["organisation"] is None for r in truth)
    languages = Counter(r["language"] for r in truth)
    assert min(languages["fr"], languages["es"], languages["pt"]) >= 15
    assert min(languages["ru"], languages["ar"]) >= 3
    assert len({r["language"] for r in truth if "sign-on" in r["quirks"]}) >= 3
    dates = sorted(r["date"] for r in truth)
    assert dates[0] >= "2012-10-01" and dates[-1] < "2013-01-01"


def test_every_topic_has_several_threads_and_some_chatter_has_none(truth):
    threads_per_topic = Counter()
    for topic in TOPICS:
        threads_per_topic[topic] = len({r["thread_root_id"] for r in truth if topic in r["topics"]})
    assert min(threads_per_topic.values()) >= 3, threads_per_topic
    assert all(set(r["topics"]) <= TOPICS for r in truth)
    assert any(not r["topics"] for r in truth)


def test_every_quirk_occurs_and_no_other(truth):
    seen = Counter(q for r in truth for q in r["quirks"])
    assert set(seen) == QUIRKS, QUIRKS ^ set(seen)


def test_participants_file(truth):
    people = json.loads((SAMPLE / "participants.json").read_text(encoding="utf-8"))
    assert {p["address"] for p in people} >= {r["from_address"] for r in truth}
    assert all(p["address"].endswith(".example") for p in people)


# -- the text archive --------------------------------------------------------------


def test_months_split_into_the_expected_message_counts(truth, entries):
    expected = Counter()
    for r in truth:
        for lst, url in r["archive_urls"].items():
            expected[(lst, month_of(url))] += 2 if "duplicate" in r["quirks"] else 1
    assert Counter((lst, month) for lst, month, _ in entries) == expected


def test_entries_parse_and_agree_with_the_truth(truth, entries):
    by_id = {r["message_id"]: r for r in truth if r["message_id"]}
    missing = Counter()
    for lst, _, chunk in entries:
        msg = message_from_bytes(chunk.split(b"\n", 1)[1])
        assert set(msg.keys()) <= {"From", "Date", "Subject", "In-Reply-To", "References", "Message-ID"}
        if msg["Message-ID"] is None:
            missing[lst] += 1
            continue
        record = by_id[msg["Message-ID"].strip("<>")]
        name = re.fullmatch(r"(\S+) at (\S+) \((.*)\)", header(msg, "From"))
        assert f"{name[1]}@{name[2]}" == record["from_address"]
        assert name[3] == record["from_name"]
        if lst == record["lists"][0]:
            assert header(msg, "Subject") == record["subject"]
        assert lst in record["lists"]
    assert sum(missing.values()) == sum(
        len(r["lists"]) for r in truth if "missing-message-id" in r["quirks"])


def test_dates_parse_unless_broken_on_purpose(truth, entries):
    by_id = {r["message_id"]: r for r in truth if r["message_id"]}
    for _, _, chunk in entries:
        msg = message_from_bytes(chunk.split(b"\n", 1)[1])
        record = by_id.get((msg["Message-ID"] or "").strip("<>"))
        if record is None:
            continue
        if "bad-date" in record["quirks"]:
            assert parsedate_tz(msg["Date"]) is None
        else:
            utc = parsedate_to_datetime(msg["Date"]).astimezone(timezone.utc)
            assert utc.strftime("%Y-%m-%dT%H:%M:%SZ") == record["date"]


def test_body_from_lines_are_the_recorded_quirks(truth, entries):
    by_id = {r["message_id"]: r for r in truth}
    for _, _, chunk in entries:
        msg = message_from_bytes(chunk.split(b"\n", 1)[1])
        quirks = by_id[msg["Message-ID"].strip("<>") if msg["Message-ID"] else None]["quirks"]
        body = chunk.split(b"\n\n", 1)[1]
        lines = body.split(b"\n")
        if any(line.startswith(b"From ") for line in lines):
            assert "unescaped-from-line" in quirks
        if any(line.startswith(b">From ") for line in lines):
            assert "mboxrd-quoted-from" in quirks


def test_own_text_is_in_the_body(truth, entries):
    """The truth's own words are what the archive shows, once quoting and escaping are undone."""
    by_id = {r["message_id"]: r for r in truth if r["message_id"]}
    for _, _, chunk in entries:
        msg = message_from_bytes(chunk.split(b"\n", 1)[1])
        record = by_id.get((msg["Message-ID"] or "").strip("<>"))
        if record is None or {"html-only", "inline-reply"} & set(record["quirks"]):
            continue
        body = chunk.split(b"\n\n", 1)[1].decode(record["charset"])
        body = re.sub(r"^>(>*From )", r"\1", body, flags=re.M)
        assert normalise(ADDRESS.sub(r"\1 at \2", record["own_text"])) in normalise(body)
        if record["signature"]:
            assert normalise(ADDRESS.sub(r"\1 at \2", record["signature"])) in normalise(body)


ATTRIBUTIONS = {
    "reply-gmail": "wrote:", "reply-thunderbird": "wrote:", "reply-apple": "wrote:",
    "reply-custom": " wrote [", "reply-french": "a écrit :", "reply-spanish": "escribió:",
    "reply-portuguese": "escreveu:", "reply-outlook": "-----",
}


def test_reply_and_footer_quirks_are_visible_in_the_body(truth, entries):
    by_id = {r["message_id"]: r for r in truth if r["message_id"]}
    for lst, _, chunk in entries:
        msg = message_from_bytes(chunk.split(b"\n", 1)[1])
        record = by_id.get((msg["Message-ID"] or "").strip("<>"))
        if record is None or "html-only" in record["quirks"]:
            continue
        body = chunk.split(b"\n\n", 1)[1].decode(record["charset"])
        for quirk, marker in ATTRIBUTIONS.items():
            if quirk in record["quirks"]:
                assert marker in body, (quirk, record["key"])
        if {"bottom-posting", "inline-reply"} & set(record["quirks"]):
            assert "\n> " in body
        if "list-footer" in record["quirks"]:
            assert body.rstrip().endswith((f"/listinfo/{lst}", f"/options/{lst}"))


def test_non_utf8_bodies_are_raw_bytes_in_their_charset(truth, entries):
    charsets = Counter(r["charset"] for r in truth if "non-utf8-charset" in r["quirks"])
    assert {"iso-8859-1", "windows-1252", "koi8-r", "windows-1256"} <= set(charsets)
    by_id = {r["message_id"]: r for r in truth if r["message_id"]}
    for _, _, chunk in entries:
        msg = message_from_bytes(chunk.split(b"\n", 1)[1])
        record = by_id.get((msg["Message-ID"] or "").strip("<>"))
        if record and "non-utf8-charset" in record["quirks"] and "html-only" not in record["quirks"]:
            body = chunk.split(b"\n\n", 1)[1]
            with pytest.raises(UnicodeDecodeError):
                body.decode("utf-8")


def test_header_quirks_look_as_recorded(truth, entries):
    by_id = {r["message_id"]: r for r in truth if r["message_id"]}
    variants = set()
    for _, _, chunk in entries:
        msg = message_from_bytes(chunk.split(b"\n", 1)[1])
        record = by_id.get((msg["Message-ID"] or "").strip("<>"))
        if record is None:
            continue
        quirks = record["quirks"]
        if "no-reference-headers-same-subject" in quirks:
            assert msg["In-Reply-To"] is None and msg["References"] is None
            assert header(msg, "Subject").lower().startswith(("re:", "aw:", "res:", "["))
        if "your-message-of" in quirks:
            assert msg["In-Reply-To"].startswith("Your message of")
            variants.add("<" in msg["In-Reply-To"])
        if "rfc2047-name" in quirks:
            assert "=?" in msg["From"]
        if "reference-loop" in quirks:
            assert msg["References"] or msg["In-Reply-To"]
    assert variants == {True, False}


def test_prefix_forms(truth):
    subjects = [r["subject"] for r in truth]
    for prefix in ("Re: ", "RE: ", "Fwd: ", "TR: ", "RES: ", "AW: ", "Re: [bestbits] Re: "):
        assert any(prefix in s for s in subjects), prefix


def test_reference_loops_are_cycles(truth, entries):
    refs = {}
    for _, _, chunk in entries:
        msg = message_from_bytes(chunk.split(b"\n", 1)[1])
        if msg["Message-ID"]:
            ids = re.findall(r"<([^>]+)>", f"{msg['In-Reply-To'] or ''} {msg['References'] or ''}")
            refs[msg["Message-ID"].strip("<>")] = set(ids)
    looped = [r["message_id"] for r in truth if "reference-loop" in r["quirks"]]
    for start in looped:
        seen, todo = set(), [start]
        while todo:  # follow references among the loop's members only
            for ref in refs[todo.pop()] & set(looped):
                if ref not in seen:
                    seen.add(ref)
                    todo.append(ref)
        assert start in seen


# -- truth and pages ----------------------------------------------------------------


def test_truth_is_ordered_and_consistent(truth):
    assert [(r["date"], r["message_id"] or "") for r in truth] == sorted(
        (r["date"], r["message_id"] or "") for r in truth)
    ids = [r["message_id"] for r in truth if r["message_id"]]
    assert len(ids) == len(set(ids))
    assert len({r["key"] for r in truth}) == len(truth)
    by_id = {r["message_id"]: r for r in truth if r["message_id"]}
    for r in truth:
        assert r["archive_url"] == r["archive_urls"][r["lists"][0]]
        assert ("cross-post" in r["quirks"]) == (len(r["lists"]) == 2)
        if r["parent_id"] is None:
            assert r["thread_root_id"] == r["message_id"]
        else:
            parent = by_id[r["parent_id"]]
            assert parent["date"] <= r["date"]
            assert parent["thread_root_id"] == r["thread_root_id"]
            if "cross-month-references" in r["quirks"]:
                assert parent["date"][:7] != r["date"][:7]
    assert any(r["date"][:7] == "2012-11" and by_id[r["parent_id"]]["date"][:7] == "2012-10"
               for r in truth if "cross-month-references" in r["quirks"])


def test_pages_and_attachments_exist(truth, entries):
    for r in truth:
        for url in r["archive_urls"].values():
            assert (SAMPLE / url.split("/pipermail/", 1)[1]).is_file()
    for _, _, chunk in entries:
        for url in re.findall(rb"URL: <http://lists\.igcaucus\.org/pipermail/(\S+)>", chunk):
            assert (SAMPLE / url.decode()).is_file()
    for lst in LISTS:
        index = (SAMPLE / lst / "index.html").read_text(encoding="ascii")
        assert "[ Gzip'd Text " in index and '.txt">[ Text ' in index


def test_html_only_text_lives_in_the_attachment(truth):
    for r in (r for r in truth if "html-only" in r["quirks"]):
        page = (SAMPLE / r["archive_url"].split("/pipermail/", 1)[1]).read_text(encoding="ascii")
        url = re.search(r'HREF="http://lists\.igcaucus\.org/pipermail/(\S+?attachment\.htm)"', page)[1]
        raw = (SAMPLE / url).read_bytes().decode(r["charset"])
        text = normalise(html.unescape(re.sub(r"<[^>]+>", " ", raw)))
        assert normalise(r["own_text"])[:60] in text


# -- large mode ---------------------------------------------------------------------


def test_large_mode_streams_text_only(tmp_path, generator):
    started = time.perf_counter()
    generator.main(["--out", str(tmp_path), "--messages", "2000", "--seed", "7"])
    assert time.perf_counter() - started < 10
    lines = (tmp_path / "truth.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2000
    ids = [json.loads(line)["message_id"] for line in lines]
    assert len({i for i in ids if i}) == sum(1 for i in ids if i)
    months = sorted(p.name for p in (tmp_path / "bestbits").iterdir())
    assert not any((tmp_path / "bestbits" / m).is_dir() for m in months)
    assert [m for m in months if m.endswith(".txt")] == ["2012-December.txt"]
    texts = [p.read_bytes() for lst in LISTS for p in (tmp_path / lst).glob("*.txt*")]
    count = sum(len(split_month(gzip.decompress(t) if t[:2] == b"\x1f\x8b" else t)) for t in texts)
    assert count >= 2000
