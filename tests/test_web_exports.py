"""Streamed exports of threads and searches: each format, its headers, the limit, the errors."""

from __future__ import annotations

import csv
import gzip
import io
import json

import pytest

from archiver.export import CSV_FIELDS
from archiver.pipeline import ingest
from archiver.query import Archive

TYPES = {"jsonl": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8",
         "mbox.gz": "application/gzip"}


@pytest.fixture(scope="module")
def web_data(sample_on_both):
    """This module's exports are read from a store in SQLite and from one on PostgreSQL."""
    return sample_on_both[0]


@pytest.fixture
def backend(module_server) -> str:
    """Stores a test makes (make_store) are in the database of the module's run."""
    return "sqlite" if module_server is None else "postgresql"


@pytest.fixture(scope="module")
def app(app_on_both):
    return app_on_both


@pytest.fixture(scope="module")
def archive(app) -> Archive:
    return app.extensions["archive"]()


@pytest.fixture(scope="module")
def big_thread(archive) -> dict:
    return max(archive.threads(limit=50)["threads"], key=lambda t: t["size"])


@pytest.fixture(scope="module")
def small_thread(archive) -> dict:
    return min(archive.threads(limit=50)["threads"], key=lambda t: t["size"])


def download(client, url: str, fmt: str, filename: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, response.data[:300]
    assert response.is_streamed
    assert response.headers["Content-Type"] == TYPES[fmt]
    assert response.headers["Content-Disposition"] == f'attachment; filename="{filename}"'
    return response.data


def thread_ids(archive: Archive, thread_id: str) -> list[str]:
    return [r["message_id"] for r in archive.thread_records(thread_id, 10_000)]


def test_thread_as_jsonl(client, archive, big_thread):
    tid = big_thread["thread_id"]
    body = download(client, f"/thread/{tid}/export.jsonl", "jsonl", f"thread-{tid}.jsonl")
    records = [json.loads(line) for line in body.decode().splitlines()]
    assert [r["message_id"] for r in records] == thread_ids(archive, tid)
    assert len(records) == big_thread["size"]
    assert all(r["thread_id"] == tid for r in records)


def test_thread_as_csv(client, archive, big_thread):
    tid = big_thread["thread_id"]
    body = download(client, f"/thread/{tid}/export.csv", "csv", f"thread-{tid}.csv")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert list(rows[0]) == list(CSV_FIELDS)
    assert [r["message_id"] for r in rows] == thread_ids(archive, tid)
    first = archive.records([rows[0]["message_id"]])[0]
    assert rows[0]["own_text"] == first["own_text"]
    assert rows[0]["lists"] == ";".join(first["lists"])


def test_thread_as_mbox_reingests_to_the_same_messages(client, archive, big_thread, make_store, tmp_path):
    tid = big_thread["thread_id"]
    body = download(client, f"/thread/{tid}/export.mbox.gz", "mbox.gz", f"thread-{tid}.mbox.gz")
    path = tmp_path / "thread.mbox"
    path.write_bytes(gzip.decompress(body))
    store = make_store("again")
    ingest(store, [str(path)], "bestbits")
    again = {r["message_id"]: r for r in Archive(store).messages()}
    originals = archive.thread_records(tid, 10_000)
    assert set(again) == {r["message_id"] for r in originals}
    compared = 0
    for record in originals:
        # Text pipermail scrubbed into its attachments folder is not in the original bytes.
        if not any(a.get("url") for a in record["attachments"]):
            assert again[record["message_id"]]["own_text"] == record["own_text"]
            compared += 1
    assert compared > 0   # the loop compared something


def test_search_in_every_format(client, archive):
    total = archive.search("internet")["total"]
    assert total > 30
    body = download(client, "/search/export.jsonl?q=internet", "jsonl", "search.jsonl")
    assert len([json.loads(line) for line in body.decode().splitlines()]) == total
    body = download(client, "/search/export.csv?q=internet", "csv", "search.csv")
    assert len(list(csv.DictReader(io.StringIO(body.decode())))) == total
    body = download(client, "/search/export.mbox.gz?q=internet", "mbox.gz", "search.mbox.gz")
    assert gzip.decompress(body).count(b"\nFrom ") + 1 == total


def test_search_export_follows_sort_and_by_thread(client, archive):
    body = download(client, "/search/export.jsonl?q=internet&sort=newest", "jsonl", "search.jsonl")
    dates = [json.loads(line)["date"] for line in body.decode().splitlines()]
    assert dates == sorted(dates, reverse=True)
    threads = archive.search("internet", by_thread=True)["total"]
    body = download(client, "/search/export.csv?q=internet&by_thread=1", "csv", "search.csv")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == threads == len({r["thread_id"] for r in rows})


@pytest.mark.parametrize("url", ["/search/export.jsonl", "/search/export.csv?q=", '/search/export.csv?q="open',
                                 "/search/export.csv?q=bogus:field", "/search/export.csv?q=internet&sort=up",
                                 "/search/export.csv?q=" + "a" * 600])
def test_bad_searches_are_400(client, url):
    response = client.get(url)
    assert response.status_code == 400
    assert b"Traceback" not in response.data


def test_unknown_formats_and_threads_are_404(client, big_thread):
    tid = big_thread["thread_id"]
    assert client.get(f"/thread/{tid}/export.xml").status_code == 404
    assert client.get(f"/thread/{tid}/export.mbox").status_code == 404
    assert client.get("/search/export.pdf?q=internet").status_code == 404
    assert client.get("/thread/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/export.jsonl").status_code == 404


@pytest.fixture(scope="module")
def limited(web_data):
    from web import create_app

    app = create_app({"DATA_DIR": str(web_data), "TESTING": True, "EXPORT_LIMIT": 5})
    yield app.test_client()
    app.extensions["store"].close()


def test_a_search_over_the_limit_is_refused_with_its_size(limited, archive):
    total = archive.search("internet")["total"]
    response = limited.get("/search/export.csv?q=internet")
    assert response.status_code == 400
    text = response.data.decode()
    assert f"matches {total} messages" in text and "at most 5" in text


def test_a_thread_over_the_limit_is_refused(limited, big_thread, small_thread):
    assert big_thread["size"] > 5 >= small_thread["size"]
    response = limited.get(f"/thread/{big_thread['thread_id']}/export.jsonl")
    assert response.status_code == 400
    assert f"has {big_thread['size']} messages" in response.data.decode()
    body = limited.get(f"/thread/{small_thread['thread_id']}/export.jsonl").data
    assert len(body.decode().splitlines()) == small_thread["size"]


def test_a_search_within_the_limit_is_exported(limited, archive):
    # A query matching a handful: the exact subject of the oldest hit, as a phrase.
    hit = archive.search("internet", sort="oldest", per_page=1)["hits"][0]
    total = archive.search(f'subject:"{hit["subject"]}"')["total"]
    assert total <= 5
    body = limited.get("/search/export.jsonl", query_string={"q": f'subject:"{hit["subject"]}"'}).data
    assert len(body.decode().splitlines()) == total


def test_web_exports_mask_addresses_and_leave_out_server_paths(client, archive, big_thread):
    records = archive.records(thread_ids(archive, big_thread["thread_id"]))
    for fmt in ("jsonl", "csv"):
        text = client.get(f"/thread/{big_thread['thread_id']}/export.{fmt}").get_data(as_text=True)
        for record in records:
            assert record["from_address"] not in text
            for source in record["sources"]:
                assert source["location"] not in text
    first = json.loads(client.get(f"/thread/{big_thread['thread_id']}/export.jsonl").data.splitlines()[0])
    assert "…@" in first["from_address"] and set(first["sources"][0]) == {"list", "kind", "archive_url"}
