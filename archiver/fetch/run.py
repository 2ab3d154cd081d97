"""Fetch live archives and ingest what is new or changed: one archive, or every list of the lists file."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from time import perf_counter
from typing import Callable, Mapping

from .. import config
from ..errors import ArchiverError, SourceError
from ..pipeline import ingest_raws, update_index
from ..query import Archive
from ..sources import hyperkitty, live, remote_pipermail
from ..sources.gzipped import unpack
from ..sources.http import Client, Credentials, FetchError, Politeness, Response, Validators
from ..sources.mbox import sniff
from ..sources.remote import RemoteMonth
from .lists import ListSpec, check_url
from .report import FetchReport, MonthResult
from .state import STATE_FILE, FetchState


def politeness() -> Politeness:
    """Return the client's manners from the settings table."""
    return Politeness(
        user_agent=str(config.get("fetch_user_agent")),
        delay=float(config.get("fetch_delay")),
        timeout=float(config.get("fetch_timeout")),
        retries=int(config.get("fetch_retries")),
        backoff=float(config.get("fetch_backoff")),
        max_retry_after=float(config.get("fetch_max_retry_after")),
        max_redirects=int(config.get("fetch_max_redirects")),
        max_bytes=int(config.get("fetch_max_bytes")),
        max_page_bytes=int(config.get("fetch_max_page_bytes")),
    )


@dataclass
class _Run:
    archive: Archive
    client: Client
    state: FetchState
    list_name: str
    kind: str
    base: str
    settle: timedelta
    report: FetchReport


def fetch_archive(archive: Archive, url: str, data_dir: Path, list_name: str | None = None,
                  since: str | None = None, until: str | None = None,
                  credentials: Credentials | None = None, kind: str = "auto",
                  policy: Politeness | None = None, index: bool = True,
                  on_month: Callable[[MonthResult], None] | None = None) -> FetchReport:
    """Download what is new or changed in a pipermail or HyperKitty archive and ingest it, month
    by month; a month that fails is reported and the others go on. Raise ArchiverError when the
    archive's front page cannot be read or recognised."""
    started = perf_counter()
    client = Client(policy or politeness(), credentials)
    report = FetchReport(url=check_url(url))
    try:
        front = client.get(url)
        found = live.recognise(front.url, front.body) if kind == "auto" else kind
        if found is None:
            raise SourceError(f"{url}: neither a pipermail archive index nor a HyperKitty list page")
        if found == "hyperkitty" and not hyperkitty.list_address(front.url):
            raise SourceError(f"{front.url}: not a HyperKitty list page (.../list/NAME@HOST/)")
        base = hyperkitty.list_root(front.url) if found == "hyperkitty" else front.url
        months = live.months(found, front.url, front.body)
        if not months:
            raise SourceError(f"{url}: the archive lists no months")
        report.kind, report.list_name = found, list_name or live.list_name(found, base)
        run = _Run(archive, client, FetchState(data_dir / STATE_FILE), report.list_name, found,
                   base, timedelta(days=int(config.get("fetch_settle_days"))), report)
        explicit = since is not None or until is not None
        for month in months:
            if (since is None or month.key >= since) and (until is None or month.key <= until):
                report.months.append(_month(run, month, explicit))
                if on_month is not None:
                    on_month(report.months[-1])
        if index and archive.index is not None:
            report.ingest.indexed = update_index(archive)
    finally:
        report.requests = client.stats.as_dict()
        report.seconds = perf_counter() - started
    return report


def sync(archive: Archive, data_dir: Path, specs: list[ListSpec], policy: Politeness | None = None,
         environ: Mapping[str, str] | None = None) -> list[FetchReport]:
    """Fetch every list of the lists file; a list that fails is reported and the others go on.
    A message cross-posted to two lists is stored once, in both, with both sources."""
    policy = policy or politeness()
    reports = []
    for number, spec in enumerate(specs):
        if number:
            time.sleep(policy.delay)   # lists often share a host: the delay holds between them too
        try:
            report = fetch_archive(archive, spec.url, data_dir, list_name=spec.name, kind=spec.kind,
                                   credentials=spec.credentials(environ), policy=policy, index=False)
        except ArchiverError as exc:
            report = FetchReport(url=spec.url, list_name=spec.name, kind=spec.kind, error=str(exc))
        reports.append(report)
    if archive.index is not None and reports:
        reports[-1].ingest.indexed += update_index(archive)
    return reports


