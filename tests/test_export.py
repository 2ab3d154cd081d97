"""Export formats: jsonl, csv, mboxrd quoting and its re-ingest, streamed gzip, the CLI's choices."""

from __future__ import annotations

import csv
import gzip
import io
import json

import pytest
from click.testing import CliRunner

from archiver.cli import main
from archiver.errors import ArchiverError
from archiver.export import CSV_FIELDS, RENDERERS, from_line, gzip_stream, mboxrd, render
from archiver.pipeline import ingest
from archiver.query import Archive

from conftest import BACKENDS, eml

RECORD = {"message_id": "a@x", "msg_hash": "h", "thread_id": "t", "date": "2012-10-02T08:00:00Z",
          "from_name": "Jane Doe", "from_address": "jane.doe@civil.example", "organisation": "Civil",
          "subject": 'A "quoted", subject', "lists": ["bestbits", "governance"],
          "topics": ["itu-itrs", "wsis"], "language": "en", "archive_url": None,
          "own_text": "Line one,\nline two.", "quoted_text": "> earlier", "extra": "not exported"}


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Round trips re-ingest into stores in SQLite and on PostgreSQL."""
    return request.param


def test_render_knows_the_text_formats():
    assert {"jsonl", "csv"} <= set(RENDERERS)
    try:
        render("xml", [])
    except ArchiverError as exc:
        assert "csv" in str(exc) and "jsonl" in str(exc)
    else:
        raise AssertionError("an unknown format must be refused")


def test_jsonl_is_one_object_per_line():
    lines = "".join(render("jsonl", [RECORD, RECORD])).splitlines()
    assert [json.loads(line)["message_id"] for line in lines] == ["a@x", "a@x"]


def test_csv_has_a_header_and_one_row_per_record_streamed():
    chunks = list(render("csv", [RECORD, {"message_id": "b@x"}]))
    assert len(chunks) == 3   # header, then row by row: nothing waits for the whole export
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert list(rows[0]) == list(CSV_FIELDS)
    assert rows[0]["lists"] == "bestbits;governance" and rows[0]["topics"] == "itu-itrs;wsis"
    assert rows[0]["subject"] == RECORD["subject"] and rows[0]["own_text"] == RECORD["own_text"]
    assert rows[0]["archive_url"] == "" and "extra" not in rows[0]
    assert rows[1]["message_id"] == "b@x" and rows[1]["lists"] == ""


def test_from_line_is_an_asctime_separator():
    assert from_line(RECORD) == b"From jane.doe@civil.example Tue Oct  2 08:00:00 2012\n"
    assert from_line({"date": None, "from_address": ""}) == b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"
    # An address with a space would split the separator's fields.
    assert from_line({**RECORD, "from_address": "a b@x"}).startswith(b"From ab@x ")


def test_mboxrd_quotes_every_from_line_once_more():
    raw = b"Subject: s\n\nFrom here\n>From there\n>>From afar\nnot From\nFrom"
    out = b"".join(mboxrd([(RECORD, raw)]))
    assert out == (b"From jane.doe@civil.example Tue Oct  2 08:00:00 2012\n"
                   b"Subject: s\n\n>From here\n>>From there\n>>>From afar\nnot From\nFrom\n\n")


def test_gzip_stream_is_a_gzip_file_of_its_input():
    parts = [b"x" * 1000, b"", "é".encode() * 50_000, b"end"]
    chunks = list(gzip_stream(iter(parts)))
    assert len(chunks) > 1   # compressed output leaves as it is made
    assert gzip.decompress(b"".join(chunks)) == b"".join(parts)


def _thread_with_most_messages(archive: Archive) -> str:
    return max(archive.threads(limit=50)["threads"], key=lambda t: t["size"])["thread_id"]


def test_an_exported_thread_reingests_to_the_same_messages(sample_archive, make_store, tmp_path):
    thread_id = _thread_with_most_messages(sample_archive)
    records = sample_archive.thread_records(thread_id, 1000)
    assert len(records) > 2
    path = tmp_path / "thread.mbox"
    path.write_bytes(b"".join(mboxrd((r, sample_archive.raw(r["message_id"])) for r in records)))
    fresh = make_store("fresh")
    report = ingest(fresh, [str(path)], "bestbits")
    assert not report.skipped_files
    again = Archive(fresh)
    got = {r["message_id"]: r for r in again.messages()}
    assert set(got) == {r["message_id"] for r in records}
    # Pipermail scrubbed HTML parts out of its .txt archive; their text was read from the
    # mirror's attachments folder, which an mbox of the original bytes cannot carry.
    whole = [r for r in records if not any(a.get("url") for a in r["attachments"])]
    assert len(whole) > 2
    for record in whole:
        assert got[record["message_id"]]["own_text"] == record["own_text"]
    for record in records:
        assert got[record["message_id"]]["subject"] == record["subject"]
        # The bytes themselves survive: mboxrd quoting is undone exactly.
        assert again.raw(record["message_id"]) == sample_archive.raw(record["message_id"])


def test_from_lines_in_bodies_survive_a_round_trip(make_store, tmp_path):
    body = "From the start:\n>From a quote\n>>From deeper\nFrom Mon Oct  1 10:00:00 2012\n"
    raws = [eml("one@x", body=body), eml("two@x", refs=("one@x",), body="Fine.\n\nFrom", hour=11)]
    store = make_store("source")
    ingest(store, [_write(tmp_path / "in.mbox", raws)], "bestbits")
    source = Archive(store)
    records = list(source.messages())
    path = tmp_path / "out.mbox"
    path.write_bytes(b"".join(mboxrd((r, source.raw(r["message_id"])) for r in records)))
    again_store = make_store("again")
    ingest(again_store, [str(path)], "bestbits")
    again = Archive(again_store)
    assert [r["message_id"] for r in again.messages()] == ["one@x", "two@x"]
    for record in records:
        assert again.raw(record["message_id"]) == source.raw(record["message_id"])


def _write(path, raws: list[bytes]) -> str:
    path.write_bytes(b"".join(mboxrd(({"date": None, "from_address": "x@y"}, raw) for raw in raws)))
    return str(path)


def test_cli_exports_csv_and_mbox(make_store, tmp_path):
    data = tmp_path / "data"
    runner = CliRunner()
    mailbox = _write(tmp_path / "in.mbox", [eml("one@x"), eml("two@x", refs=("one@x",), hour=11)])
    runner.invoke(main, ["--data", str(data), "ingest", mailbox, "--list", "bestbits"],
                  catch_exceptions=False)
    result = runner.invoke(main, ["--data", str(data), "export", "--format", "csv"], catch_exceptions=False)
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["message_id"] for r in rows] == ["one@x", "two@x"]
    out = tmp_path / "out.mbox"
    runner.invoke(main, ["--data", str(data), "export", "--format", "mbox", "-o", str(out)],
                  catch_exceptions=False)
    again = make_store("again")
    ingest(again, [str(out)], "bestbits")
    assert [r["message_id"] for r in Archive(again).messages()] == ["one@x", "two@x"]


def test_csv_cells_never_start_like_a_formula():
    from archiver.export import csv_rows

    rows = list(csv.reader(io.StringIO("".join(csv_rows([
        {"subject": "=HYPERLINK(\"http://x\")", "own_text": "+1 agreed", "from_name": "@jane",
         "lists": ["-list"], "quoted_text": "plain"}])))))
    row = dict(zip(rows[0], rows[1]))
    assert row["subject"].startswith("'=") and row["own_text"] == "'+1 agreed"
    assert row["from_name"] == "'@jane" and row["lists"] == "'-list" and row["quoted_text"] == "plain"


# --- every format read back with its own reader --------------------------------------------------
def _cli(data, *args: str):
    result = CliRunner().invoke(main, ["--data", str(data), *args])
    assert result.exit_code == 0, result.output
    return result


def _jsonl(data, *args: str) -> list[dict]:
    text = _cli(data, "export", "--format", "jsonl", *args).stdout
    return [json.loads(line) for line in text.split("\n") if line]   # U+2028 may sit in a body


def test_csv_holds_every_jsonl_field_flattened(web_data):
    records = _jsonl(web_data, "--list", "governance")
    rows = list(csv.DictReader(io.StringIO(_cli(web_data, "export", "--list", "governance",
                                                "--format", "csv").stdout)))
    assert len(rows) == len(records) > 10
    assert set(CSV_FIELDS) <= set(records[0]) and list(rows[0]) == list(CSV_FIELDS)
    for record, row in zip(records, rows):
        assert row["message_id"] == record["message_id"] and row["thread_id"] == record["thread_id"]
        assert row["lists"].split(";") == record["lists"] and row["topics"] == ";".join(record["topics"])
        assert row["references"] == ";".join(record["references"])
        assert row["depth"] == str(record["depth"]) and row["synthetic_id"] in ("true", "false")
        assert json.loads(row["sources"]) == record["sources"]
        assert json.loads(row["attachments"]) == record["attachments"]
        assert row["own_text"].lstrip("'") == record["own_text"]
        assert row["organisation"] == (record["organisation"] or "")
        assert row["archive_url"] == (record["archive_url"] or "")


def test_parquet_reads_back_with_pyarrow(web_data, tmp_path):
    import pyarrow.parquet as pq

    records = _jsonl(web_data)
    out = tmp_path / "all.parquet"
    _cli(web_data, "export", "--format", "parquet", "-o", str(out))
    table = pq.read_table(out)
    assert table.schema.names == list(CSV_FIELDS)
    assert str(table.schema.field("date").type) == "timestamp[ms, tz=UTC]"
    rows = table.to_pylist()
    assert len(rows) == len(records)
    for record, row in zip(records, rows):
        assert row["message_id"] == record["message_id"] and row["lists"] == record["lists"]
        assert row["own_text"] == record["own_text"] and row["topics"] == record["topics"]
        assert row["references"] == record["references"] and row["depth"] == record["depth"]
        assert row["sources"] == record["sources"]
        stamp = row["date"].isoformat().replace("+00:00", "Z") if row["date"] else None
        assert stamp == record["date"]


def test_parquet_is_written_in_row_groups(tmp_path):
    import pyarrow.parquet as pq
    from archiver.export import write_parquet

    many = ({**RECORD, "message_id": f"{n}@x", "references": [], "attachments": [], "sources": [],
             "degraded": []} for n in range(230))
    assert write_parquet(many, str(tmp_path / "x.parquet"), row_group=50) == 230
    file = pq.ParquetFile(tmp_path / "x.parquet")
    assert file.metadata.num_row_groups == 5 and file.metadata.num_rows == 230
    assert write_parquet(iter([]), str(tmp_path / "empty.parquet")) == 0
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0


def test_an_mbox_export_reads_with_the_mailbox_module(web_data, tmp_path):
    import mailbox

    records = _jsonl(web_data, "--list", "governance")
    out = tmp_path / "governance.mbox"
    _cli(web_data, "export", "--list", "governance", "--format", "mbox", "-o", str(out))
    box = mailbox.mbox(str(out))
    try:
        messages = list(box)
    finally:
        box.close()
    assert len(messages) == len(records)
    for message, record in zip(messages, records):
        assert message["Message-ID"].strip().strip("<>") == record["message_id"]


def test_a_whole_archive_mbox_reingests_to_the_same_messages_and_threads(web_data, tmp_path):
    before = _jsonl(web_data)
    for name in ("bestbits", "governance"):
        _cli(web_data, "export", "--list", name, "--format", "mbox", "-o", str(tmp_path / f"{name}.mbox"))
    fresh = tmp_path / "fresh"
    for name in ("bestbits", "governance"):
        _cli(fresh, "ingest", str(tmp_path / f"{name}.mbox"), "--list", name)
    after = {r["message_id"]: r for r in _jsonl(fresh)}
    assert set(after) == {r["message_id"] for r in before}
    for record in before:
        again = after[record["message_id"]]
        for key in ("subject", "date", "from_address", "from_name", "lists", "thread_id",
                    "parent_id", "depth", "raw_sha256", "references"):
            assert again[key] == record[key], (key, record["message_id"])
        # Text pipermail scrubbed into its attachments folder is not in the original bytes.
        if not any(a.get("url") for a in record["attachments"]):
            assert (again["own_text"], again["language"]) == (record["own_text"], record["language"])
    stats = [json.loads(_cli(d, "stats", "--format", "json").stdout) for d in (web_data, fresh)]
    assert stats[0]["threads"] == stats[1]["threads"] and stats[0]["messages"] == stats[1]["messages"]
