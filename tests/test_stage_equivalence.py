"""The ingest stages' shortcuts give what the plain ways they replace give, on the sample and odd input."""

from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path

import pytest

from archiver import clean, language, parse, topics
from archiver.sources import read_source

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample"
ODD_LINES = ["", " ", "-- ", "--", "--skip-duplicates", "Sent from my iPhone", "> quoted", ">",
             "On Tue, Jane wrote:", "Onwrote:", "On wrote:", "From: Jane <j@x.org>", "*From:* Jane",
             "To: all", "Subject: x", "Sent: Monday", "From:x", "plain words here.", "  > indented",
             "Begin forwarded message:", "-----Original Message-----", "De : Marie", "İstanbul",
             "KELVIN K", "ſent", "______________________", "bestbits mailing list", "発件人: x"]


@pytest.fixture(scope="module")
def bodies():
    messages = [parse.parse_message(raw) for raw in read_source(str(SAMPLE), [])]
    return [m.body for m in messages] + [m.subject for m in messages]


def _soups(count=400, seed=7):
    rng = random.Random(seed)
    return ["\n".join(rng.choice(ODD_LINES) for _ in range(rng.randint(1, 12))) for _ in range(count)]


def test_verb_lines_and_block_starts_match_their_plain_forms(bodies):
    from bisect import bisect_right
    from itertools import accumulate
    for text in bodies + _soups() + ["İİİ wrote:\nx wrote:\nİ\nschrieb"]:
        lines = text.split("\n")
        low = "\n".join(lines).lower()
        starts = list(accumulate((len(line) + 1 for line in lines), initial=0))
        want = {bisect_right(starts, m.start()) - 1 for verb in clean._VERBS
                for m in re.finditer(re.escape(verb), low)}
        assert clean._verb_lines(lines) == want, text
        for line in lines:
            if clean._ORIGINAL.match(line) or clean._OUTLOOK_FROM.match(line):
                assert clean._may_start_block(line), line


def test_a_block_start_is_ruled_out_only_by_a_character_no_pattern_begins_with():
    for code in range(0x3000):
        ch = chr(code)
        for tail in ("rom: x", "e: x", "on: x", "-- Original Message --", "egin forwarded message:"):
            line = ch + tail
            if clean._ORIGINAL.match(line) or clean._OUTLOOK_FROM.match(line):
                assert clean._may_start_block(line), line


def test_fold_matches_the_unicode_way():
    def plain(text):
        decomposed = unicodedata.normalize("NFKD", text.casefold())
        return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    for text in ["Coopération RENFORCÉE", "إعلان", "Straße ﬁx ½", "plain ascii", "Ǆ İ K", ""]:
        assert topics.fold(text) == plain(text)


def test_enough_letters_matches_counting_them(bodies):
    letters = re.compile(r"[^\W\d_]")
    for text in bodies + _soups() + ["a1" * 11, "a1" * 12, "é" * 12, "_" * 600, "12345 abc def ghij kl"]:
        sample = text[:600]
        assert (len(letters.findall(sample)) >= language.MIN_LETTERS) == bool(
            language._ENOUGH_LETTERS.match(sample))


def test_remembered_byte_walk_matches_py3langid(bodies):
    from py3langid.langid import visit_counts
    identifier = language._load()
    for text in bodies + _soups():
        data = identifier._encode(text[:600])
        want = visit_counts(*language._tables(identifier), data)
        got = language._visits(identifier, data)
        assert got == want and list(got or ()) == list(want or ()), text   # same order: same sums


def test_the_model_keeps_only_the_archives_languages_and_answers_as_the_full_one(bodies):
    """py3langid keeps the model of all its languages beside the restricted one (28 MB more in
    every process); the archiver drops it, and the restricted model answers as before."""
    import gc
    import tracemalloc

    from py3langid.langid import MODEL_FILE, LanguageIdentifier
    tracemalloc.start()
    try:
        identifier = language._load()
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert kept < 75_000_000, kept   # the model of every language took 90 MB
    theirs = LanguageIdentifier.from_model_file(MODEL_FILE)
    theirs.set_languages(list(language.LANGUAGES))
    for text in bodies[:300]:
        assert identifier.classify(text[:600]) == theirs.classify(text[:600])


def test_stub_removal_matches_a_whole_body_substitution(bodies):
    stub = ("-------------- next part --------------\nAn HTML attachment was scrubbed...\n"
            "URL: <http://x.org/a.htm>\n")
    extra = ["words\n" + stub, stub + "more\n" + stub.replace("HTML", "non-text"), "x" + stub,
             "An HTML attachment was scrubbed...\nURL: <u>", "attachment was scrubbed" + stub]
    for body in bodies + extra:
        got, _ = parse.replace_stubs(body, {}, [])
        if "attachment was scrubbed" in body and list(parse._STUB.finditer(body)):
            rest = parse._STUB.sub("", body).rstrip()
            if any(line.strip() and not parse._FOOTERISH.search(line) for line in rest.splitlines()):
                assert got == rest
        else:
            assert got == body
