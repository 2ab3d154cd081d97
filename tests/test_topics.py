"""Agenda-topic tagging: the taxonomy file, scoring, thresholds, threads, overrides, evaluation."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from archiver.clean import split_body
from archiver.errors import ArchiverError
from archiver.ids import thread_hash
from archiver.topics import (Taxonomy, Topic, evaluate, format_evaluation, load_overrides,
                             load_taxonomy, score_message, tag_message, thread_topics)

ROOT = Path(__file__).resolve().parent.parent
TOPICS = ROOT / "fixtures" / "topics.toml"
OVERRIDES = ROOT / "fixtures" / "topic-overrides.toml"
SAMPLE = ROOT / "fixtures" / "sample"
AGENDA = ("ig-history", "itu-itrs", "rights-principles", "enhanced-cooperation",
          "wcit-statement", "igf-principles", "cs-network", "logistics")


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy(TOPICS)


def write(tmp_path, text: str, name: str = "topics.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def small(tmp_path, terms_a: str, terms_b: str = '"unrelated" = 1', tagger: str = "") -> Taxonomy:
    """Return a two-topic taxonomy (a, b) with the given English terms."""
    return load_taxonomy(write(tmp_path, f"""
[tagger]
{tagger}
[[topics]]
slug = "a"
label = "A"
day = 1
session = {{ number = 1, title = "A" }}
[topics.terms.en]
{terms_a}
[[topics]]
slug = "b"
label = "B"
day = 1
session = {{ number = 2, title = "B" }}
[topics.terms.en]
{terms_b}
"""))


# --- the default taxonomy ----------------------------------------------------------------------
def test_default_taxonomy_is_the_baku_agenda(taxonomy):
    assert taxonomy.slugs == AGENDA
    assert [t.day for t in taxonomy.topics] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert len({t.session for t in taxonomy.topics}) == 8
    for topic in taxonomy.topics:
        assert topic.label and topic.session_title and topic.bullets, topic.slug
        assert {"en", "fr", "es", "pt"} <= topic.languages, topic.slug
        assert all(weight > 0 for _, _, weight in topic.terms)
    assert 0 < taxonomy.relative < 1 and taxonomy.threshold > 0 and taxonomy.subject_weight > 0


def test_default_taxonomy_recognises_topics_across_languages(taxonomy):
    samples = {
        "enhanced-cooperation": ["enhanced cooperation at the CSTD", "la coopération renforcée",
                                 "la cooperación reforzada", "a cooperação reforçada"],
        "logistics": ["my visa and the hotel", "ma lettre d'invitation pour le visa",
                      "la carta de invitación para la visa", "meu visto e o passaporte",
                      "приглашение для визы", "تأشيرة أذربيجان"],
        "itu-itrs": ["the ITRs and national delegations", "la révision du RTI",
                     "las delegaciones nacionales", "a revisão do RTI",
                     "Регламента международной электросвязи", "لوائح الاتصالات الدولية"],
    }
    for slug, texts in samples.items():
        for text in texts:
            assert list(tag_message(text, "", taxonomy)) == [slug], text


# --- malformed files ---------------------------------------------------------------------------
TOPIC = '[[topics]]\nslug = "x"\nlabel = "X"\nday = 1\nsession = { number = 1, title = "X" }\n'
TERMS = '[topics.terms.en]\n"a" = 1\n'


@pytest.mark.parametrize("text, message", [
    ('[[topics]]\nlabel = "X"\nday = 1\n', r"topic #1 needs a slug"),
    ('[[topics]]\nslug = "Bad Slug"\n', r"slug of lowercase words"),
    (TOPIC + TERMS + TOPIC + TERMS, r"duplicate topic slug 'x'"),
    (TOPIC + '[topics.terms.en]\n"visa" = "high"\n', r"term 'visa' \(en\) needs a positive number.*'high'"),
    (TOPIC + '[topics.terms.en]\n"visa" = -2\n', r"term 'visa' \(en\) needs a positive number"),
    (TOPIC + '[topics.terms.en]\n"visa" = true\n', r"term 'visa' \(en\) needs a positive number"),
    (TOPIC + '[topics.terms.en]\n"--" = 1\n', r"term '--' \(en\) has no words"),
    (TOPIC, r"topic 'x' has no \[topics.terms.<language>\]"),
    (TOPIC.replace('label = "X"\n', "") + TERMS, r"topic 'x' needs a label"),
    (TOPIC.replace("day = 1", 'day = "one"') + TERMS, r"day must be"),
    (TOPIC.replace('{ number = 1, title = "X" }', "1") + TERMS, r"session must be"),
    (TOPIC + 'lable = "typo"\n' + TERMS, r"unknown keys \['lable'\]"),
    ('[tagger]\nrelative = 1.5\n' + TOPIC + TERMS, r"relative must be a number between 0 and 1"),
    ('[tagger]\nthreshhold = 2\n' + TOPIC + TERMS, r"\[tagger\]: unknown keys \['threshhold'\]"),
    ('[tagger]\nthreshold = 2\n', r"no \[\[topics\]\] defined"),
    ('[[topics]\nslug = "x"', r"not valid TOML"),
])
def test_malformed_taxonomy_is_rejected_with_a_clear_message(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ArchiverError, match=message) as caught:
        load_taxonomy(path)
    assert str(path) in str(caught.value)   # the moderator learns which file to fix


def test_missing_taxonomy_file_is_an_archiver_error(tmp_path):
    with pytest.raises(ArchiverError, match="cannot read taxonomy file"):
        load_taxonomy(tmp_path / "nope.toml")


# --- matching ----------------------------------------------------------------------------------
def test_phrases_match_as_phrases_and_their_words_are_not_counted_again(tmp_path):
    tax = small(tmp_path, '"enhanced cooperation" = 5', '"cooperation" = 2')
    assert score_message("We need enhanced cooperation now.", "", tax) == {"a": 5.0}
    # The same words, not as the phrase: only the single-word term matches.
    assert score_message("Cooperation was enhanced.", "", tax) == {"b": 2.0}
    assert score_message("enhanced, then more cooperation", "", tax) == {"b": 2.0}


def test_single_words_match_whole_words_with_plurals(tmp_path):
    tax = small(tmp_path, '"ITR" = 3\n"delegação" = 2\n"policy" = 1\n"виз*" = 4')
    assert score_message("the situation of the statute", "", tax) == {}
    assert score_message("ITRs", "", tax) == {"a": 3.0}
    assert score_message("as delegações", "", tax) == {"a": 2.0}
    assert score_message("policies", "", tax) == {"a": 1.0}
    assert score_message("получить визу", "", tax) == {"a": 4.0}   # '*' takes Russian endings


def test_accents_and_case_are_folded_both_ways(tmp_path):
    tax = small(tmp_path, '"coopération renforcée" = 5', '"cooperacion reforzada" = 5')
    assert tag_message("sur la cooperation renforcee", "", tax) == {"a": 5.0}
    assert tag_message("LA COOPÉRATION RENFORCÉE", "", tax) == {"a": 5.0}
    assert tag_message("la cooperación reforzada", "", tax) == {"b": 5.0}


def test_a_taxonomy_built_in_code_matches_like_a_loaded_one():
    topic = Topic("visas", "Visas", 1, 1, "Travel", (), (("en", "visa", 4.0), ("fr", "visa", 2.0)))
    # The same word under two languages counts once, at its highest weight.
    assert score_message("my visa", "", Taxonomy((topic,))) == {"visas": 4.0}


def test_repeats_add_less_each_time(tmp_path):
    tax = small(tmp_path, '"visa" = 4', tagger="repeat_factor = 0.5")
    assert score_message("visa visa visa", "", tax) == {"a": 4 + 2 + 1}


def test_scoring_reads_only_own_words_and_subject_never_quotes(taxonomy):
    # The contract: callers pass a message's own words (clean.py's own_text), not its body.
    assert list(inspect.signature(score_message).parameters) == ["own_text", "subject", "taxonomy"]
    body = ("Agreed, let us keep the enhanced cooperation paper short.\n\n"
            "On Tue, 2 Oct 2012 at 10:00, Leyla <leyla@example.org> wrote:\n"
            "> My visa for Azerbaijan has not arrived, and the hotel near the venue is full.\n"
            "> Registration closes on Monday; travel funding decisions are due.\n")
    own, quoted, _, _ = split_body(body)
    assert "visa" in quoted and "visa" not in own
    assert list(tag_message(own, "Enhanced cooperation paper", taxonomy)) == ["enhanced-cooperation"]
    # Given the quote, the tagger would (wrongly) see logistics: which is why it never is.
    assert "logistics" in tag_message(body, "Enhanced cooperation paper", taxonomy)


# --- thresholds --------------------------------------------------------------------------------
def test_absolute_threshold(tmp_path):
    tax = small(tmp_path, '"visa" = 2\n"hotel" = 2', tagger="threshold = 3")
    assert score_message("my visa", "", tax) == {"a": 2.0}
    assert tag_message("my visa", "", tax) == {}
    assert tag_message("my visa and the hotel", "", tax) == {"a": 4.0}


def test_a_term_mentioned_in_passing_in_a_long_message_is_not_tagged(taxonomy):
    long = ("The ITRs must not extend to Internet content. Engaging national delegations before "
            "Dubai matters more than another open letter to the ITU. The WTPF and the WTSA will "
            "continue the same fight, and the Dedicated Group failed to remove the text on "
            "security. By the way, my visa arrived.")
    scores = score_message(long, "", taxonomy)
    assert scores["logistics"] >= taxonomy.threshold   # the visa is there, above the floor...
    assert list(tag_message(long, "", taxonomy)) == ["itu-itrs"]   # ...but far below the best
    assert list(tag_message("By the way, my visa arrived.", "", taxonomy)) == ["logistics"]


def test_subject_is_weighted_and_can_carry_a_short_reply(taxonomy, tmp_path):
    reply = "Please add my name: Jane Doe, Nairobi."
    assert tag_message(reply, "", taxonomy) == {}
    assert list(tag_message(reply, "Re: [bestbits] Call for signatures: civil society statement to WCIT",
                            taxonomy)) == ["wcit-statement"]
    # A list tag names a list, not a topic.
    tax = small(tmp_path, '"governance" = 5', tagger="subject_weight = 2")
    assert score_message("", "Re: [governance] agenda", tax) == {}
    assert score_message("", "Re: [bestbits] governance", tax) == {"a": 10.0}


# --- threads and overrides ---------------------------------------------------------------------
def test_thread_topics_are_score_weighted_shares_of_messages():
    tags = [{"itu-itrs": 10.0, "wcit-statement": 5.0}, {"itu-itrs": 4.0}, {}, {"logistics": 3.0}]
    assert thread_topics(tags) == {"itu-itrs": 0.5, "logistics": 0.25, "wcit-statement": 0.125}
    assert thread_topics([]) == {}


def test_overrides_pin_and_remove():
    tags = [{"itu-itrs": 10.0, "wcit-statement": 5.0}, {"itu-itrs": 4.0}]
    got = thread_topics(tags, {"pin": ["igf-principles"], "remove": ["wcit-statement"]})
    assert got == {"igf-principles": 1.0, "itu-itrs": 1.0}
    assert thread_topics(tags, {"pin": ["itu-itrs"], "remove": []})["itu-itrs"] == 1.0


def test_default_overrides_file_has_no_active_override(taxonomy, tmp_path):
    assert load_overrides(OVERRIDES, taxonomy) == {}
    # Its commented example is valid once uncommented, and keyed like the store's thread ids.
    lines = OVERRIDES.read_text(encoding="utf-8").splitlines()
    example = "\n".join(line[2:] if line.startswith(("# [threads.", "# pin", "# remove", "# note"))
                        else line for line in lines)
    parsed = load_overrides(write(tmp_path, example, "overrides.toml"), taxonomy)
    tid = thread_hash("CAb1000EX9Vhf0PvF9+lYrFa2rzE2@mx.mail.example")
    assert parsed == {tid: {"pin": ["igf-principles"], "remove": ["wcit-statement"]}}


TID = thread_hash("root@example.org")


@pytest.mark.parametrize("text, message", [
    (f'[threads.{TID}]\npin = ["no-such-topic"]\n', r"pin names unknown topics \['no-such-topic'\]"),
    (f'[threads.{TID}]\nremove = "logistics"\n', r"remove must be a list of topic slugs"),
    (f'[threads.{TID}]\npin = ["logistics"]\nremove = ["logistics"]\n', r"both pinned and removed"),
    (f'[threads.{TID}]\npinned = ["logistics"]\n', r"only pin, remove and note are allowed"),
    ('[threads.not-a-thread-id]\npin = ["logistics"]\n', r"not a thread id"),
    ('[thread]\n', r"\[threads.<thread id>\] tables only"),
])
def test_malformed_overrides_are_rejected(tmp_path, taxonomy, text, message):
    with pytest.raises(ArchiverError, match=message):
        load_overrides(write(tmp_path, text, "overrides.toml"), taxonomy)


# --- evaluation --------------------------------------------------------------------------------
def test_evaluate_counts_per_topic_and_micro():
    truth = [{"message_id": "1", "topics": ["a"]}, {"message_id": "2", "topics": ["a", "b"]},
             {"message_id": "3", "topics": []}, {"message_id": "4", "topics": ["b"]}]
    predicted = {"1": {"a"}, "2": {"a"}, "3": {"b"}}      # 4 has no prediction at all
    result = evaluate(truth, predicted)
    assert result["messages"] == 4
    assert result["topics"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2,
                                     "tp": 2, "fp": 0, "fn": 0}
    # The prediction on the message with no true topic is a false positive.
    assert result["topics"]["b"]["fp"] == 1 and result["topics"]["b"]["fn"] == 2
    assert result["micro"]["tp"] == 2 and result["micro"]["fp"] == 1 and result["micro"]["fn"] == 2
    assert result["micro"]["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5), abs=1e-4)
    assert "micro (overall)" in format_evaluation(result)


def test_tagger_agrees_with_the_sample_truth(archive_on_both, taxonomy):
    """The stored own words and subjects (SQLite, then PostgreSQL) tagged against the truth."""
    records = list(archive_on_both.messages())
    truth = [json.loads(line) for line in (SAMPLE / "truth.jsonl").read_text(encoding="utf-8").splitlines()]
    # A message that lost its Message-ID gets a synthetic one in the store; find it by date and sender.
    by_sender = {(r["date"], r["from_address"]): r["message_id"] for r in records}
    for record in truth:
        if not record["message_id"]:
            record["message_id"] = by_sender[(record["date"], record["from_address"])]
    assert {r["message_id"] for r in truth} == {r["message_id"] for r in records}

    predicted = {r["message_id"]: set(tag_message(r["own_text"], r["subject"], taxonomy)) for r in records}
    result = evaluate(truth, predicted)
    table = format_evaluation(result)
    print("\n" + table)
    assert result["micro"]["f1"] >= 0.85, table
    assert set(result["topics"]) == set(AGENDA), table
    for slug, row in result["topics"].items():
        assert row["f1"] >= 0.75, f"{slug} is weak\n{table}"
