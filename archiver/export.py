"""Streaming export renderers: a registry from format name to a generator of text chunks."""

from __future__ import annotations

import json
from typing import Callable, Iterable, Iterator

from .errors import ArchiverError


def jsonl(records: Iterable[dict]) -> Iterator[str]:
    """Render one JSON object per line."""
    for record in records:
        yield json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"


RENDERERS: dict[str, Callable[[Iterable[dict]], Iterator[str]]] = {
    "jsonl": jsonl,
}


def render(fmt: str, records: Iterable[dict]) -> Iterator[str]:
    """Return the chunks of an export in a registered format."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ArchiverError(f"unknown export format {fmt!r}; known: {', '.join(sorted(RENDERERS))}")
    return renderer(records)
