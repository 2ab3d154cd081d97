"""The `archiver` command through click's CliRunner (and once as a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver import config
from archiver.cli import main
from archiver.ids import message_hash, thread_hash
from conftest import BACKENDS, eml

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = ROOT / "fixtures" / "messages"

REPORT_KEYS = {"seen", "stored", "duplicates", "unchanged", "degraded", "rejected", "rethreaded", "indexed",
               "rejected_reasons", "degraded_reasons", "skipped_files", "seconds"}
EXPORT_KEYS = {"message_id", "lists", "date", "from_name", "from_address", "subject", "thread_id",
               "parent_id", "depth", "own_text", "quoted_text", "signature", "sources", "degraded"}


FROM_LINE = b"From jane.doe@civil.example Tue Oct  2 10:00:00 2012\n"


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """The commands that open a store run on SQLite, then on PostgreSQL."""
    return request.param


@pytest.fixture
def data(tmp_path, database_env) -> Path:
    """The test's data directory; on PostgreSQL its store is the database ARCHIVE_DATABASE_URL
    names (as a deployment sets it), so no SQLite file may appear there."""
    return tmp_path / "data"


def sqlite_file(data: Path, database_env) -> bool:
    """Whether the data directory holds a SQLite store exactly when the store is SQLite."""
    return (data / "archive.sqlite3").is_file() == (database_env is None)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def mailbox(tmp_path) -> Path:
    """An mbox with a thread of two, a signature, a quote and one message that is not mail."""
    path = tmp_path / "bestbits.mbox"
    reply = eml("cli.2@civil.example", "Re: [bestbits] Topic", ("cli.1@civil.example",),
                "Agreed.\n\n-- \nBob\n\nOn Tue, Jane Doe wrote:\n> Shall we?\n")
    path.write_bytes(b"".join(FROM_LINE + m + b"\n" for m in (
        eml("cli.1@civil.example", "[bestbits] Topic", body="Shall we?\n"), reply, b"not a header line\n")))
    return path


def invoke(runner: CliRunner, data: Path, *args: str, **kw):
    return runner.invoke(main, ["--data", str(data), *args], catch_exceptions=False, **kw)


def test_ingest_json_report_and_exit_zero_with_rejects(runner, data, database_env, mailbox):
    result = invoke(runner, data, "ingest", str(mailbox), "--list", "bestbits", "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert set(report) == REPORT_KEYS
    assert {k: report[k] for k in ("seen", "stored", "duplicates", "unchanged", "degraded", "rejected")} == {
        "seen": 3, "stored": 2, "duplicates": 0, "unchanged": 0, "degraded": 0, "rejected": 1}
    assert report["rejected_reasons"] == {"parse: no headers": 1}
    assert sqlite_file(data, database_env)


def test_ingest_text_report(runner, data, mailbox):
    result = invoke(runner, data, "ingest", str(mailbox), str(MESSAGES / "not-mail.txt"),
                    "--list", "bestbits")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == ("seen 3: stored 2, duplicates 0, unchanged 0, rejected 1 "
                        "(degraded 0, re-threaded 2, indexed 2)")
    assert "  rejected 1: parse: no headers" in lines
    assert f"  skipped file {MESSAGES / 'not-mail.txt'}: not mail" in lines


def test_second_ingest_is_all_unchanged(runner, data, mailbox):
    invoke(runner, data, "ingest", str(mailbox), "--list", "bestbits")
    result = invoke(runner, data, "ingest", str(mailbox), "--list", "bestbits", "--format", "json")
    report = json.loads(result.stdout)
    assert (report["seen"], report["unchanged"], report["stored"], report["rejected"]) == (3, 3, 0, 0)


def test_stats_json(runner, data, mailbox):
    invoke(runner, data, "ingest", str(mailbox), "--list", "bestbits")
    result = invoke(runner, data, "stats", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "lists": [{"name": "bestbits", "messages": 2}], "messages": 2, "threads": 1, "participants": 1,
        "degraded": 0, "rejected": 1, # raw bytes: the mbox without its From_ lines and separating blank lines
        "raw_bytes": mailbox.stat().st_size - 3 * len(FROM_LINE) - 3,
        "first_date": "2012-10-02T08:00:00Z", "last_date": "2012-10-02T08:00:00Z"}


def test_stats_text_on_an_empty_archive(runner, data):
    result = invoke(runner, data, "stats")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "lists:        -", "messages:     0", "threads:      0", "participants: 0", "degraded:     0",
        "rejected:     0", "dates:        - .. -"]


def test_export_jsonl_fields(runner, data, mailbox):
    invoke(runner, data, "ingest", str(mailbox), "--list", "bestbits")
    result = invoke(runner, data, "export", "--list", "bestbits", "--format", "jsonl")
    assert result.exit_code == 0
    root, reply = [json.loads(line) for line in result.stdout.splitlines()]
    assert EXPORT_KEYS <= set(root)
    assert root["message_id"] == "cli.1@civil.example"
    assert (root["parent_id"], root["depth"], root["thread_id"]) == (None, 0, thread_hash("cli.1@civil.example"))
    assert (root["lists"], root["date"], root["from_name"], root["from_address"]) == (
        ["bestbits"], "2012-10-02T08:00:00Z", "Jane Doe", "jane.doe@civil.example")
    assert root["msg_hash"] == message_hash("cli.1@civil.example")
    assert (reply["parent_id"], reply["depth"], reply["thread_id"]) == (
        "cli.1@civil.example", 1, thread_hash("cli.1@civil.example"))
    assert (reply["subject"], reply["own_text"], reply["signature"], reply["quoted_text"]) == (
        "Re: [bestbits] Topic", "Agreed.", "--\nBob", "On Tue, Jane Doe wrote:\n> Shall we?")
    assert reply["degraded"] == []
    (source,) = reply["sources"]
    assert (source["list"], source["kind"]) == ("bestbits", "mbox")
    assert source["location"].startswith(f"{mailbox}#")


def test_export_to_a_file(runner, data, tmp_path, mailbox):
    invoke(runner, data, "ingest", str(mailbox), "--list", "bestbits")
    out = tmp_path / "out.jsonl"
    result = invoke(runner, data, "export", "-o", str(out))
    assert (result.exit_code, result.stdout) == (0, "")
    assert [json.loads(line)["message_id"] for line in out.read_text(encoding="utf-8").splitlines()] == [
        "cli.1@civil.example", "cli.2@civil.example"]


def test_export_of_an_unknown_list_is_a_clean_error(runner, data, mailbox):
    invoke(runner, data, "ingest", str(mailbox), "--list", "bestbits")
    result = invoke(runner, data, "export", "--list", "nosuchlist")
    assert result.exit_code == 1
    assert "Error: no list named 'nosuchlist'" in result.stderr
    assert "Traceback" not in result.output


def test_ingest_from_stdin(runner, data):
    result = invoke(runner, data, "ingest", "-", "--list", "bestbits", "--format", "json",
                    input=eml("stdin.1@civil.example"))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["stored"] == 1
    export = invoke(runner, data, "export")
    (record,) = [json.loads(line) for line in export.stdout.splitlines()]
    assert record["message_id"] == "stdin.1@civil.example"
    assert record["sources"] == [{"list": "bestbits", "kind": "stdin", "location": "-", "archive_url": None}]


def test_empty_stdin_is_a_clean_error(runner, tmp_path):
    result = invoke(runner, tmp_path / "data", "ingest", "-", "--list", "bestbits", input=b"")
    assert result.exit_code == 1
    assert "Error: standard input is empty" in result.stderr


def test_missing_source_path_is_a_clean_error(runner, tmp_path):
    missing = tmp_path / "nope.mbox"
    result = runner.invoke(main, ["--data", str(tmp_path / "data"), "ingest", str(missing), "--list", "bestbits"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert f"Error: no such file or directory: {missing}" in result.stderr
    assert "Traceback" not in result.output


def test_empty_list_name_is_a_usage_error(runner, tmp_path, mailbox):
    result = invoke(runner, tmp_path / "data", "ingest", str(mailbox), "--list", "  ")
    assert result.exit_code == 2
    assert "must not be empty" in result.stderr


def test_archive_data_dir_environment_is_honoured(runner, data, database_env, mailbox):
    result = runner.invoke(main, ["ingest", str(mailbox), "--list", "bestbits", "--format", "json"],
                           env={"ARCHIVE_DATA_DIR": str(data)}, catch_exceptions=False)
    assert result.exit_code == 0
    assert sqlite_file(data, database_env)
    stats = runner.invoke(main, ["stats", "--format", "json"], env={"ARCHIVE_DATA_DIR": str(data)})
    assert json.loads(stats.stdout)["messages"] == 2


def test_settings_lists_every_setting(runner):
    result = runner.invoke(main, ["settings"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(config.SETTINGS)
    for line, setting in zip(lines, config.SETTINGS):
        assert line.startswith(setting.env) and line.rstrip().endswith(setting.help)


def test_rethread_threads_every_message_again_and_reports_what_moved(runner, data, mailbox):
    assert runner.invoke(main, ["--data", str(data), "ingest", str(mailbox), "--list", "bestbits"]).exit_code == 0
    result = runner.invoke(main, ["--data", str(data), "rethread"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == ("re-threaded 2 messages: 0 placements changed, 0 thread counts per list "
                                     "changed, 0 re-indexed")


def test_every_command_has_help_with_an_example(runner):
    for name, command in main.commands.items():
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        if name != "settings":
            assert "Example: archiver " + name in result.stdout, name


def test_real_subprocess(data, database_env, mailbox):
    exe = Path(sys.executable).parent / "archiver"
    if not exe.is_file():
        exe = ROOT / ".venv" / "bin" / "archiver"
    ingest = subprocess.run([str(exe), "--data", str(data), "ingest", str(mailbox), "--list", "bestbits",
                             "--format", "json"], capture_output=True, text=True, timeout=60)
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["stored"] == 2
    missing = subprocess.run([str(exe), "--data", str(data), "ingest", str(data / "nope"), "--list", "x"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: no such file or directory")
    assert "Traceback" not in missing.stderr
    assert sqlite_file(data, database_env)


def test_a_second_writer_is_refused_while_one_holds_the_lock(runner, tmp_path, data):
    import fcntl

    source = tmp_path / "one.eml"
    source.write_bytes(eml("lock.1@civil.example"))
    data.mkdir()
    with open(data / "writer.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        busy = runner.invoke(main, ["--data", str(data), "ingest", str(source), "--list", "x"])
        reading = runner.invoke(main, ["--data", str(data), "stats", "--format", "json"])
    assert busy.exit_code == 1 and "another ingest" in busy.output
    assert reading.exit_code == 0
    assert runner.invoke(main, ["--data", str(data), "ingest", str(source), "--list", "x"]).exit_code == 0
