"""The bundled sample archive, ingested by the real pipeline, against the generator's ground truth."""

from __future__ import annotations

import json
import os
import re
from collections import Counter

import pytest

from conftest import BACKENDS, SAMPLE, on_backend

# Threading cannot recover these from headers alone: a reference loop must be cut somewhere,
# and a reply whose In-Reply-To is only 'Your message of <date>' is filed by subject.
UNRECOVERABLE = {"reference-loop", "your-message-of"}
_ADDRESS = re.compile(r"(\S+)@(\S+)")


@pytest.fixture(scope="module", params=BACKENDS)
def sample_archive(request, sample_archives):
    """The sample archive ingested into SQLite and into PostgreSQL: the same ground truth."""
    return sample_archives(on_backend(request))


@pytest.fixture(scope="module")
def truth() -> list[dict]:
    with open(SAMPLE / "truth.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def records(sample_archive) -> dict[str, dict]:
    return {r["message_id"]: r for r in sample_archive.messages()}


def words(text: str | None) -> str:
    """Whitespace-folded text, addresses obfuscated the way pipermail writes them in bodies."""
    return " ".join(_ADDRESS.sub(r"\1 at \2", text or "").split())


def test_the_sample_is_as_large_as_the_issue_asks(sample_archive, truth):
    stats = sample_archive.stats()
    lists = {item["name"]: item["messages"] for item in stats["lists"]}
    assert lists["bestbits"] >= 400 and lists["governance"] >= 40
    assert stats["messages"] == len(truth)
    assert stats["threads"] >= 60
    assert stats["participants"] >= 40
    assert stats["rejected"] == 0
    assert stats["first_date"].startswith("2012-10") and stats["last_date"].startswith("2012-12")


def test_ingest_reports_add_up(sample_archive, truth):
    bestbits = sample_archive.reports["bestbits"]
    assert bestbits.seen == bestbits.stored + bestbits.duplicates + bestbits.unchanged + bestbits.rejected
    copies = sum("duplicate" in t["quirks"] and "bestbits" in t["lists"] for t in truth)
    assert bestbits.duplicates >= 1 and bestbits.duplicates <= copies
    assert bestbits.rejected == 0
    governance = sample_archive.reports["governance"]
    cross = sum(t["lists"] == ["bestbits", "governance"] or set(t["lists"]) == {"bestbits", "governance"}
                for t in truth)
    # Cross-posts arrive with different bytes (each list's footer and tag): same id, one message.
    assert governance.duplicates >= cross


def test_every_message_is_threaded_as_the_truth_says(records, truth):
    wrong = [t["message_id"] for t in truth if t["message_id"]
             and records[t["message_id"]]["parent_id"] != t["parent_id"]
             and not UNRECOVERABLE & set(t["quirks"])
             and not any(UNRECOVERABLE & set(u["quirks"]) for u in truth
                         if u["message_id"] in (t["parent_id"], t["message_id"]) or
                         u["parent_id"] == t["message_id"])]
    assert wrong == []


def test_thread_count_matches_the_truth(records, truth):
    ours = {r["thread_id"] for r in records.values()}
    assert len(ours) == len({t["thread_root_id"] for t in truth})


def test_own_words_match_the_truth_for_every_message(records, truth):
    mismatched = [t["key"] for t in truth if t["message_id"]
                  and words(records[t["message_id"]]["own_text"]) != words(t["own_text"])]
    assert mismatched == []


def test_signatures_are_not_own_words(records, truth):
    for t in truth:
        if t["message_id"] and t["signature"]:
            ours = records[t["message_id"]]
            assert words(t["signature"]).split(" ")[-1] in words(ours["signature"]), t["key"]


@pytest.mark.parametrize("charset", ["iso-8859-1", "windows-1252", "koi8-r", "windows-1256"])
def test_unlabelled_charsets_are_read(records, truth, charset):
    cases = [t for t in truth if t["charset"] == charset and t["message_id"]]
    assert cases, f"the sample has no {charset} message"
    for t in cases:
        assert words(t["own_text"]) == words(records[t["message_id"]]["own_text"]), t["key"]


def test_dates_are_utc_even_when_the_header_is_broken(records, truth):
    for t in truth:
        if t["message_id"]:
            assert records[t["message_id"]]["date"] == t["date"], t["key"]
    broken = [records[t["message_id"]] for t in truth if "bad-date" in t["quirks"]]
    assert broken and all("date-from-envelope" in r["degraded"] for r in broken)


def test_cross_posts_are_one_message_in_both_lists(records, truth):
    crossed = [t for t in truth if len(t["lists"]) > 1]
    assert crossed
    for t in crossed:
        record = records[t["message_id"]]
        assert record["lists"] == sorted(t["lists"])
        assert {s["list"] for s in record["sources"]} == set(t["lists"])


def test_each_threads_counts_in_each_list_are_its_messages_there(sample_archive):
    # Kept per thread and list as threading moves messages and cross-posts join a list, equal
    # to grouping the messages (the list pages read these counts, not the messages).
    from sqlalchemy import func, select

    from archiver import schema as s
    m, ml, tl = s.messages.c, s.message_lists.c, s.thread_lists.c
    with sample_archive.store.engine.connect() as conn:
        kept = conn.execute(select(tl.thread_id, tl.list, tl.size, tl.first_date, tl.last_date)).all()
        grouped = conn.execute(
            select(m.thread_id, ml.list, func.count(), func.min(m.date), func.max(m.date))
            .join(s.message_lists, ml.message == m.id).where(m.thread_id.is_not(None))
            .group_by(m.thread_id, ml.list)).all()
    assert len(kept) > len({row[0] for row in kept})       # cross-posts: threads in both lists
    assert sorted(map(tuple, kept)) == sorted(map(tuple, grouped))


def test_archive_urls_come_from_the_article_pages(records, truth):
    for t in truth:
        if t["message_id"]:
            assert records[t["message_id"]]["archive_url"] in t["archive_urls"].values(), t["key"]


def test_html_only_messages_read_their_scrubbed_attachment(records, truth):
    html_only = [t for t in truth if "html-only" in t["quirks"]]
    assert html_only
    for t in html_only:
        record = records[t["message_id"]]
        assert words(record["own_text"]) == words(t["own_text"]) != ""
        assert any(a["url"] and a["url"].endswith("attachment.htm") for a in record["attachments"])


def test_messages_without_an_id_get_stable_synthetic_ids(sample_archive, truth):
    synthetic = [r for r in sample_archive.messages() if r["synthetic_id"]]
    assert len(synthetic) == sum(t["message_id"] is None for t in truth)
    assert all("no-message-id" in r["degraded"] for r in synthetic)


def test_sender_names_and_addresses(records, truth):
    for t in truth:
        if t["message_id"]:
            record = records[t["message_id"]]
            assert (record["from_name"], record["from_address"]) == (t["from_name"], t["from_address"])


def test_degraded_reasons_are_only_the_expected_ones(records):
    reasons = Counter(reason for r in records.values() for reason in r["degraded"])
    assert set(reasons) <= {"charset-guessed", "date-from-envelope", "no-message-id"}


GOLDEN = SAMPLE.parent / "expected" / "sample-threads.json"


def thread_trees(archive) -> list[dict]:
    """Every thread of the sample as a pre-order list of (depth, Message-ID) under its subject."""
    by_thread: dict[str, list[dict]] = {}
    for record in archive.messages():
        by_thread.setdefault(record["thread_id"], []).append(record)
    trees = []
    for members in by_thread.values():
        children: dict[str | None, list[dict]] = {}
        ids = {m["message_id"] for m in members}
        for m in sorted(members, key=lambda r: (r["date"] or "", r["message_id"])):
            # A parent that is a stand-in for a missing message hangs its children off the root.
            children.setdefault(m["parent_id"] if m["parent_id"] in ids else None, []).append(m)
        rows, stack = [], [(m, 0) for m in reversed(children.get(None, []))]
        while stack:
            node, depth = stack.pop()
            rows.append("  " * depth + node["message_id"])
            stack.extend((child, depth + 1) for child in reversed(children.get(node["message_id"], [])))
        trees.append({"subject": members[0]["subject_norm"], "messages": rows})
    return sorted(trees, key=lambda t: t["messages"][0])


def test_thread_trees_match_the_golden_file(sample_archive):
    """Golden trees; regenerate with ARCHIVE_UPDATE_GOLDEN=1 after a deliberate change."""
    trees = thread_trees(sample_archive)
    if os.environ.get("ARCHIVE_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(trees, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert trees == json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_small_batches_thread_exactly_like_one_pass(make_store):
    """Threading per batch re-threads only what each batch touches; with batches of 13 messages
    (threads grow across dozens of batches, replies arrive before parents across months) the
    trees must equal the golden ones."""
    from archiver.pipeline import ingest
    from archiver.query import Archive

    store = make_store("batched")
    for name in ("bestbits", "governance"):
        ingest(store, [str(SAMPLE / name)], name, batch_size=13, workers=1)
    assert thread_trees(Archive(store)) == json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_months_ingested_newest_first_thread_the_same(make_store, tmp_path):
    """Replies stored long before their parents: the trees still come out as the golden ones."""
    import shutil

    from archiver.pipeline import ingest
    from archiver.query import Archive

    store = make_store("reversed")
    for name in ("governance", "bestbits"):
        months = sorted((SAMPLE / name).glob("2012-*.txt*"), reverse=True)
        for month in months:
            # Each month alone, as a single file: newest first.
            copy = tmp_path / f"{name}-{month.name}"
            shutil.copyfile(month, copy)
            ingest(store, [str(copy)], name, batch_size=13, workers=1)
    trees = thread_trees(Archive(store))
    assert trees == json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_languages_are_detected_from_own_words(records, truth):
    known = [t for t in truth if t["message_id"] and len(t["own_text"]) > 40]
    right = sum(records[t["message_id"]]["language"] == t["language"] for t in known)
    wrong = [(t["key"], t["language"], records[t["message_id"]]["language"])
             for t in known if records[t["message_id"]]["language"] != t["language"]]
    assert right / len(known) >= 0.97, wrong
