"""Count the pages SQLite writes, per table and index, when new messages are stored and
threaded in a copy of a data directory's store: how the store's cost grows with its size,
in a figure no noise moves (the same messages added to the same store write the same pages).

Every page a transaction changes is written to the write-ahead log once at its commit, and
copied into the database file again by a checkpoint. With checkpoints held off, the log
holds every page the ingest wrote; SQLite's dbstat names the table or index each belongs
to. The added messages are a generator corpus of their own seed (new Message-IDs, the same
lists and years), ingested into the scale benchmark's list without the search index.

    .venv/bin/python benchmarks/writes.py --data /tmp/archiver-bench/scale-data-100000-2 \\
        --data /tmp/archiver-bench/scale-data-1000000-0
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

from archiver import config  # noqa: E402
from archiver.pipeline import ingest  # noqa: E402
from archiver.store import Store  # noqa: E402

WAL_MAGIC = (0x377F0682, 0x377F0683)
LIST = "bench"   # the scale benchmark's list


def added_corpus(messages: int, seed: int, where: Path) -> list[Path]:
    """The generator's lists for this seed and size (made once under where)."""
    corpus = where / f"added-{seed}-{messages}"
    if not (corpus / ".complete").exists():
        shutil.rmtree(corpus, ignore_errors=True)
        subprocess.run([sys.executable, str(ROOT / "fixtures" / "generate.py"), "--seed", str(seed),
                        "--messages", str(messages), "--out", str(corpus), "--no-html"], check=True)
        (corpus / ".complete").touch()
    return sorted(path for path in corpus.iterdir() if path.is_dir())


def wal_pages(wal: bytes) -> tuple[list[int], int]:
    """The page numbers of the log's valid frames, in order, and how many commits they make.
    A frame is valid while it carries the header's salts (older frames past a reset do not)."""
    if len(wal) < 32:
        return [], 0
    magic, _version, size, _seq, salt1, salt2 = struct.unpack(">IIIIII", wal[:24])
    if magic not in WAL_MAGIC:
        raise SystemExit("not a SQLite write-ahead log")
    pages, commits, at = [], 0, 32
    while at + 24 + size <= len(wal):
        page, after, s1, s2 = struct.unpack(">IIII", wal[at:at + 16])
        if (s1, s2) != (salt1, salt2):
            break
        pages.append(page)
        commits += after != 0   # a commit's last frame records the database's size after it
        at += 24 + size
    return pages, commits


def measure(data: Path, sources: list[Path], work: Path) -> dict:
    """Store and thread the sources in a copy of data's store; count the pages written."""
    copy = Path(tempfile.mkdtemp(prefix="writes-", dir=work))
    try:
        db = copy / "archive.sqlite3"
        for suffix in ("", "-wal"):
            if (data / f"archive.sqlite3{suffix}").exists():
                shutil.copyfile(data / f"archive.sqlite3{suffix}", copy / f"archive.sqlite3{suffix}")
        # This connection stays open throughout: the ingest closing the last one would copy the
        # log into the database and delete it. The log starts empty.
        keep = sqlite3.connect(db)
        keep.execute("PRAGMA journal_mode=WAL")
        keep.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store = Store(f"sqlite:///{db}")
        store.bulk_cache(int(config.get("ingest_cache_mb")))
        event.listen(store.engine, "connect", _no_checkpoints)   # after the ingest's own settings
        store.engine.pool.dispose()
        report = ingest(store, [str(path) for path in sources], LIST)
        store.close()
        pages, commits = wal_pages((copy / "archive.sqlite3-wal").read_bytes())
        try:
            owner = dict(keep.execute("SELECT pageno, name FROM dbstat"))
            sizes = Counter({name: size for name, size in keep.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name")})
        except sqlite3.OperationalError as exc:
            raise SystemExit(f"this SQLite has no dbstat table ({exc})") from exc
        keep.close()
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    written = Counter(owner.get(page, "(free pages)") for page in pages)
    return {"data": data.name, "stored": report.stored, "commits": commits, "pages": len(pages),
            "written": dict(written.most_common()), "bytes": dict(sizes)}


def _no_checkpoints(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def table(results: list[dict], top: int = 20) -> str:
    """Pages written per stored message, per table or index, the most written first."""
    def per(result: dict, name: str) -> float:
        return result["written"].get(name, 0) / max(result["stored"], 1)
    names = sorted({n for r in results for n in r["written"]}, key=lambda n: -per(results[-1], n))
    head = " | ".join(f"{Path(r['data']).name}" for r in results)
    lines = [f"| table or index | {head} |", "| --- |" + " --- |" * len(results)]
    lines.append("| all, pages per message | " + " | ".join(f"{r['pages'] / max(r['stored'], 1):.2f}"
                                                            for r in results) + " |")
    for name in names[:top]:
        lines.append(f"| {name} | " + " | ".join(
            f"{per(r, name):.2f} ({r['bytes'].get(name, 0) / 2**20:,.0f} MB)" for r in results) + " |")
    lines.append("| messages stored; commits | " + " | ".join(f"{r['stored']:,}; {r['commits']}"
                                                               for r in results) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, action="append", required=True,
                        help="a data directory whose store is copied (it is never written)")
    parser.add_argument("--messages", type=int, default=1500, help="size of the added corpus")
    parser.add_argument("--seed", type=int, default=77, help="the added corpus's generator seed")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "archiver-bench")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "writes-latest.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    sources = added_corpus(args.messages, args.seed, args.work)
    results = [measure(data, sources, args.work) for data in args.data]
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
