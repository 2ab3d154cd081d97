"""Fetching live archives over HTTP from a real server on 127.0.0.1: incremental, polite, faulty."""

from __future__ import annotations

import gzip
import json
import logging
import re

import pytest
from click.testing import CliRunner

from archive_server import HOST, PASSWORD, USER, ArchiveServer
from archiver.cli import main
from archiver.errors import ArchiverError
from archiver.fetch import fetch_archive, load_lists
from archiver.fetch.state import STATE_FILE
from archiver.query import Archive
from archiver.sources import hyperkitty, live, login, remote_pipermail
from archiver.sources.gzipped import CorruptGzip, TooLarge, gunzip, unpack
from archiver.sources.http import AuthError, Credentials, Politeness, retry_after
from conftest import BACKENDS, SAMPLE

BESTBITS = "/pipermail/bestbits/"
OCTOBER, NOVEMBER = BESTBITS + "2012-October.txt.gz", BESTBITS + "2012-November.txt.gz"
DECEMBER = BESTBITS + "2012-December.txt"
HK_LIST = f"/archives/list/bestbits@{HOST}/"
POLICY = Politeness(user_agent="bestbits-archive-tests/1 (+tests@example.invalid)", delay=0.0,
                    timeout=2.0, retries=3, backoff=0.01, max_retry_after=5.0)
TRUTH = [json.loads(line) for line in (SAMPLE / "truth.jsonl").read_text(encoding="utf-8").splitlines()]
# The tests of what a fetch stores run on SQLite and on PostgreSQL; those of the HTTP client's
# manners and faults, on SQLite only.
ON_BOTH = pytest.mark.parametrize("backend", BACKENDS)


@pytest.fixture
def server():
    site = ArchiveServer(SAMPLE)
    yield site
    site.close()


class Target:
    """An archive (store without index) and its data directory, fetched into with POLICY."""

    def __init__(self, store, data):
        self.archive, self.data = Archive(store), data

    def fetch(self, url, **options):
        options.setdefault("policy", POLICY)
        return fetch_archive(self.archive, url, self.data, **options)

    def records(self):
        return {r["message_id"]: r for r in self.archive.messages()}


@pytest.fixture
def target(store, tmp_path) -> Target:
    return Target(store, tmp_path)


def statuses(report) -> dict[str, str]:
    return {m.month: m.status for m in report.months}


def add_december_message(server: ArchiveServer, number: int = 471) -> str:
    """Append a message to December's text and its article to date.html, as pipermail does."""
    message_id = "late.reply.1@civil.example"
    entry = (b"From anne at civil.example  Mon Dec 31 23:00:00 2012\n"
             b"From: anne at civil.example (Anne Example)\n"
             b"Date: Mon, 31 Dec 2012 23:00:00 +0000\n"
             b"Subject: [bestbits] One late thought on the principles\n"
             b"Message-ID: <" + message_id.encode() + b">\n\n"
             b"A late thought: the principles text should name the IGF.\n\n")
    text = (SAMPLE / "bestbits" / "2012-December.txt").read_bytes()
    server.files[DECEMBER] = text + entry
    page = (SAMPLE / "bestbits" / "2012-December" / "date.html").read_text(encoding="ascii")
    link = f'<LI><A HREF="{number:06d}.html">[bestbits] One late thought on the principles\n</A>\n'
    server.files[BESTBITS + "2012-December/date.html"] = page.replace("</ul>", link + "</ul>", 1).encode()
    return message_id


# --- the whole site, then again -----------------------------------------------------------------

