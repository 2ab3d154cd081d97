"""The one place that knows the order of the stages; progress; the ingest report."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import lru_cache
from itertools import islice
from pathlib import Path
from time import perf_counter
from typing import Callable, Iterable, Iterator

from . import config
from .clean import clean_message, is_forward, normalise_subject
from .errors import ArchiverError
from .language import preload as preload_language
from .language import tag_language
from .models import IngestReport, Message, RawMessage
from .parse import parse_message
from .query import Archive
from .sources import check_sources, read_source
from .packing import pack, pack_texts
from .store import Entry, Store, attachment_list
from .thread import thread
from .topics import (Taxonomy, cached_taxonomy, evaluate, load_overrides, tag_message,
                     thread_topics)


def parse_stage(raw: RawMessage) -> Message:
    """Parse with the configured bounds on MIME parts and message size."""
    return parse_message(raw, max_parts=int(config.get("max_mime_parts")),
                         max_bytes=int(config.get("max_message_bytes")))


def taxonomy() -> Taxonomy:
    """Return the configured agenda taxonomy (read again only when its file changes)."""
    return cached_taxonomy(config.path("topics_file"))


def overrides() -> dict:
    """Return the moderators' per-thread topic overrides (read once per process)."""
    return _overrides(str(config.path("overrides_file")), str(config.path("topics_file")))


@lru_cache(maxsize=4)
def _overrides(path: str, topics_path: str) -> dict:
    return load_overrides(path, cached_taxonomy(topics_path)) if Path(path).is_file() else {}


def topics_stage(message: Message) -> Message:
    """Tag a cleaned message with the agenda topics its own words and subject support."""
    tags = tag_message(message.own_text, message.subject, taxonomy())
    return replace(message, topics=tuple(sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))))


