"""Summarise a py-spy raw profile (collapsed stacks): where each kind of process spends its time.

    py-spy record --subprocesses --format raw --rate 50 -o ingest.raw -- \\
        .venv/bin/python -m archiver.cli --data DIR ingest CORPUS --list bench
    .venv/bin/python benchmarks/profile_summary.py ingest.raw > ingest-profile.md
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

# py-spy names a sampled process in the stack's first frame: process PID:"command line".
PROCESS = re.compile(r'^process (\d+):"(.*)"$')
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def place(frame: str, root: Path) -> str:
    """A frame as function (file), with the file relative to the project or the package."""
    found = FRAME.match(frame)
    if not found:
        return frame
    file = found["file"]
    for marker in ("site-packages/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    else:
        try:
            file = str(Path(file).resolve().relative_to(root))
        except ValueError:
            pass
    return f"{found['func']} ({file})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    by_pid: dict[str, Counter] = defaultdict(Counter)      # pid -> own time per frame
    inclusive: dict[str, Counter] = defaultdict(Counter)   # pid -> time under each frame
    totals: Counter = Counter()
    commands: dict[str, str] = {}
    for line in args.raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        pid = "main"
        if frames and (found := PROCESS.match(frames[0])):
            pid, commands[found[1]] = found[1], found[2]
            frames = frames[1:]
        frames = [place(f, root) for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        n = int(count)
        totals[pid] += n
        by_pid[pid][frames[-1]] += n
        for frame in set(frames):
            inclusive[pid][frame] += n
    # The process that started the others is the one sampled first (the lowest pid).
    pids = sorted(totals, key=lambda p: (not p.isdigit(), int(p) if p.isdigit() else 0))
    roles = {pid: ("main process" if i == 0 else "worker") for i, pid in enumerate(pids)}
    if len(pids) == 1:
        # py-spy names the samples of forked children after the process that forked them.
        roles = {pids[0]: "all processes"}
    every = sum(totals.values())
    print(f"{every:,} samples; share of all samples per process:\n")
    for pid in pids:
        print(f"- {roles[pid]} {pid}: {totals[pid] / every:.0%}")
    for role in ("all processes", "main process", "worker"):
        members = [p for p in pids if roles[p] == role]
        if not members:
            continue
        own, under = Counter(), Counter()
        for pid in members:
            own.update(by_pid[pid])
            under.update(inclusive[pid])
        total = sum(totals[p] for p in members)
        print(f"\n### {role}{'s' if len(members) > 1 else ''} ({total:,} samples)\n")
        print("| own time | function |\n| --- | --- |")
        for frame, n in own.most_common(args.top):
            print(f"| {n / total:.1%} | `{frame}` |")
        print("\n| time under | function (the project's own) |\n| --- | --- |")
        mine = [(f, n) for f, n in under.most_common() if "archiver/" in f or "web/" in f]
        for frame, n in mine[:args.top]:
            print(f"| {n / total:.1%} | `{frame}` |")


if __name__ == "__main__":
    main()
