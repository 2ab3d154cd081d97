"""Soak the ingester in kills: tests/test_crash.py's series, more of them, on a larger corpus.

Generates a corpus, ingests it cleanly once, then for each series starts `archiver ingest`
into a fresh data directory and kills it (SIGKILL, the ingester's process only) after seeded
random delays over what is left to do, until it is complete or the series' kills are spent;
runs it once more to the end and compares the archive with the clean one (messages, raws,
sources, threads and their topics, each message's index document, `archiver check`).
Prints each kill and writes a summary to benchmarks/crash-latest.json.

Example: python benchmarks/crash.py --messages 10000 --series 10 --kills 12
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import test_crash as crash  # noqa: E402


def stage(outcome: dict, total: int) -> str:
    """Where a kill landed, from what it left."""
    if outcome["stored"] < total:
        return "storing"
    if outcome["threaded"] < total:
        return "threading"
    if outcome["marked"] < total:
        return "indexing"
    return "after the work"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--series", type=int, default=5)
    parser.add_argument("--kills", type=int, default=10, help="kills per series, at most")
    parser.add_argument("--seed", type=int, default=2012)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "crash-latest.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        corpus = crash.generate(where, args.messages)
        logs = where / "logs"
        logs.mkdir()
        clean_data = where / "clean"
        clean_url = crash.sqlite_url(clean_data)
        report, span = crash.run_ingest(clean_data, clean_url, corpus, logs / "clean.log")
        _, overhead = crash.run_ingest(clean_data, clean_url, corpus, logs / "again.log")
        index = report["seconds"]["index"]
        clean = {"stored": report["stored"], "overhead": overhead, "index": index,
                 "store": max(0.5, span - overhead - index)}
        expected = crash.snapshot(clean_data, clean_url)
        print(f"{args.messages} messages: clean ingest {span:.1f} s (index {index:.1f} s)")
        rng = random.Random(args.seed)
        stages: Counter = Counter()
        kills = finals = 0
        started = time.perf_counter()
        for series in range(args.series):
            data = where / f"crashed-{series}"
            print(f"series {series}:")
            url = crash.sqlite_url(data)
            outcomes = crash.kill_series(data, url, corpus, logs, args.kills, rng, clean)
            for outcome in outcomes:
                if outcome["killed"]:
                    kills += 1
                    stages[stage(outcome, clean["stored"])] += 1
            final, seconds = crash.run_ingest(data, url, corpus, logs / f"{data.name}-final.log")
            crash.compare(crash.snapshot(data, url), expected)
            finals += 1
            print(f"  then to the end in {seconds:.1f} s; same archive as the clean ingest")
        summary = {"messages": args.messages, "seed": args.seed, "series": args.series,
                   "kills": kills, "kills_left_the_archive": dict(stages),
                   "clean_ingest_seconds": round(span, 1),
                   "soak_seconds": round(time.perf_counter() - started, 1),
                   "resumed_archives_equal_to_clean": finals}
    print(json.dumps(summary, indent=1))
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