def _month(run: _Run, month: RemoteMonth, explicit: bool) -> MonthResult:
    """Fetch one month (one conditional request when unchanged) and ingest it when it changed."""
    key = FetchState.key(run.list_name, run.base, month.key)
    record = run.state.get(key) or {}
    if record and not explicit and _settled(record, month, run.settle):
        return MonthResult(month.key, "settled", record.get("url"),
                           "no validators from the server; fetched after the month had settled")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        url, response = _download(run, month, record)
        if response.status == 304:
            run.state.put(key, {**record, "checked": now})
            return MonthResult(month.key, "unchanged", url, "304 Not Modified")
        text: bytes = response.payload
        digest = hashlib.sha256(text).hexdigest()
        kept = {"url": url, "etag": response.validators.etag, "checked": now,
                "last_modified": response.validators.last_modified, "sha256": digest}
        if record.get("sha256") == digest:
            run.state.put(key, {**record, **kept})
            return MonthResult(month.key, "unchanged", url, "same content", bytes=len(response.body))
        if text.strip() and sniff(text[:4096]) != "mbox":
            kind = response.headers.get("content-type", "unknown type")
            raise SourceError(f"{url}: not an mbox ({kind})")
        raws = _messages(run, month, text, url)
        # The month's text is whole and checked before its first message is ingested.
        run.report.add(ingest_raws(run.archive.store, raws, run.list_name))
        run.state.put(key, {**kept, "messages": len(raws), "fetched": now})
        return MonthResult(month.key, "fetched", url, messages=len(raws), bytes=len(response.body))
    except SourceError as exc:   # FetchError and AuthError included
        return MonthResult(month.key, "failed", reason=str(exc))


def _download(run: _Run, month: RemoteMonth, record: dict) -> tuple[str, Response]:
    """GET a month's text from its first URL that exists, conditionally when it is known."""
    limit = run.client.policy.max_bytes
    urls = list(month.urls)
    if record.get("url") in urls:
        # The URL a month was fetched from stays its URL: when the running month settles, its
        # .txt keeps answering 304 where a first download of the .txt.gz would cost bytes and
        # record every message again under a second location.
        urls.remove(record["url"])
        urls.insert(0, record["url"])
    for number, url in enumerate(urls):
        known = record.get("url") == url
        validators = Validators(record.get("etag"), record.get("last_modified")) if known else None
        try:
            return url, run.client.get(url, validators, limit=limit, check=lambda b: unpack(b, limit))
        except FetchError as exc:
            if exc.status not in (404, 410) or number + 1 == len(urls):
                raise
    raise SourceError(f"{month.name}: no URL to download")


def _messages(run: _Run, month: RemoteMonth, text: bytes, url: str):
    if run.kind == "hyperkitty":
        return hyperkitty.messages(text, url, run.base)
    store = run.archive.store
    return remote_pipermail.messages(
        run.client, month, text, url, run.base,
        is_known=lambda data: bool(store.stored([hashlib.sha256(data).hexdigest()])))


def _settled(record: dict, month: RemoteMonth, settle: timedelta) -> bool:
    """A month whose server sends no validators is not asked for again once a fetch after its
    end plus the settling time found it (HyperKitty's exports carry neither ETag nor Last-Modified)."""
    if record.get("etag") or record.get("last_modified") or not record.get("sha256"):
        return False
    try:
        checked = datetime.fromisoformat(record["checked"])
    except (KeyError, TypeError, ValueError):
        return False
    ended = datetime(month.end.year, month.end.month, month.end.day, tzinfo=timezone.utc)
    return checked >= ended + settle