@ON_BOTH
def test_first_fetch_stores_every_message_with_its_article_url_and_scrubbed_text(server, target):
    report = target.fetch(server.url + BESTBITS)
    assert (report.kind, report.list_name) == ("pipermail", "bestbits")
    assert statuses(report) == {"2012-10": "fetched", "2012-11": "fetched", "2012-12": "fetched"}
    texts = [p for p in server.fetched() if re.search(r"\.txt(\.gz)?$", p)]
    # The running month's plain text, the settled months' gzip.
    assert texts == [OCTOBER, NOVEMBER, DECEMBER]
    records = target.records()
    truth = [t for t in TRUTH if "bestbits" in t["lists"] and t["message_id"]]
    assert truth and all(t["message_id"] in records for t in truth)
    for t in truth:
        url = records[t["message_id"]]["archive_url"]
        assert url.startswith(server.url + BESTBITS)
        assert url.split("/pipermail/")[1] == t["archive_urls"]["bestbits"].split("/pipermail/")[1]
    html_only = [t for t in truth if "html-only" in t["quirks"]]
    assert html_only
    for t in html_only:
        record = records[t["message_id"]]
        assert record["own_text"].split() == t["own_text"].split()
        # The stub's URL is kept as the attachment's, as the archive wrote it.
        assert any(a["url"].startswith("http://lists.igcaucus.org/") for a in record["attachments"])
    attachments = [p for p in server.fetched() if "/attachments/" in p]
    assert len(attachments) == len(html_only)
    assert report.ingest.stored == len(records)
    assert (target.data / STATE_FILE).is_file()


def test_a_second_fetch_of_an_unchanged_site_downloads_only_the_index(server, target):
    target.fetch(server.url + BESTBITS)
    before = len(server.requests)
    report = target.fetch(server.url + BESTBITS)
    second = server.requests[before:]
    assert [(path, status) for _, _, path, status in second] == [
        (BESTBITS, 200), (OCTOBER, 304), (NOVEMBER, 304), (DECEMBER, 304)]
    assert set(statuses(report).values()) == {"unchanged"}
    assert report.ingest.seen == 0 and report.requests["not_modified"] == 3


@ON_BOTH
def test_a_new_message_in_the_newest_month_fetches_that_month_alone(server, target):
    target.fetch(server.url + BESTBITS)
    message_id = add_december_message(server)
    before = len(server.requests)
    report = target.fetch(server.url + BESTBITS)
    downloaded = [path for _, _, path, status in server.requests[before:] if status == 200]
    assert downloaded == [BESTBITS, DECEMBER, BESTBITS + "2012-December/date.html"]
    assert statuses(report) == {"2012-10": "unchanged", "2012-11": "unchanged", "2012-12": "fetched"}
    assert (report.ingest.stored, report.ingest.unchanged) == (1, 122)
    assert target.records()[message_id]["archive_url"] == server.url + BESTBITS + "2012-December/000471.html"


@ON_BOTH
def test_when_a_new_month_begins_the_last_one_keeps_its_url(server, target):
    target.fetch(server.url + BESTBITS)
    # The nightly gzip caught up with December, and January began.
    december = (SAMPLE / "bestbits" / "2012-December.txt").read_bytes()
    server.files[BESTBITS + "2012-December.txt.gz"] = gzip.compress(december, mtime=0)
    server.files[BESTBITS + "2013-January.txt"] = (
        b"From anne at civil.example  Tue Jan  1 09:00:00 2013\nFrom: anne at civil.example (Anne)\n"
        b"Date: Tue, 01 Jan 2013 09:00:00 +0000\nSubject: [bestbits] Happy new year\n"
        b"Message-ID: <new.year@civil.example>\n\nHappy new year.\n\n")
    server.files[BESTBITS + "2013-January/date.html"] = b'<ul><li><a href="000471.html">Happy new year</a></ul>'
    index = (SAMPLE / "bestbits" / "index.html").read_text(encoding="ascii")
    january = '<tr><td>January 2013:</td><td><A href="2013-January.txt">[ Text 1 KB ]</a></td></tr>'
    index = index.replace('href="2012-December.txt"', 'href="2012-December.txt.gz"')
    server.files[BESTBITS] = index.replace("<tr>", january + "<tr>", 1).encode()
    before = len(server.requests)
    report = target.fetch(server.url + BESTBITS)
    assert [(path, status) for _, _, path, status in server.requests[before:]] == [
        (BESTBITS, 200), (OCTOBER, 304), (NOVEMBER, 304), (DECEMBER, 304),
        (BESTBITS + "2013-January.txt", 200), (BESTBITS + "2013-January/date.html", 200)]
    assert statuses(report)["2013-01"] == "fetched" and report.ingest.stored == 1


