"""Pulling live archives over HTTP into the store: `archiver fetch` and `archiver sync`."""

from .lists import ListSpec, credentials_for, load_lists
from .report import FetchReport, MonthResult, lines
from .run import fetch_archive, politeness, sync

__all__ = ["FetchReport", "ListSpec", "MonthResult", "credentials_for", "fetch_archive", "lines",
           "load_lists", "politeness", "sync"]
