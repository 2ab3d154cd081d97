"""The one place that knows the order of the stages; progress; the ingest report."""

from __future__ import annotations

import hashlib
from collections import Counter
from itertools import islice
from time import perf_counter
from typing import Callable, Iterable, Iterator

from . import config
from .clean import clean_message, normalise_subject
from .errors import ArchiverError
from .models import IngestReport, Message, RawMessage
from .parse import parse_message
from .sources import read_source
from .store import Entry, Store
from .thread import thread

# The stages a raw message goes through before it is stored, in order.
STAGES: tuple[tuple[str, Callable], ...] = (
    ("parse", parse_message),
    ("clean", clean_message),
)


def prepare(raw: RawMessage, sha: str, timings: Counter | None = None) -> Entry:
    """Run the per-message stages; a stage's narrow error rejects the message, with its reason."""
    value: RawMessage | Message = raw
    for name, stage in STAGES:
        started = perf_counter()
        try:
            value = stage(value)
            if timings is not None:
                timings[name] += perf_counter() - started
        except ArchiverError as exc:
            return Entry(raw=raw, sha256=sha, reason=f"{name}: {exc}")
        except (RecursionError, MemoryError, ValueError, LookupError, UnicodeError,
                TypeError, AttributeError, AssertionError) as exc:
            # The stdlib email package raises these on malformed input it did not foresee;
            # the message is kept raw and reported, never dropped.
            return Entry(raw=raw, sha256=sha, reason=f"{name}: {type(exc).__name__}: {exc}")
    _, is_reply = normalise_subject(value.subject)
    return Entry(raw=raw, sha256=sha, message=value, is_reply=is_reply)


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def ingest(store: Store, sources: list[str], list_name: str,
           progress: Callable[[int], None] | None = None, batch_size: int | None = None) -> IngestReport:
    """Ingest every message of the sources into a list, re-thread what changed, and report."""
    report = IngestReport()
    reasons: Counter = Counter()
    degraded: Counter = Counter()
    new_ids: list[str] = []
    size = int(batch_size or config.get("batch_size"))
    timings = report.timings
    raws = _timed(_raws(sources, report.skipped_files), timings, "read")
    for batch in _batches(raws, size):
        fresh: list[Entry] = []
        repeats: list[Entry] = []
        known = store.known([hashlib.sha256(r.data).hexdigest() for r in batch])
        in_batch: set[str] = set()
        for raw in batch:
            report.seen += 1
            sha = hashlib.sha256(raw.data).hexdigest()
            places = known.get(sha)
            if places and (list_name, raw.location) in places:
                report.unchanged += 1
            elif places or sha in in_batch:
                report.duplicates += 1
                repeats.append(Entry(raw=raw, sha256=sha))
            else:
                in_batch.add(sha)
                entry = prepare(raw, sha, timings)
                fresh.append(entry)
                if entry.message is None:
                    report.rejected += 1
                    reasons[entry.reason[:100]] += 1
        started = perf_counter()
        if fresh:
            stored, dupes = store.write_batch(list_name, fresh)
            new_ids.extend(stored)
            report.duplicates += dupes
            report.stored += len(stored)
            stored_set = set(stored)
            for entry in fresh:
                if entry.message is not None and entry.message.message_id in stored_set \
                        and entry.message.degraded:
                    report.degraded += 1
                    degraded.update(entry.message.degraded)
        if repeats:
            store.add_sources(list_name, repeats)
        timings["store"] += perf_counter() - started
        if progress:
            progress(len(batch))
    if new_ids:
        started = perf_counter()
        total = store.count_messages()
        inputs = store.thread_inputs(new_ids, everything=len(new_ids) * 3 > total)
        store.write_threads(thread(inputs, max_depth=int(config.get("max_thread_depth"))))
        report.rethreaded = len(inputs)
        timings["thread"] += perf_counter() - started
    report.reasons = dict(reasons)
    report.degraded_reasons = dict(degraded)
    return report


def _timed(items: Iterator, timings: Counter, name: str) -> Iterator:
    """Yield from an iterator, adding the time spent inside it to timings[name]."""
    while True:
        started = perf_counter()
        try:
            item = next(items)
        except StopIteration:
            timings[name] += perf_counter() - started
            return
        timings[name] += perf_counter() - started
        yield item


def _raws(sources: list[str], skipped: list[str]) -> Iterator[RawMessage]:
    for spec in sources:
        yield from read_source(spec, skipped)