def test_without_validators_the_content_hash_spares_the_ingest(server, target):
    server.validators = False
    target.fetch(server.url + BESTBITS, since="2012-12")
    report = target.fetch(server.url + BESTBITS, since="2012-12")
    assert [m.as_dict()["reason"] for m in report.months] == ["same content"]
    assert report.ingest.seen == 0


def test_months_without_validators_that_had_settled_are_not_asked_again(server, target):
    first = target.fetch(server.url + HK_LIST)
    assert set(statuses(first).values()) == {"fetched"}
    before = len(server.requests)
    report = target.fetch(server.url + HK_LIST)
    assert [path for _, _, path, _ in server.requests[before:]] == [HK_LIST]
    assert set(statuses(report).values()) == {"settled"}
    # Naming the months asks again, and the content hash finds them unchanged.
    again = target.fetch(server.url + HK_LIST, since="2012-11", until="2012-11")
    assert [m.reason for m in again.months] == ["same content"] and again.ingest.seen == 0


# --- faults ----------------------------------------------------------------------------------------

def test_a_server_error_is_retried(server, target):
    server.fault(OCTOBER, "500", "500")
    report = target.fetch(server.url + BESTBITS, until="2012-10")
    assert statuses(report) == {"2012-10": "fetched"} and report.months[0].messages == 144
    assert report.requests["retries"] == 2


def test_retry_after_is_honoured(server, target):
    server.fault(OCTOBER, "503:1")
    report = target.fetch(server.url + BESTBITS, until="2012-10")
    assert statuses(report) == {"2012-10": "fetched"}
    times = [when for when, _, path, _ in server.requests if path == OCTOBER]
    assert len(times) == 2 and times[1] - times[0] >= 0.95


def test_a_month_that_fails_is_reported_and_the_rest_go_on(server, target):
    server.fault(OCTOBER, "429:3600")
    report = target.fetch(server.url + BESTBITS)
    assert statuses(report) == {"2012-10": "failed", "2012-11": "fetched", "2012-12": "fetched"}
    assert "3600" in report.months[0].reason and report.failed
    assert report.seconds < 5   # failed at once instead of waiting an hour


def test_a_timeout_is_retried(server, target):
    server.stall = 0.6
    server.fault(DECEMBER, "timeout")
    report = target.fetch(server.url + BESTBITS, since="2012-12",
                          policy=Politeness(**{**POLICY.__dict__, "timeout": 0.25}))
    assert statuses(report) == {"2012-12": "fetched"} and report.months[0].messages == 122
    assert report.requests["retries"] == 1


@pytest.mark.parametrize("fault", ["truncate", "crc", "short"])
def test_a_broken_download_is_detected_and_downloaded_again(server, target, fault):
    server.fault(OCTOBER, fault)
    report = target.fetch(server.url + BESTBITS, until="2012-10")
    assert statuses(report) == {"2012-10": "fetched"} and report.months[0].messages == 144
    assert report.requests["retries"] == 1


@ON_BOTH
def test_a_download_that_stays_broken_is_never_half_ingested(server, target):
    server.fault(OCTOBER, *["truncate"] * (POLICY.retries + 1))
    report = target.fetch(server.url + BESTBITS, until="2012-11")
    assert statuses(report) == {"2012-10": "failed", "2012-11": "fetched"}
    assert "truncated gzip" in report.months[0].reason
    october = {t["message_id"] for t in TRUTH if t["key"].startswith("bestbits/2012-10")}
    november = {t["message_id"] for t in TRUTH if t["key"].startswith("bestbits/2012-11")}
    stored = set(target.records())
    assert not (october - november) & stored
    # The next run fetches the month that failed, and only that one.
    before = len(server.requests)
    again = target.fetch(server.url + BESTBITS, until="2012-11")
    assert statuses(again) == {"2012-10": "fetched", "2012-11": "unchanged"}
    assert OCTOBER in [p for _, _, p, s in server.requests[before:] if s == 200]


@pytest.mark.parametrize("fault", ["plain", "encoded"])
def test_gzip_is_known_by_its_bytes_not_by_the_name(server, target, fault):
    server.fault(OCTOBER, fault)   # plain text under the .gz name; the .gz as Content-Encoding
    report = target.fetch(server.url + BESTBITS, until="2012-10")
    assert statuses(report) == {"2012-10": "fetched"} and report.months[0].messages == 144
    assert report.requests["retries"] == 0


