"""What the fetcher remembers between runs: each month's validators and content hash, in the data directory."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

STATE_FILE = "fetch-state.json"
log = logging.getLogger("archiver.fetch")


class FetchState:
    """Per-month records (URL, ETag, Last-Modified, SHA-256 of the text, dates), saved as JSON."""

    def __init__(self, path: Path):
        self.path = path
        self.months: dict[str, dict] = {}
        if path.is_file():
            try:
                self.months = dict(json.loads(path.read_text(encoding="utf-8"))["months"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # A damaged state costs one full download and a no-op ingest, never a wrong skip.
                log.warning("%s is unreadable (%s): starting afresh", path, exc)
                self.months = {}

    @staticmethod
    def key(list_name: str, base: str, month: str) -> str:
        return f"{list_name} {base} {month}"

    def get(self, key: str) -> dict | None:
        return self.months.get(key)

    def put(self, key: str, record: dict) -> None:
        """Remember a month and save at once: an interrupted run keeps what it finished."""
        self.months[key] = record
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps({"version": 1, "months": self.months}, indent=1, sort_keys=True),
                             encoding="utf-8")
        os.replace(temporary, self.path)
