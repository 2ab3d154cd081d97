"""Time every kind of page over a data directory, in process: the first view after a write
(cold: no counts kept) and the best of two more (warm), as a Markdown table. Finds the pages whose cost grows with the
archive; `scale.py` loads the main ones under concurrent load.

    .venv/bin/python benchmarks/pages.py --data /tmp/archiver-bench/scale-data-1000000-0
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from archiver import browse, config  # noqa: E402
from archiver import schema as s  # noqa: E402
from archiver.browse import LIST_PAGE  # noqa: E402
from archiver.query import Archive  # noqa: E402
from archiver.store import ReadOnlyStore  # noqa: E402


def page_paths(data: Path) -> list[tuple[str, str]]:
    """(kind, path) of one page of each kind, chosen from the store: the largest list (its
    first page, and its 50th or last), its busiest month, the largest thread, the most active
    person, the commonest topic."""
    # Read only: a data directory of another schema is refused, never upgraded.
    store = ReadOnlyStore(config.database_url(data))
    try:
        archive = Archive(store)
        if not archive.stats()["messages"]:
            raise SystemExit(f"{data} holds no messages: ingest an archive first")
        m, t = s.messages.c, s.threads.c
        with store.engine.connect() as conn:
            big = conn.execute(select(t.thread_id).order_by(t.size.desc()).limit(1)).scalar()
            small = conn.execute(select(t.thread_id).where(t.size <= 5).order_by(t.size.desc()).limit(1)).scalar()
            middle = conn.execute(select(func.max(m.id))).scalar() // 2
            message = conn.execute(select(m.msg_hash).where(m.id >= middle).limit(1)).scalar()
        name = max(archive.lists(), key=lambda x: x["messages"])["name"]
        month = max(archive.months(name), key=lambda x: x["messages"])["month"]
        deep = min(50, -(-archive.threads(list_name=name, limit=1)["total"] // LIST_PAGE))
        person = archive.top_participants(1)[0]["key"]
        topic = max(archive.topics(), key=lambda x: x["messages"])["slug"]
        last = archive.stats()["last_date"][:10]
    finally:
        store.close()
    return [("home", "/"), ("a list's threads, first page", f"/list/{name}/"),
            (f"a list's threads, page {deep}", f"/list/{name}/?page={deep}"),
            ("its busiest month", f"/list/{name}/{month}/"), ("a list's feed", f"/list/{name}/feed.atom"),
            ("the commonest topic", f"/topic/{topic}/"), ("its feed", f"/topic/{topic}/feed.atom"),
            ("its briefing", f"/topic/{topic}/briefing"), ("statistics", "/stats/"),
            ("what's new since the last day", f"/new/?since={last}"),
            ("the largest thread", f"/thread/{big}/"), ("a thread of at most 5", f"/thread/{small}/"),
            ("its export", f"/thread/{big}/export.jsonl"), ("a message", f"/message/{message}/"),
            ("its raw bytes", f"/message/{message}/raw"), ("the most active person", f"/person/{person}/"),
            ("search", "/search?q=wcit"), ("search feed", "/search/feed.atom?q=wcit")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a data directory (archive.sqlite3, whoosh/)")
    args = parser.parse_args()
    os.environ["ARCHIVE_DATA_DIR"] = str(args.data)
    os.environ.setdefault("ARCHIVE_SEARCH_RATE", "100000 per minute")
    os.environ.setdefault("ARCHIVE_EXPORT_RATE", "100000 per minute")
    from web import create_app
    paths = page_paths(args.data)
    client = create_app().test_client()
    print("| page | status | cold | warm | size |")
    print("| --- | --- | --- | --- | --- |")
    for kind, path in paths:
        # Cold is a first view after a write: no page before it left counts behind. (The
        # search index's tables are read once a process: only the first search is cold so.)
        browse._COUNTS.clear()
        times = []
        for _ in range(3):
            started = time.perf_counter()
            response = client.get(path)
            size = len(response.get_data())   # a streamed page is read whole
            times.append(time.perf_counter() - started)
            response.close()
        print(f"| {kind} | {response.status_code} | {times[0] * 1000:,.0f} ms | {min(times[1:]) * 1000:,.0f} ms"
              f" | {size / 1024:,.0f} KiB |", flush=True)


if __name__ == "__main__":
    main()