def test_a_redirect_is_followed_and_links_read_from_where_it_led(server, target):
    report = target.fetch(server.url + "/old/bestbits/", until="2012-10")
    assert statuses(report) == {"2012-10": "fetched"}
    assert report.months[0].url == server.url + OCTOBER


def test_redirects_are_followed_within_limits(server, target):
    report = target.fetch(server.url + "/hop/5/bestbits/", until="2012-10")
    assert statuses(report) == {"2012-10": "fetched"}
    before = len(server.requests)
    with pytest.raises(ArchiverError, match="redirect not followed"):
        target.fetch(server.url + "/hop/6/bestbits/")
    assert len(server.requests) - before == POLICY.max_redirects + 1
    with pytest.raises(ArchiverError, match="redirect not followed"):
        target.fetch(server.url + "/loop/bestbits/")


def test_a_page_over_the_size_limit_is_refused(server, target):
    with pytest.raises(ArchiverError, match="limit"):
        target.fetch(server.url + BESTBITS, policy=Politeness(**{**POLICY.__dict__, "max_page_bytes": 500}))


def test_an_unknown_page_is_not_taken_for_an_archive(server, target):
    server.files["/pipermail/bestbits/other.html"] = b"<html><a href='x.html'>x</a></html>"
    with pytest.raises(ArchiverError, match="neither a pipermail"):
        target.fetch(server.url + BESTBITS + "other.html")


# --- politeness --------------------------------------------------------------------------------------

def test_requests_carry_the_user_agent_and_keep_the_delay(server, target):
    target.fetch(server.url + BESTBITS, until="2012-10",
                 policy=Politeness(**{**POLICY.__dict__, "delay": 0.05}))
    assert server.user_agents == {POLICY.user_agent}
    times = [when for when, *_ in server.requests]
    assert len(times) > 3 and min(b - a for a, b in zip(times, times[1:])) >= 0.045


# --- private archives --------------------------------------------------------------------------------

def test_a_private_mailman_archive_is_read_after_its_login_form(server, target):
    credentials = Credentials(USER, PASSWORD, "TEST_USER and TEST_PASSWORD")
    report = target.fetch(server.url + "/mailman/private/secret/", until="2012-10", credentials=credentials)
    assert (report.list_name, statuses(report)) == ("secret", {"2012-10": "fetched"})
    assert [m for _, m, _, _ in server.requests].count("POST") == 1
    assert "password" not in repr(credentials) and PASSWORD not in repr(credentials)


def test_a_private_archive_without_or_with_wrong_credentials_says_so(server, target):
    with pytest.raises(AuthError, match="private archive"):
        target.fetch(server.url + "/mailman/private/secret/")
    wrong = Credentials(USER, "not-the-password-1234", "TEST_PASSWORD")
    with pytest.raises(AuthError, match="refused") as raised:
        target.fetch(server.url + "/mailman/private/secret/", credentials=wrong)
    assert "not-the-password-1234" not in str(raised.value) and "TEST_PASSWORD" in str(raised.value)


def test_a_private_hyperkitty_list_is_read_in_a_django_session(server, target):
    credentials = Credentials(USER, PASSWORD, "TEST")
    report = target.fetch(server.url + f"/archives/list/secret@{HOST}/", since="2012-12",
                          credentials=credentials)
    assert (report.kind, report.list_name, statuses(report)) == ("hyperkitty", "secret", {"2012-12": "fetched"})
    assert "/accounts/login/" in [p for _, m, p, _ in server.requests if m == "POST"]


# --- HyperKitty and several sources -------------------------------------------------------------

@ON_BOTH
def test_hyperkitty_exports_are_read_per_month_with_message_pages(server, target):
    report = target.fetch(server.url + HK_LIST)
    assert (report.kind, report.list_name) == ("hyperkitty", "bestbits")
    assert [m.messages for m in report.months] == [144, 205, 122]
    exports = [p for p in server.fetched() if p.endswith(".mbox.gz")]
    assert len(exports) == 3
    records = target.records()
    some = next(t["message_id"] for t in TRUTH if t["message_id"] and "bestbits" in t["lists"])
    assert re.fullmatch(re.escape(server.url + HK_LIST) + r"message/[A-Z2-7]{32}/",
                        records[some]["archive_url"])


