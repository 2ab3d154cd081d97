"""A month of a live archive, and where its mbox text can be downloaded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_MONTH_ARG = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class RemoteMonth:
    """One month of an archive: its mbox text's URLs (preferred first) and its article list."""

    year: int
    month: int
    name: str                   # as the archive names it: "2012-December", "2012-10"
    urls: tuple[str, ...]
    page: str | None = None     # pipermail's date.html, which numbers the month's articles

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def end(self) -> date:
        """The first day after the month."""
        return date(self.year + self.month // 12, self.month % 12 + 1, 1)


def check_month(value: str) -> str:
    """Return a YYYY-MM month as given, or raise ValueError."""
    if not _MONTH_ARG.match(value):
        raise ValueError(f"{value!r} is not a month written YYYY-MM")
    return value