# The stages a raw message goes through before it is stored, in order.
STAGES: tuple[tuple[str, Callable], ...] = (
    ("parse", parse_stage),
    ("clean", clean_message),
    ("language", tag_language),
    ("topics", topics_stage),
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
    # Threading files a reference-less reply by its subject; a forward starts a conversation.
    is_reply = normalise_subject(value.subject)[1] and not is_forward(value.subject)
    return Entry(raw=raw, sha256=sha, message=value, is_reply=is_reply)


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _prepare_many(items: list[tuple[RawMessage, str]], zdict: bytes) -> tuple[list[tuple], Counter]:
    """Run the stages over a slice of a batch (in a worker process, or here), and pack the raw
    bytes and texts as the store keeps them (with the store's dictionary)."""
    timings: Counter = Counter()
    out = []
    for raw, sha in items:
        entry = prepare(raw, sha, timings)
        started = perf_counter()
        packed = pack(raw.data, zdict)
        msg = entry.message
        texts = msg and pack_texts(msg.own_text, msg.quoted_text, msg.signature, msg.footer,
                                   attachment_list(msg), raw.data)
        timings["pack"] += perf_counter() - started
        out.append((msg, entry.is_reply, entry.reason, packed, texts))
    return out, timings


class _Done:
    """A finished result with the interface of a Future, for in-process preparation."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def _workers() -> int:
    wanted = int(config.get("workers"))
    return wanted if wanted > 0 else min(4, os.cpu_count() or 1)


def ingest(store: Store, sources: list[str], list_name: str,
           progress: Callable[[int], None] | None = None, batch_size: int | None = None,
           workers: int | None = None, archive: Archive | None = None) -> IngestReport:
    """Ingest every message of the sources into a list, re-thread what changed, update the
    archive's search index (when given), and report."""
    report = IngestReport()
    check_sources(sources)
    return ingest_raws(store, _raws(sources, report.skipped_files), list_name, progress,
                       batch_size, workers, archive, report)


def ingest_raws(store: Store, items: Iterable[RawMessage], list_name: str,
                progress: Callable[[int], None] | None = None, batch_size: int | None = None,
                workers: int | None = None, archive: Archive | None = None,
                report: IngestReport | None = None) -> IngestReport:
    """Ingest raw messages a source already read (a fetched month, say) like `ingest` does."""
    report = report if report is not None else IngestReport()
    store.bulk_cache(int(config.get("ingest_cache_mb")))
    size = int(batch_size or config.get("batch_size"))
    count = workers if workers is not None else _workers()
    raws = _timed(iter(items), report.timings, "read")
    pool = None
    pending = None
    try:
        previous: set[str] = set()
        for number, batch in enumerate(_batches(raws, size)):
            # The batch before is still being written: its new raw messages count as seen.
            fresh, repeats = _classify(store, batch, list_name, report, previous)
            previous = {sha for _, sha in fresh}
            # The store's packing dictionary comes from the first messages it is given.
            zdict = store.ensure_zdict([raw.data for raw, _ in fresh])
            if number == 1 and count > 1:
                # Only an archive of more than one batch is worth starting worker processes.
                pool = _start_pool(count)
            futures = _submit(pool, count, fresh, zdict)
            if pending is not None:
                _rethread(store, _write(store, list_name, report, *pending), report)
            pending = (fresh, futures, repeats, len(batch), progress)
        if pending is not None:
            _rethread(store, _write(store, list_name, report, *pending), report)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    # Messages an interrupted earlier ingest stored but never threaded are threaded now.
    for batch in _batches(store.unthreaded(), size):
        _rethread(store, batch, report)
    if archive is not None and archive.index is not None:
        # Searchable before the command returns: what was stored is indexed now.
        started = perf_counter()
        report.indexed = update_index(archive, workers=count)
        report.timings["index"] += perf_counter() - started
    return report


# Below this many messages a parallel index build does not repay starting its processes.
PARALLEL_INDEX_MIN = 20_000


def update_index(archive: Archive, chunk: int = 2000, workers: int | None = None) -> int:
    """Bring the search index up to date with the store; return how many documents changed
    (added, replaced or deleted). Redacted messages are deleted from the index: their rows
    stay in the store, but no search may find them or count them in a total or facet.

    The store's index lock is held throughout (Store.indexing): another ingester's writes
    that change what the index must hold wait until the rows read here are marked, and a
    second index update waits for this one, then finds only what is left."""
    with archive.store.indexing():
        return _update_index(archive, chunk, workers)


def _update_index(archive: Archive, chunk: int, workers: int | None) -> int:
    store = archive.store
    if archive.index.doc_count() == 0:
        # A first build (an archive's first ingest) runs on every core.
        built = _build_in_parallel(archive, chunk, workers, every=False)
        if built is not None:
            return built
    done: list[tuple[int, int]] = []   # row id ranges sent to the index
    redacted = {row["message_id"] for row in store.redactions()}
    gone: list[str] = []               # redacted messages among the rows: deleted, not indexed
    # Rows above the index's bound are messages it has never held: added without looking
    # for one to replace. The new bound is noted before any row is sent, and no row above it
    # is read, so it holds even if this update stops half-way.
    found, upto = archive.index.bound(), store.last_row()
    known = _verified(archive, found)
    if found is None or known is not None:   # not when distrusted
        archive.note_index_bound(upto)
    new: set[str] = set()

    def records() -> Iterator[dict]:
        after = 0
        while rows := store.unindexed(after=after, limit=chunk, upto=upto):
            done.append((rows[0][0], rows[-1][0]))
            after = rows[-1][0]
            ids = [mid for _, mid in rows]
            gone.extend(mid for mid in ids if mid in redacted)
            if known is not None:
                new.update(mid for pk, mid in rows if pk > known)
            yield from archive.records([mid for mid in ids if mid not in redacted])

    total = archive.index.update(records(), new=new)
    total += archive.index.delete(gone)
    # Marked only after the index committed: a crash in between re-indexes, never skips.
    for low, high in done:
        store.mark_indexed(low, high)
    return total


def _verified(archive: Archive, found) -> int | None:
    """The row above which the index holds no message (found: the index's bound()), if the
    store is still the one it was noted beside: that row holds the same message. A store
    restored from an older backup (or made anew) would give rows above it to messages the
    index holds from before; the bound is then distrusted until a repair or a rebuild notes
    another."""
    if not isinstance(found, tuple):
        return None
    row, key = found
    if row and archive.store.row_hash(row) != key:
        archive.index.distrust()
        return None
    return row


def evaluate_tagger(archive: Archive, truth_path: str) -> dict:
    """Tag the stored messages named in a ground-truth file (JSON lines with message_id and
    topics) with the current taxonomy, and score the result."""
    with open(truth_path, encoding="utf-8") as handle:
        truth = [json.loads(line) for line in handle if line.strip()]
    truth = [t for t in truth if t.get("message_id")]
    records = {r["message_id"]: r for r in archive.records([t["message_id"] for t in truth])}
    if not records:
        raise ArchiverError("none of the ground truth's messages are in this archive: "
                            "ingest the sample archive first")
    known = [t for t in truth if t["message_id"] in records]
    predicted = {mid: set(tag_message(r["own_text"], r["subject"], taxonomy()))
                 for mid, r in records.items()}
    return evaluate(known, predicted)


def rebuild_index(archive: Archive, workers: int | None = None) -> int:
    """Build the search index anew from the store (the store is the truth; the index derived)."""
    with archive.store.indexing():
        count = _build_in_parallel(archive, 2000, workers, every=True)
        if count is None:
            count = archive.index.rebuild(archive.messages())
            # After the swap, as the parallel build does: no writer ran meanwhile (the
            # lock), so the index holds no message above the store's last row.
            archive.note_index_bound(archive.store.last_row())
        archive.store.mark_all_indexed()
    return count


def _build_in_parallel(archive: Archive, chunk: int, workers: int | None, every: bool) -> int | None:
    """Build a fresh index from the store's messages not indexed as they are (with every,
    all of them), one range of rows per core, each in a forked process; mark them indexed.
    Return None, doing nothing, where that does not pay (few messages, one core)."""
    store = archive.store
    count = workers if workers is not None else _workers()
    ranges = store.id_ranges(count, every=every) if count > 1 and sys.platform.startswith("linux") else []
    if len(ranges) < 2 or ranges[-1][1] - ranges[0][0] < PARALLEL_INDEX_MIN:
        return None
    redacted = {row["message_id"] for row in store.redactions()}

    def part(low: int, high: int) -> Callable[[], Iterator[dict]]:
        def records() -> Iterator[dict]:
            # A forked child: it opens connections of its own, never uses its parent's.
            store.engine.dispose(close=False)
            after = low - 1
            while rows := store.unindexed(after=after, limit=chunk, upto=high, every=every):
                after = rows[-1][0]
                yield from archive.records([mid for _, mid in rows if mid not in redacted])
        return records

    # The ingest's idle connections and their page caches, freed before they are forked. The
    # pool's own dispose, not the engine's: a connection checked out (the index lock's) goes
    # back to this pool and is closed with it, never left to the garbage collector.
    store.engine.pool.dispose()
    _release_memory()
    built = archive.index.rebuild_parallel([part(low, high) for low, high in ranges])
    # After the swap: the fresh index's bound.
    archive.note_index_bound(ranges[-1][1])
    for low, high in ranges:
        store.mark_indexed(low, high)
    return built


def _rethread(store: Store, new_ids: list[str], report: IngestReport) -> int:
    """Re-thread the threads that newly stored messages touch (memory bounded by those
    threads); return how many placements changed (thread, parent or depth)."""
    if not new_ids:
        return 0
    started = perf_counter()
    depth = int(config.get("max_thread_depth"))
    pins = overrides()
    tagging = [0.0]

    def topics(tags: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
        begun = perf_counter()
        found = {tid: thread_topics(items, pins.get(tid)) for tid, items in tags.items()}
        tagging[0] += perf_counter() - begun
        return found

    # Inputs read, threads and their topics written in one transaction: a kill between the
    # two writes would leave threads with the topics of what they were, and no later ingest
    # would look at them again; and an ingester on another list threads before or after
    # this step, never in the middle of it (Store.rethread).
    threaded, moved = store.rethread(new_ids, lambda inputs: thread(inputs, max_depth=depth),
                                     topics=topics)
    report.rethreaded += threaded
    report.timings["thread"] += perf_counter() - started - tagging[0]
    report.timings["topics"] += tagging[0]
    return moved


def retag_threads(store: Store, thread_ids: list[str]) -> None:
    """Give threads the topics of their messages, weighted, with moderators' overrides."""
    pins = overrides()
    for i in range(0, len(thread_ids), 500):
        part = thread_ids[i:i + 500]
        store.retopic(part, lambda tags, part=part: {tid: thread_topics(tags.get(tid, []), pins.get(tid))
                                                     for tid in part})


def retag(archive: Archive, chunk: int = 2000) -> dict:
    """Re-tag every message from its stored own words after a taxonomy or override edit,
    without re-parsing; only tags, thread topics and the index change."""
    _overrides.cache_clear()
    store, changed, seen = archive.store, 0, 0
    for rows in store.iter_texts(chunk):
        seen += len(rows)
        tags = {pk: tag_message(own, subject, taxonomy()) for pk, own, subject in rows}
        changed += store.replace_message_tags(tags)
    retag_threads(store, store.thread_ids())
    indexed = update_index(archive) if archive.index is not None else 0
    return {"messages": seen, "changed": changed, "indexed": indexed}


def rethread(archive: Archive, batch_size: int | None = None) -> dict:
    """Thread every stored message again, a batch at a time in row order as an ingest does
    (after an upgrade that changes threading, such as revision 0003); only placements that
    moved are written, and the index is brought up to date with what moved. Then count every
    thread in each list anew (the rows that changed are reported)."""
    store = archive.store
    size = int(batch_size or config.get("batch_size"))
    report = IngestReport()
    after = seen = moved = 0
    while rows := store.unindexed(after=after, limit=size, every=True):   # every row, in order
        after = rows[-1][0]
        seen += len(rows)
        moved += _rethread(store, [mid for _, mid in rows], report)
    recounted = store.recount_lists()
    indexed = update_index(archive) if archive.index is not None else 0
    return {"messages": seen, "moved": moved, "recounted": recounted, "indexed": indexed}


def _classify(store: Store, batch: list[RawMessage], list_name: str, report: IngestReport,
              previous: set[str]):
    """Split a batch into new raw messages and ones seen before (unchanged or duplicates)."""
    started = perf_counter()
    shas = [hashlib.sha256(raw.data).hexdigest() for raw in batch]
    stored, here = store.known(list_name, [(sha, raw.location) for raw, sha in zip(batch, shas)])
    fresh: list[tuple[RawMessage, str]] = []
    repeats: list[Entry] = []
    in_batch: set[str] = set(previous)
    for raw, sha in zip(batch, shas):
        report.seen += 1
        if (sha, raw.location) in here:
            report.unchanged += 1
        elif sha in stored or sha in in_batch:
            report.duplicates += 1
            repeats.append(Entry(raw=raw, sha256=sha))
        else:
            in_batch.add(sha)
            fresh.append((raw, sha))
    report.timings["hash"] += perf_counter() - started
    return fresh, repeats


def _submit(pool, count: int, fresh: list[tuple[RawMessage, str]], zdict: bytes) -> list:
    if pool is None or len(fresh) < 2 * count:
        return [_Done(_prepare_many(fresh, zdict))]
    step = -(-len(fresh) // count)
    return [pool.submit(_prepare_many, fresh[i:i + step], zdict) for i in range(0, len(fresh), step)]


def _write(store: Store, list_name: str, report: IngestReport, fresh, futures, repeats,
           batch_len: int, progress) -> list[str]:
    """Collect a batch's prepared messages, store them, and count the outcome."""
    results = []
    for future in futures:
        part, timings = future.result()
        results.extend(part)
        report.timings.update(timings)
    entries = [Entry(raw=raw, sha256=sha, message=message, is_reply=is_reply, reason=reason,
                     packed=packed, packed_texts=texts)
               for (raw, sha), (message, is_reply, reason, packed, texts) in zip(fresh, results)]
    started = perf_counter()
    stored: list[str] = []
    if entries:
        stored, duplicates = store.write_batch(list_name, entries)
        report.duplicates += duplicates
        report.stored += len(stored)
    if repeats:
        store.add_sources(list_name, repeats)
    report.timings["store"] += perf_counter() - started
    stored_set = set(stored)
    for entry in entries:
        if entry.message is None:
            report.rejected += 1
            report.reasons[entry.reason[:100]] = report.reasons.get(entry.reason[:100], 0) + 1
        elif entry.message.degraded and entry.message.message_id in stored_set:
            report.degraded += 1
            for reason in entry.message.degraded:
                report.degraded_reasons[reason] = report.degraded_reasons.get(reason, 0) + 1
    if progress:
        progress(batch_len)
    return stored


def _release_memory() -> None:
    """Give the C heap's free pages back to the system before forking: an ingest's parsing
    leaves many, and each forked child would count them in its own resident memory."""
    import gc
    gc.collect()
    if sys.platform.startswith("linux"):
        import ctypes
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):
            pass   # not glibc: nothing to give back this way


def _start_pool(count: int) -> ProcessPoolExecutor:
    """Start the worker processes (all of them at once, when forked), sharing what they can."""
    context = _context()
    if context is not None:
        preload_language()   # loaded here, the model's pages are the forked workers' too
    pool = ProcessPoolExecutor(count, mp_context=context, initializer=_die_with_parent,
                               initargs=(os.getpid(),))
    if context is None:
        return pool
    import gc
    # Frozen, the objects the workers inherit are never visited by their garbage collector,
    # which would write to them and so copy every page that holds one into each worker.
    gc.freeze()
    try:
        pool.submit(int).result()   # forks every worker (a forking pool starts them all)
    finally:
        gc.unfreeze()
    return pool


def _die_with_parent(parent: int) -> None:
    """Make a worker process end when the ingest that started it does, even when that is
    killed (SIGKILL, the OOM killer): a forked worker would otherwise wait for work forever,
    holding the data directory's writer lock (inherited with its open files), and every later
    ingest would be refused. Linux only; elsewhere workers are spawned without that lock."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)   # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:   # the ingest died before the line above ran
        os._exit(1)


def _context():
    # fork starts workers in milliseconds and shares the loaded modules; elsewhere use the default.
    return multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None


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
