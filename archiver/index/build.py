"""Writing an index's segments: in this process, or in forked processes side by side."""

from __future__ import annotations

import multiprocessing
import os
import traceback
from pathlib import Path
from typing import Callable, Iterable

from whoosh.index import TOC

from ..errors import ArchiverError
from .analysis import document
from .codec import _writer
from .storage import create_in, open_dir

SEGMENT_DOCS = 50_000   # a build writes a segment per this many messages (bounds memory)


def write_segments(ix, records: Iterable[dict], size: int | None = None) -> int:
    """Add records to an index as new segments of at most size (SEGMENT_DOCS) documents each."""
    size = size or SEGMENT_DOCS
    records = iter(records)
    count = 0
    while True:
        writer = _writer(ix)
        added = 0
        try:
            for record in records:
                writer.add_document(**document(record))
                added += 1
                if added == size:
                    break
        except BaseException:
            writer.cancel()
            raise
        if added:
            writer.commit(merge=False)
        else:
            writer.cancel()
        count += added
        if added < size:
            return count


# Updates add a segment each; these are merged once several are small, never the big ones.
SMALL_SEGMENT = 10_000
SMALL_SEGMENTS = 4


def merge_small(writer, segments: list) -> list:
    """A merge policy for updates: merge the small segments, once there are SMALL_SEGMENTS of
    them, into one; never a big one. (Whoosh's own policy, counting segments against a
    Fibonacci bound, merged 27 of the 43 segments of a 1,000,000-message index, 675,000
    documents in one process, when one month was added: 2.4 GB and minutes.)"""
    from whoosh.reading import SegmentReader

    small = [seg for seg in segments if seg.doc_count_all() < SMALL_SEGMENT]
    if len(small) < SMALL_SEGMENTS:
        return segments
    for seg in small:
        reader = SegmentReader(writer.storage, writer.schema, seg)
        writer.add_reader(reader)
        reader.close()
    return [seg for seg in segments if seg not in small]


def build_parallel(fresh: Path, parts: list[Callable[[], Iterable[dict]]]) -> int:
    """Write each part's records into segments of its own, in a forked process per part, and
    make the empty directory fresh one index of all their segments; return the documents.
    Analysis and Whoosh's per-document work are most of a build, and a process uses one core.
    A segment is built in memory: the parts' segments are smaller, so that together they hold
    no more than one build in one process would."""
    context = multiprocessing.get_context("fork")
    size = max(SEGMENT_DOCS // len(parts), 10_000)
    children = []
    for number, records in enumerate(parts):
        where = fresh / f"part-{number}"
        where.mkdir()
        child = context.Process(target=_build_part, args=(records, where, size), daemon=True)
        child.start()
        children.append((child, where))
    for child, _ in children:
        child.join()
    for child, where in children:
        if child.exitcode != 0:
            error = where / "error"
            raise ArchiverError(f"building the search index failed (exit code {child.exitcode})"
                                + (f":\n{error.read_text()}" if error.exists() else ""))
    ix = create_in(fresh)
    segments, count = [], 0
    for _, where in children:
        segments += open_dir(where)._segments()
        count += int((where / "count").read_text())
        for item in where.iterdir():
            # Segment files are named by their random segment id: they cannot collide.
            if item.name.startswith(ix.indexname + "_") and not item.name.endswith(".toc"):
                item.rename(fresh / item.name)
        for item in where.iterdir():
            item.unlink()
        where.rmdir()
    TOC(ix.schema, segments, ix.latest_generation() + 1).write(ix.storage, ix.indexname)
    return count


def _build_part(records: Callable[[], Iterable[dict]], where: Path, size: int) -> None:
    """A forked child's part of a parallel build: its segments, its count, or its error."""
    code = 0
    try:
        count = write_segments(create_in(where), records(), size)
        (where / "count").write_text(str(count))
    except BaseException:   # everything, even an interrupt, is reported to the parent
        (where / "error").write_text(traceback.format_exc())
        code = 1
    finally:
        # The child leaves at once: the parent's exit handlers and buffers are not its own.
        os._exit(code)
