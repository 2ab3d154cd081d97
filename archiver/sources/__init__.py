"""Where raw messages come from: recognise a source and yield its raw messages."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

from ..errors import SourceError
from ..models import RawMessage
from . import mbox, pipermail


def check_sources(specs: list[str]) -> None:
    """Raise SourceError for a source that does not exist, before anything is read."""
    missing = [spec for spec in specs if spec != "-" and not Path(spec).exists()]
    if missing:
        raise SourceError(f"no such file or directory: {', '.join(missing)}")


def read_source(spec: str, skipped: list[str]) -> Iterator[RawMessage]:
    """Yield the raw messages of a path, directory or '-' (stdin); unreadable files go to skipped."""
    if spec == "-":
        yield from mbox.read_stdin(sys.stdin.buffer)
        return
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"no such file or directory: {spec}")
    if path.is_file():
        yield from mbox.read_file(path, skipped)
        return
    # Walk with an explicit stack: directory depth comes from the outside world.
    stack = [path]
    while stack:
        folder = stack.pop()
        maildir = mbox.is_maildir(folder)
        if maildir:
            # A maildir's cur/ and new/ are read as such; files and folders beside them
            # (notmuch keeps both in one tree) are walked like any other.
            yield from mbox.read_maildir(folder)
        elif pipermail.is_mirror(folder):
            yield from pipermail.read_mirror(folder, skipped)
            # Month folders and attachments of a mirror are pages, not mail.
            continue
        folders = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name.startswith(".") or (maildir and entry.name in ("cur", "new", "tmp")):
                continue
            if entry.is_dir(follow_symlinks=False):
                folders.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                yield from mbox.read_file(Path(entry.path), skipped)
        stack.extend(reversed(folders))  # popped in name order
