"""Index directories whose segment files readers map into memory instead of copying them."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.structfile import BufferFile

from .schema import SCHEMA


class MappedStorage(FileStorage):
    """A directory of index files, each opened for reading as a read-only map of the file.

    Whoosh's own storage maps a segment's compound file and then copies each file inside it
    into a BytesIO: every reader held the whole index in its private memory (1 GB for
    1,000,000 messages), in every process that searched. Here a file and the files inside it
    are views of the one map: nothing is copied, the pages are the page cache's, shared by
    every process that reads the index, and a view stays readable after a rebuild or merge
    deletes its file."""

    def open_file(self, name, **kwargs):
        with open(self._fpath(name), "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return _View(memoryview(b""), name=name, **kwargs)   # cannot be mapped
            try:
                data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            except OSError:   # a file system that cannot map files: read it, as Whoosh did
                return _View(memoryview(handle.read()), name=name, **kwargs)
        return _View(memoryview(data), name=name, mapped=data, **kwargs)


class _View(BufferFile):
    """Whoosh's BufferFile, without the copy it makes for sequential reads; a part of it (a
    file inside a compound file) is a view too. Each view keeps its own position: one searcher
    is not for two threads at once (the web gives each thread its own)."""

    def __init__(self, buf: memoryview, name=None, onclose=None, mapped: mmap.mmap | None = None):
        self._buf = buf
        self._mapped = mapped
        self._name = name
        self.onclose = onclose
        self.file = _Cursor(buf)
        self.is_real = False
        self.is_closed = False

    def subset(self, position, length, name=None):
        return _View(self._buf[position:position + length], name=name or self._name)

    def close(self):
        """Release the view, and the map with the last of them: closed, a deleted file's
        space and descriptor are given back without waiting for the garbage collector."""
        super().close()
        self._buf.release()   # reading it now raises ValueError, as a closed file does
        if self._mapped is not None:
            try:
                self._mapped.close()
            except BufferError:
                pass   # views of files inside it are open still: it goes with the last


class _Cursor:
    """The sequential reads a StructFile makes, over a memoryview."""

    def __init__(self, buf: memoryview):
        self.buf = buf
        self.pos = 0

    def read(self, size: int = -1) -> bytes:
        start = self.pos
        # A slice stops at the end by itself: one step less on the index's most frequent call.
        data = self.buf[start:] if size is None or size < 0 else self.buf[start:start + size]
        self.pos = start + len(data)
        return data.tobytes()

    def readline(self, size: int = -1) -> bytes:
        # Only pickles are read by line here (their headers), never long ones.
        start, end = self.pos, len(self.buf)
        stop = start
        while stop < end and self.buf[stop] != 10:
            stop += 1
        length = min(stop + 1, end) - start
        return self.read(length if size is None or size < 0 else min(length, size))

    def seek(self, offset: int, whence: int = 0) -> int:
        position = (0, self.pos, len(self.buf))[whence] + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self.pos = position
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        pass   # the view that owns the buffer releases it


def open_dir(path: Path):
    """Open the index in a directory (whoosh.index.EmptyIndexError where there is none)."""
    return MappedStorage(str(path)).open_index()


def create_in(path: Path):
    """Create an empty index with the archive's schema in an existing directory."""
    return MappedStorage(str(path)).create_index(SCHEMA)
