"""Measure ingest speed and memory on the generator's corpus, beside the stdlib parse ceiling."""

from __future__ import annotations

import argparse
import gzip
import json
import mailbox
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MONTH = re.compile(r"^\d{4}-[A-Z][a-z]+\.txt(\.gz)?$")


def ensure_corpus(size: int, where: Path) -> Path:
    """Generate the corpus of this size once (cached under where)."""
    corpus = where / f"corpus-{size}"
    if not (corpus / ".complete").exists():
        shutil.rmtree(corpus, ignore_errors=True)
        subprocess.run([sys.executable, str(ROOT / "fixtures" / "generate.py"),
                        "--messages", str(size), "--out", str(corpus)], check=True)
        (corpus / ".complete").touch()
    return corpus


def plain_months(corpus: Path, where: Path) -> list[Path]:
    """Decompress the month files once, so the ceiling reads the same bytes as plain mbox."""
    out = where / (corpus.name + "-plain")
    out.mkdir(exist_ok=True)
    files = []
    for path in sorted(corpus.rglob("*")):
        if MONTH.match(path.name):
            target = out / f"{path.parent.name}-{path.name.removesuffix('.gz')}"
            if not target.exists():
                data = path.read_bytes()
                target.write_bytes(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
            files.append(target)
    return files


def ceiling(files: list[Path]) -> tuple[int, float]:
    """Iterate with the stdlib mailbox module and parse each message with compat32."""
    parser = BytesParser(policy=compat32)
    count = 0
    started = time.perf_counter()
    for path in files:
        box = mailbox.mbox(str(path), create=False)
        for key in box.iterkeys():
            parser.parsebytes(box.get_bytes(key))
            count += 1
        box.close()
    return count, time.perf_counter() - started


def run_ingest(corpus: Path, data: Path) -> tuple[dict, float, int]:
    """Run `archiver ingest` in a child process; return its report, wall seconds, peak RSS (KB)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "archiver.cli", "--data", str(data), "ingest",
                             str(corpus), "--list", "bench", "--format", "json"],
                            stdout=subprocess.PIPE, cwd=ROOT)
    out, _ = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed with exit code {proc.returncode}")
    # The largest resident set of any child waited for so far (Linux reports kilobytes).
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(out), wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (median)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "archiver-bench")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "ingest-latest.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    corpus = ensure_corpus(args.messages, args.work)
    files = plain_months(corpus, args.work)
    raw_bytes = sum(p.stat().st_size for p in files)

    ceilings, ingests, noops, peaks, reports = [], [], [], [], []
    for i in range(args.repeat):
        # Interleave the runs so that machine noise falls on both sides alike.
        count, seconds = ceiling(files)
        ceilings.append(count / seconds)
        data = args.work / f"data-{i}"
        shutil.rmtree(data, ignore_errors=True)
        report, wall, peak = run_ingest(corpus, data)
        ingests.append(report["seen"] / wall)
        reports.append(report)
        peaks.append(peak)
        _, noop_wall, _ = run_ingest(corpus, data)
        noops.append(noop_wall)
        store_bytes = (data / "archive.sqlite3").stat().st_size
    report = reports[len(reports) // 2]
    seen = report["seen"]
    result = {
        "messages": seen, "runs": args.repeat, "raw_mbox_bytes": raw_bytes,
        "stdlib_ceiling_msgs_per_s": statistics.median(ceilings),
        "ingest_msgs_per_s": statistics.median(ingests),
        "ratio_to_ceiling": statistics.median(ingests) / statistics.median(ceilings),
        "stage_msgs_per_s": {k: seen / v for k, v in report["seconds"].items() if v},
        "noop_reingest_s": statistics.median(noops),
        "peak_rss_mb": max(peaks) / 1024, "store_bytes": store_bytes,
        "stored": report["stored"], "duplicates": report["duplicates"],
        "rejected": report["rejected"],
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"| measure ({seen:,} messages, median of {args.repeat}) | value |")
    print("| --- | --- |")
    print(f"| stdlib mailbox + compat32 parse (ceiling) | {result['stdlib_ceiling_msgs_per_s']:,.0f} msg/s |")
    print(f"| archiver ingest, end to end | {result['ingest_msgs_per_s']:,.0f} msg/s |")
    print(f"| ratio to the ceiling | {result['ratio_to_ceiling']:.2f} |")
    for stage, rate in result["stage_msgs_per_s"].items():
        print(f"| stage `{stage}` alone | {rate:,.0f} msg/s |")
    print(f"| no-op re-ingest | {result['noop_reingest_s']:.1f} s |")
    print(f"| peak memory (RSS, largest child) | {result['peak_rss_mb']:,.0f} MB |")
    print(f"| store size / raw mbox size | {store_bytes / raw_bytes:.2f} |")


if __name__ == "__main__":
    main()
