"""JWZ threading over References and In-Reply-To: pure, iterative, loop-safe, lossless."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timezone
from typing import Iterable

from .ids import thread_hash
from .models import Placement, ThreadInput

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class _Box:
    """A JWZ container: a message, or an empty stand-in for one that is referenced but missing."""

    __slots__ = ("ident", "item", "parent", "children")

    def __init__(self, ident: str):
        self.ident = ident
        self.item: ThreadInput | None = None
        self.parent: _Box | None = None
        self.children: list[_Box] = []


def _is_ancestor(candidate: _Box, node: _Box, bound: int) -> bool:
    """Return True if candidate is node or one of its ancestors (walked, at most bound steps)."""
    steps = 0
    while node is not None and steps <= bound:
        if node is candidate:
            return True
        node = node.parent
        steps += 1
    return steps > bound  # a chain past the bound is treated as a loop: refuse the link


def _link(parent: _Box, child: _Box, bound: int) -> bool:
    # A child with no children can only close a loop with itself: the common case is O(1).
    if parent is child or (child.children and _is_ancestor(child, parent, bound)):
        return False
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)
    return True


def thread(items: Iterable[ThreadInput], max_depth: int = 200_000) -> list[Placement]:
    """Thread messages (JWZ steps 1-5, subject grouping only for messages without references)
    and return one Placement per container, messages and needed dummies alike."""
    boxes: dict[str, _Box] = {}

    def box(ident: str) -> _Box:
        found = boxes.get(ident)
        if found is None:
            found = boxes[ident] = _Box(ident)
        return found

    # Step 1: containers for every message and every id it references.
    for item in items:
        own = box(item.message_id)
        if own.item is not None:
            continue  # duplicate Message-ID: the store keeps one message per id
        own.item = item
        previous = None
        for ref in item.refs[-max_depth:]:
            current = box(ref)
            # 1B: link consecutive references, but never re-parent an existing link.
            if previous is not None and current.parent is None:
                _link(previous, current, max_depth)
            previous = current
        # 1C: the message's own last reference is authoritative for its parent.
        # (With no references, a parent presumed from others' References is kept.)
        if previous is not None and own.parent is not previous:
            _link(previous, own, max_depth)

    # Step 2: the root set.
    roots = [b for b in boxes.values() if b.parent is None]
    # Step 4: prune empty containers (iteratively, children before parents).
    roots = _prune(roots)
    # Step 5: group by subject, only moving messages that carry no references.
    roots = _group_by_subject(roots)
    return _placements(roots)


def _prune(roots: list[_Box]) -> list[_Box]:
    order: list[_Box] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    for node in reversed(order):  # post-order: children are settled before their parent
        if node.item is not None:
            continue
        if not node.children:
            if node.parent is not None:
                node.parent.children.remove(node)
            node.ident = ""  # marked dead
        elif node.parent is not None or len(node.children) == 1:
            # Promote the children of an empty container (a root keeps it if it has several).
            parent = node.parent
            for child in node.children:
                child.parent = parent
                if parent is not None:
                    parent.children.append(child)
            if parent is not None:
                parent.children.remove(node)
            node.children = []
            node.ident = ""
    kept = []
    for node in order:
        if node.ident and node.parent is None:
            kept.append(node)
    return kept


def _movable(node: _Box) -> bool:
    """A root may be filed by subject only if it is a reply that carries no reference headers."""
    return node.item is not None and not node.item.refs and node.item.is_reply


def _group_by_subject(roots: list[_Box]) -> list[_Box]:
    """JWZ step 5, narrowed: a reply that lost its reference headers joins the thread of its
    subject (the latest such thread that started before it). Two posts that merely share a
    subject stay apart, as do forwards: on a list both usually start new conversations."""
    hosts: dict[str, list[_Box]] = {}
    for node in roots:
        item = node.item if node.item is not None else _first_item(node)
        if item is not None and item.subject_norm and not _movable(node):
            hosts.setdefault(item.subject_norm.lower(), []).append(node)
    keys: dict[str, list] = {}
    for subject, candidates in hosts.items():
        candidates.sort(key=_sort_key)
        keys[subject] = [_sort_key(c) for c in candidates]
    for node in roots:
        if not _movable(node):
            continue
        subject = node.item.subject_norm.lower()
        candidates = hosts.get(subject)
        if not candidates:
            continue
        # Binary search, not a scan of every host: a list of many same-subject posts and
        # reference-less replies would otherwise thread in quadratic time.
        at = bisect_right(keys[subject], _sort_key(node))
        host = candidates[at - 1] if at else candidates[0]
        node.parent = host
        host.children.append(node)
        if not at:
            # A dummy host's first message may now be this earlier one; it stays the first host.
            keys[subject][0] = _sort_key(host)
    return [r for r in roots if r.parent is None]


def _first_item(node: _Box) -> ThreadInput | None:
    return min((c.item for c in node.children if c.item), key=_item_key, default=None)


def _sort_key(node: _Box):
    item = node.item if node.item is not None else _first_item(node)
    return _item_key(item) if item else (_EPOCH, 0, node.ident)


def _item_key(item: ThreadInput):
    return (item.date or _EPOCH, item.order, item.message_id)


def _placements(roots: list[_Box]) -> list[Placement]:
    out: list[Placement] = []
    for root in sorted(roots, key=_sort_key):
        tid = thread_hash(root.ident)
        stack: list[tuple[_Box, int]] = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            out.append(Placement(message_id=node.ident, thread_id=tid, root_id=root.ident,
                                 parent_id=node.parent.ident if node.parent else None,
                                 depth=depth, dummy=node.item is None))
            for child in sorted(node.children, key=_sort_key, reverse=True):
                stack.append((child, depth + 1))
    return out
