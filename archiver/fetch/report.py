"""What a fetch did: per month (fetched, unchanged, settled, failed and why), requests, the ingest."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import IngestReport

STATUSES = ("fetched", "unchanged", "settled", "failed")


@dataclass
class MonthResult:
    month: str                 # YYYY-MM
    status: str                # one of STATUSES
    url: str | None = None
    reason: str = ""           # why it failed, or how it was found unchanged
    messages: int = 0
    bytes: int = 0

    def as_dict(self) -> dict:
        return {"month": self.month, "status": self.status, "url": self.url, "reason": self.reason,
                "messages": self.messages, "bytes": self.bytes}


@dataclass
class FetchReport:
    url: str
    list_name: str = ""
    kind: str = ""
    months: list[MonthResult] = field(default_factory=list)
    ingest: IngestReport = field(default_factory=IngestReport)
    requests: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""            # the archive could not be read at all

    @property
    def failed(self) -> bool:
        return bool(self.error) or any(m.status == "failed" for m in self.months)

    def counts(self) -> dict[str, int]:
        return {status: sum(m.status == status for m in self.months) for status in STATUSES}

    def add(self, part: IngestReport) -> None:
        """Add one month's ingest to the fetch's total."""
        self.ingest.merge(part)

    def as_dict(self) -> dict:
        return {"url": self.url, "list": self.list_name, "kind": self.kind, "error": self.error,
                "months": [m.as_dict() for m in self.months], "counts": self.counts(),
                "requests": self.requests, "seconds": round(self.seconds, 3),
                "ingest": self.ingest.as_dict()}


def lines(report: FetchReport) -> list[str]:
    """Return the report as text: a heading, month counts, fetched and failed months, totals."""
    head = f"{report.list_name or '?'}: {report.kind or 'archive'} at {report.url}"
    if report.error:
        return [head, f"  failed: {report.error}"]
    counts = report.counts()
    out = [head, f"months {len(report.months)}: fetched {counts['fetched']}, unchanged "
                 f"{counts['unchanged']}, settled {counts['settled']}, failed {counts['failed']}"]
    for month in report.months:
        if month.status == "fetched":
            out.append(f"  {month.month} fetched: {month.messages} messages, "
                       f"{_size(month.bytes)} from {month.url}")
        elif month.status == "failed":
            out.append(f"  {month.month} failed: {month.reason}")
    r = report.requests
    out.append(f"requests {r.get('requests', 0)} ({r.get('not_modified', 0)} not modified, "
               f"{r.get('retries', 0)} retries), {_size(r.get('bytes', 0))} received, "
               f"{report.seconds:.1f} s")
    data = report.ingest.as_dict()
    out.append(f"seen {data['seen']}: stored {data['stored']}, duplicates {data['duplicates']}, "
               f"unchanged {data['unchanged']}, rejected {data['rejected']} "
               f"(degraded {data['degraded']}, re-threaded {data['rethreaded']}, "
               f"indexed {data['indexed']})")
    for reason, count in data["rejected_reasons"].items():
        out.append(f"  rejected {count}: {reason}")
    return out


def _size(count: int) -> str:
    return f"{count / 1024:.0f} KB" if count >= 1024 else f"{count} B"