@ON_BOTH
def test_the_same_messages_from_pipermail_and_hyperkitty_are_stored_once(server, target):
    target.fetch(server.url + BESTBITS, since="2012-12")
    report = target.fetch(server.url + HK_LIST, since="2012-12", list_name="bestbits")
    assert (report.ingest.stored, report.ingest.duplicates) == (0, 122)
    record = target.records()[next(t["message_id"] for t in TRUTH if t["message_id"]
                                   and t["key"].startswith("bestbits/2012-12"))]
    assert {s["kind"] for s in record["sources"]} == {"pipermail", "hyperkitty"}


# --- the command line ----------------------------------------------------------------------------

@pytest.fixture
def cli(monkeypatch, tmp_path, database_env):
    """Run `archiver` with quick fetch settings (on the test's backend's store); return
    (runner result, data dir)."""
    for name, value in (("DELAY", "0"), ("TIMEOUT", "2"), ("BACKOFF", "0.01"), ("RETRIES", "2")):
        monkeypatch.setenv(f"ARCHIVE_FETCH_{name}", value)
    monkeypatch.setenv("ARCHIVE_LISTS_FILE", str(tmp_path / "no-lists.toml"))
    data = tmp_path / "data"

    def run(*args: str):
        return CliRunner().invoke(main, ["--data", str(data), *args], catch_exceptions=False)

    run.data = data
    return run


