"""JWZ threading: parents, stand-ins, loops, duplicates, subject grouping, depth, thread ids."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.ids import thread_hash
from archiver.models import ThreadInput
from archiver.thread import thread

BASE = datetime(2012, 10, 2, 8, 0, tzinfo=timezone.utc)


def item(mid, refs=(), subject="Topic", reply=False, hour=0, order=0, date=True) -> ThreadInput:
    return ThreadInput(message_id=mid, refs=tuple(refs), subject_norm=subject, is_reply=reply,
                       date=BASE + timedelta(hours=hour) if date else None, order=order)


def by_id(placements):
    table = {p.message_id: p for p in placements}
    assert len(table) == len(placements), "a container was placed twice"
    return table


def test_parent_and_children():
    placed = by_id(thread([item("a", hour=0), item("b", ["a"], reply=True, hour=1),
                           item("c", ["a", "b"], reply=True, hour=2), item("d", ["a"], reply=True, hour=3)]))
    assert {k: (p.parent_id, p.depth) for k, p in placed.items()} == {
        "a": (None, 0), "b": ("a", 1), "c": ("b", 2), "d": ("a", 1)}
    assert {p.thread_id for p in placed.values()} == {thread_hash("a")}
    assert {p.root_id for p in placed.values()} == {"a"}
    assert not any(p.dummy for p in placed.values())


def test_placements_are_in_tree_order():
    placements = thread([item("d", ["a"], hour=3), item("b", ["a"], hour=1), item("a", hour=0),
                         item("c", ["a", "b"], hour=2)])
    assert [p.message_id for p in placements] == ["a", "b", "c", "d"]


def test_missing_parent_with_two_replies_gets_a_dummy_root():
    placed = by_id(thread([item("b", ["gone"], reply=True, hour=1), item("c", ["gone"], reply=True, hour=2)]))
    assert placed["gone"].dummy is True
    assert (placed["gone"].parent_id, placed["gone"].depth) == (None, 0)
    assert (placed["b"].parent_id, placed["b"].depth) == ("gone", 1)
    assert (placed["c"].parent_id, placed["c"].depth) == ("gone", 1)
    assert {p.thread_id for p in placed.values()} == {thread_hash("gone")}


def test_missing_middle_is_pruned_and_its_children_promoted():
    # JWZ step 4: an empty container that is not a root gives its children to its parent.
    placed = by_id(thread([item("a", hour=0), item("c", ["a", "b"], reply=True, hour=2),
                           item("d", ["a", "b"], reply=True, hour=3)]))
    assert set(placed) == {"a", "c", "d"}
    assert (placed["c"].parent_id, placed["c"].depth) == ("a", 1)
    assert (placed["d"].parent_id, placed["d"].depth) == ("a", 1)
    assert {p.thread_id for p in placed.values()} == {thread_hash("a")}


def test_single_reply_to_a_missing_parent_becomes_the_root():
    placements = thread([item("b", ["gone"], reply=True)])
    assert [(p.message_id, p.parent_id, p.depth, p.dummy, p.thread_id) for p in placements] == [
        ("b", None, 0, False, thread_hash("b"))]


def test_two_message_loop_terminates_and_keeps_both():
    placed = by_id(thread([item("a", ["b"], hour=0), item("b", ["a"], hour=1)]))
    assert set(placed) == {"a", "b"}
    roots = [p for p in placed.values() if p.parent_id is None]
    assert len(roots) == 1
    assert {p.thread_id for p in placed.values()} == {thread_hash(roots[0].message_id)}


def test_three_message_loop_terminates_and_keeps_all():
    placed = by_id(thread([item("a", ["c"], hour=0), item("b", ["a"], hour=1), item("c", ["b"], hour=2)]))
    assert set(placed) == {"a", "b", "c"}
    assert sorted(p.depth for p in placed.values()) == [0, 1, 2]


def test_self_reference_is_ignored():
    placements = thread([item("a", ["a"])])
    assert [(p.message_id, p.parent_id, p.depth) for p in placements] == [("a", None, 0)]


def test_duplicate_message_ids_are_placed_once():
    placements = thread([item("a", hour=0), item("a", hour=1), item("b", ["a"], hour=2)])
    assert [(p.message_id, p.parent_id) for p in placements] == [("a", None), ("b", "a")]


def test_later_reference_does_not_reparent_an_existing_link():
    # b says a -> b; c's References claim x -> b. b keeps its own parent (JWZ 1B).
    placed = by_id(thread([item("a"), item("b", ["a"], hour=1), item("c", ["x", "b"], hour=2)]))
    assert placed["b"].parent_id == "a"
    assert placed["c"].parent_id == "b"


def test_subject_grouping_for_messages_without_references():
    placed = by_id(thread([
        item("root", subject="Meeting", hour=0),
        item("re-no-refs", subject="Meeting", reply=True, hour=1),
        item("other", subject="Other", hour=2),
    ]))
    assert placed["re-no-refs"].parent_id == "root"
    assert placed["re-no-refs"].thread_id == thread_hash("root")
    assert placed["other"].parent_id is None


def test_reply_with_references_is_never_moved_by_subject():
    placed = by_id(thread([
        item("root", subject="Budget", hour=0),
        item("x", subject="Other", hour=1),
        item("y", ["x"], subject="Budget", reply=True, hour=2),           # refs say x
        item("z", ["missing"], subject="Budget", reply=True, hour=3),     # refs to a missing message
    ]))
    assert placed["y"].parent_id == "x"
    assert placed["y"].thread_id == thread_hash("x")
    assert placed["z"].parent_id is None
    assert placed["z"].thread_id == thread_hash("z")
    assert placed["root"].parent_id is None


def test_same_subject_without_reply_marker_stay_separate_threads():
    placed = by_id(thread([item("a", subject="Meeting", hour=0), item("b", subject="Meeting", hour=1)]))
    assert placed["a"].parent_id is None and placed["b"].parent_id is None
    assert placed["a"].thread_id == thread_hash("a")
    assert placed["b"].thread_id == thread_hash("b")


def test_reply_without_references_joins_the_latest_earlier_thread_of_its_subject():
    placed = by_id(thread([item("first", subject="Visa letters", hour=0),
                           item("second", subject="Visa letters", hour=5),
                           item("answer", subject="Visa letters", reply=True, hour=7),
                           item("early", subject="Visa letters", reply=True, order=9, date=False)]))
    assert placed["answer"].parent_id == "second"
    assert placed["early"].parent_id == "first"  # no date: before every thread, so the first


def test_forward_without_references_starts_its_own_thread():
    placed = by_id(thread([item("post", subject="Agenda", hour=0),
                           item("fwd", subject="Agenda", reply=False, hour=3)]))
    assert placed["fwd"].parent_id is None


def test_roots_sorted_by_date_with_order_as_tie_break():
    placements = thread([item("late", subject="L", hour=5), item("early", subject="E", hour=1),
                         item("nodate2", subject="N2", date=False, order=2),
                         item("nodate1", subject="N1", date=False, order=1)])
    assert [p.message_id for p in placements] == ["nodate1", "nodate2", "early", "late"]


def test_thread_id_is_the_roots_hash():
    for placement in thread([item("r@civil.example"), item("c@civil.example", ["r@civil.example"])]):
        assert placement.thread_id == thread_hash("r@civil.example")
        assert placement.root_id == "r@civil.example"


def test_fifty_thousand_deep_chain():
    n = 50_000
    items = [item("m0")] + [item(f"m{i}", [f"m{i - 1}"], reply=True, order=i) for i in range(1, n)]
    started = time.perf_counter()
    placements = thread(items)
    elapsed = time.perf_counter() - started
    assert len(placements) == n
    last = by_id(placements)[f"m{n - 1}"]
    assert (last.parent_id, last.depth, last.root_id) == (f"m{n - 2}", n - 1, "m0")
    assert {p.thread_id for p in placements} == {thread_hash("m0")}
    assert elapsed < 5


def test_long_reference_lists_are_cut_at_max_depth():
    items = [item(f"m{i}", [f"m{j}" for j in range(i)], order=i) for i in range(40)]
    placed = by_id(thread(items, max_depth=5))
    assert {f"m{i}" for i in range(40)} <= set(placed)
    assert placed["m39"].parent_id == "m38"


@st.composite
def forests(draw):
    n = draw(st.integers(1, 25))
    ids = [f"m{i}" for i in range(n)]
    pool = ids + ["gone1", "gone2"]
    items = []
    for i, mid in enumerate(ids):
        refs = draw(st.lists(st.sampled_from(pool), max_size=4))
        subject = draw(st.sampled_from(["A", "B", ""]))
        items.append(item(mid, refs, subject=subject, reply=draw(st.booleans()),
                          hour=draw(st.integers(0, 5)), order=i))
    if draw(st.booleans()) and n > 1:
        items.append(items[0])          # a duplicate id
    return items


@settings(max_examples=200, deadline=None)
@given(items=forests())
def test_every_message_is_placed_once_in_a_consistent_tree(items):
    placements = thread(items)
    placed = by_id(placements)
    real = {p.message_id for p in placements if not p.dummy}
    assert real == {i.message_id for i in items}
    for p in placements:
        if p.parent_id is None:
            assert p.depth == 0
            assert p.root_id == p.message_id
            assert p.thread_id == thread_hash(p.message_id)
        else:
            parent = placed[p.parent_id]
            assert p.depth == parent.depth + 1
            assert (p.thread_id, p.root_id) == (parent.thread_id, parent.root_id)