@ON_BOTH
def test_cli_fetch_prints_a_report_and_is_incremental(server, cli):
    first = cli("fetch", server.url + BESTBITS, "--since", "2012-12", "--format", "json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert data["counts"] == {"fetched": 1, "unchanged": 0, "settled": 0, "failed": 0}
    assert data["ingest"]["seen"] == 122 and data["ingest"]["indexed"] == data["ingest"]["stored"] > 100
    second = cli("fetch", server.url + BESTBITS, "--since", "2012-12")
    assert second.exit_code == 0
    assert second.stdout.splitlines()[:2] == [
        f"bestbits: pipermail at {server.url + BESTBITS}",
        "months 1: fetched 0, unchanged 1, settled 0, failed 0"]
    assert "seen 0: stored 0" in second.stdout


def test_cli_fetch_exits_1_when_a_month_failed(server, cli):
    server.fault(DECEMBER, *["500"] * 3)
    result = cli("fetch", server.url + BESTBITS, "--since", "2012-12")
    assert result.exit_code == 1
    assert "2012-12 failed: " in result.stdout and "HTTP 500 (3 attempts)" in result.stdout


def test_cli_credentials_come_from_the_environment_and_never_show(server, cli, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    url = server.url + "/mailman/private/secret/"
    monkeypatch.setenv("ARCHIVE_FETCH_USERNAME", USER)
    monkeypatch.setenv("ARCHIVE_FETCH_PASSWORD", PASSWORD)
    good = cli("fetch", url, "--since", "2012-12")
    assert good.exit_code == 0, good.output
    monkeypatch.setenv("ARCHIVE_FETCH_PASSWORD", "wrong-" + PASSWORD)
    bad = cli("fetch", url, "--since", "2012-12")
    assert bad.exit_code != 0 and "refused" in bad.output
    assert PASSWORD not in good.output + bad.output + caplog.text
    assert "logging in at" in caplog.text and "ARCHIVE_FETCH_PASSWORD" in caplog.text
    state = (cli.data / STATE_FILE).read_text(encoding="utf-8")
    assert PASSWORD not in state and USER not in state
    # The only place the password went: the login form's body, to the archive's own host.
    assert sum(PASSWORD.replace(" ", "+").encode() in body for body in server.bodies) == 2


def test_cli_refuses_credentials_in_the_url_and_bad_months(server, cli):
    result = cli("fetch", server.url.replace("//", f"//anne:{PASSWORD.replace(' ', '')}@") + BESTBITS)
    assert result.exit_code != 0 and "never go in the URL" in result.output
    assert PASSWORD.replace(" ", "") not in result.output and server.requests == []
    assert cli("fetch", server.url + BESTBITS, "--since", "2012-13").exit_code == 2
    assert cli("fetch", server.url + BESTBITS, "--since", "2012-12", "--until", "2012-10").exit_code == 2


@ON_BOTH
def test_cli_sync_stores_a_cross_post_once_in_both_lists(server, cli, tmp_path):
    lists = tmp_path / "lists.toml"
    lists.write_text(f'[[list]]\nname = "bestbits"\nurl = "{server.url}{BESTBITS}"\n\n'
                     f'[[list]]\nname = "governance"\nurl = "{server.url}/archives/list/governance@{HOST}/"\n'
                     f'kind = "hyperkitty"\n\n'
                     f'[[list]]\nname = "gone"\nurl = "{server.url}/pipermail/gone/"\n', encoding="utf-8")
    result = cli("sync", "--lists", str(lists), "--format", "json")
    assert result.exit_code == 1   # the third list does not exist
    reports = {r["list"]: r for r in json.loads(result.stdout)["lists"]}
    assert reports["bestbits"]["counts"]["fetched"] == 3 and reports["governance"]["counts"]["fetched"] == 3
    assert "HTTP 404" in reports["gone"]["error"]
    crossed = [t for t in TRUTH if len(t["lists"]) > 1 and t["message_id"]]
    assert crossed
    export = cli("export", "--format", "jsonl")
    records = {r["message_id"]: r for r in map(json.loads, export.stdout.splitlines())}
    for t in crossed:
        record = records[t["message_id"]]
        assert record["lists"] == ["bestbits", "governance"]
        assert {(s["list"], s["kind"]) for s in record["sources"]} >= {
            ("bestbits", "pipermail"), ("governance", "hyperkitty")}


def test_the_lists_file_holds_variable_names_never_credentials(tmp_path):
    path = tmp_path / "lists.toml"
    path.write_text('[[list]]\nname = "x"\nurl = "https://h.example/pipermail/x/"\npassword = "p"\n')
    with pytest.raises(ArchiverError, match="credentials never go in the lists file"):
        load_lists(path)
    path.write_text('[[list]]\nname = "x"\nurl = "https://h.example/pipermail/x/"\n'
                    'username_env = "X_USER"\npassword_env = "X_PASSWORD"\n')
    spec = load_lists(path)[0]
    with pytest.raises(ArchiverError, match="X_USER and X_PASSWORD"):
        spec.credentials({})
    assert spec.credentials({"X_USER": "u", "X_PASSWORD": "p"}) == Credentials("u", "p", "X_USER and X_PASSWORD")
    assert [s.name for s in load_lists(SAMPLE.parent / "lists.toml")] == ["bestbits"]


# --- the pieces, without a server ----------------------------------------------------------------

def test_gzip_is_known_by_its_bytes_and_checked_member_by_member():
    text = b"From a@b Mon Oct  1 10:00:00 2012\nSubject: x\n\nbody\n"
    two = gzip.compress(text, mtime=0) + gzip.compress(text, mtime=0)
    assert unpack(two, 1000) == text * 2 and unpack(text, 1000) == text
    assert gunzip(two + b"\0\0\0", 1000) == text * 2
    with pytest.raises(CorruptGzip, match="truncated"):
        gunzip(two[:-5], 1000)
    damaged = bytearray(gzip.compress(text, mtime=0))
    damaged[-6] ^= 0xFF   # the CRC-32
    with pytest.raises(CorruptGzip, match="corrupt"):
        gunzip(bytes(damaged), 1000)
    bomb = gzip.compress(b"\0" * 5_000_000)
    with pytest.raises(TooLarge):
        unpack(bomb, 1_000_000)


def test_retry_after_reads_seconds_and_dates():
    assert retry_after("120") == 120.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0   # in the past: no wait
    assert retry_after("soon") is None and retry_after(None) is None


def test_index_variants_absolute_and_relative_links_and_odd_text():
    page = b"""<html><body>
      <a href="2013-January.txt">the newest, plain</a>
      <A HREF='http://archive.example/pipermail/x/2013-January.txt.gz'>[ Gzip'd Text 1 KB ]</A>
      <a href="2012-December/thread.html">[ Thread ]</a>
      <a href="/pipermail/x/2012-December.txt.gz">Dezember</a>
      <a href="2012-November/date.html">[ Date ]</a>
      <a href="http://elsewhere.example/pipermail/x/2012-October.txt.gz">mirror</a>
      <a href="2012-Smarch.txt">not a month</a></body></html>"""
    months = remote_pipermail.months(page, "http://archive.example/pipermail/x/")
    base = "http://archive.example/pipermail/x/"
    assert [(m.key, m.urls, m.page) for m in months] == [
        ("2012-11", (base + "2012-November.txt",), base + "2012-November/date.html"),
        ("2012-12", (base + "2012-December.txt.gz", base + "2012-December.txt"),
         base + "2012-December/date.html"),
        ("2013-01", (base + "2013-January.txt", base + "2013-January.txt.gz"),
         base + "2013-January/date.html"),
    ]


def test_articles_pair_with_messages_in_order_or_by_subject():
    from archiver.models import RawMessage

    raws = [RawMessage(f"Subject: =?utf-8?q?Caf=C3=A9_{n}?=\n\nx\n".encode(), "pipermail", f"m#{n}")
            for n in (1, 2, 3)]
    listed = [(10, "u10", "Café 1"), (12, "u12", "Café 3")]   # article 11 was removed
    assert remote_pipermail.align(raws, listed) == ["u10", None, "u12"]
    assert remote_pipermail.align(raws[:2], listed) == ["u10", "u12"]   # equal counts: by order


def test_stub_only_bodies_are_told_from_bodies_with_text():
    stub = (b"From: a at b\nSubject: x\n\n-------------- next part --------------\n"
            b"An HTML attachment was scrubbed...\nURL: <http://h/pipermail/x/attachments/20121002/ab/attachment.htm>\n"
            b"_______________________________________________\nx mailing list\nhttp://h/mailman/listinfo/x\n")
    assert remote_pipermail.stub_only(stub)
    assert not remote_pipermail.stub_only(stub.replace(b"\n\n", b"\n\nHello.\n", 1))


def test_login_forms_of_mailman_and_django_are_found():
    mailman = (b'<FORM METHOD=POST ACTION="/mailman/private/x/"><INPUT TYPE="TEXT" NAME="username">'
               b'<INPUT TYPE="password" NAME="password"><INPUT TYPE="SUBMIT" NAME="submit" VALUE="Let me in...">'
               b'<INPUT TYPE="SUBMIT" NAME="other" VALUE="no"></FORM>')
    form = login.find_form(mailman, "https://h.example/mailman/private/x/2012-October.txt.gz")
    assert form == login.LoginForm("https://h.example/mailman/private/x/", (("submit", "Let me in..."),),
                                   "username", "password")
    assert login.form_data(form, "a@b", "p w") == b"submit=Let+me+in...&username=a%40b&password=p+w"
    assert login.find_form(b"<form><input name=q></form>", "https://h.example/") is None
    assert login.find_login_link(b'<a href="/accounts/login/?next=/x/">Sign in</a>',
                                 "https://h.example/x/") == "https://h.example/accounts/login/?next=/x/"


def test_hyperkitty_urls():
    url = f"https://h.example/archives/list/bestbits@{HOST}/2012/10/"
    assert hyperkitty.list_address(url) == f"bestbits@{HOST}"
    assert hyperkitty.list_root(url) == f"https://h.example/archives/list/bestbits@{HOST}/"
    assert hyperkitty.export_url(url, 2012, 12) == (
        f"https://h.example/archives/list/bestbits@{HOST}/export/bestbits@{HOST}-2012-12.mbox.gz"
        "?start=2012-12-01&end=2013-01-01")
    # HyperKitty's message hash: base32 of the SHA-1 of the Message-ID without its brackets.
    assert hyperkitty.message_url("r/", "<a@b>") == hyperkitty.message_url("r/", "a@b")
    assert hyperkitty.list_address("https://h.example/pipermail/bestbits/") is None
    assert live.list_name("hyperkitty", url) == "bestbits"
    assert live.list_name("pipermail", "https://h.example/pipermail/bestbits/index.html") == "bestbits"
    assert live.list_name("pipermail", "https://h.example/mailman/private/secret/") == "secret"
