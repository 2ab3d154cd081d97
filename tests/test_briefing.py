"""Briefing packs: `archiver briefing` as Markdown and HTML, the printable web page, the signer
lists of statement threads, and hostile subjects and names from mail kept inert."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from archiver import config
from archiver.briefing import md
from archiver.cli import main
from archiver.query import Archive
from archiver.signons import LANGUAGES
from archiver.store import Store
from conftest import SAMPLE, eml, make_app
from test_web import check_semantics, outline, page

TOPIC = "wcit-statement"


@pytest.fixture(scope="module")
def web_data(sample_on_both):
    """This module reads the sample from a store in SQLite and from one on PostgreSQL (and
    its pages from `app_on_both`, the app over that store)."""
    return sample_on_both[0]


@pytest.fixture
def client(app_on_both):
    return app_on_both.test_client()


@pytest.fixture(scope="module")
def sample(web_data):
    store = Store(config.database_url(web_data))
    yield Archive(store, index_dir=web_data / "whoosh")
    store.close()


@pytest.fixture(scope="module")
def truth() -> list[dict]:
    with open(SAMPLE / "truth.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def run(data, *args: str, url: str | None = None):
    """Run `archiver` on a data directory (and the store at url, when it is not the sample's)."""
    env = {"ARCHIVE_DATABASE_URL": url} if url else None
    return CliRunner().invoke(main, ["--data", str(data), *args], env=env)


def links(text: str, kind: str) -> set[str]:
    return set(re.findall(rf"/{kind}/[a-z2-7]+/", text))


@pytest.fixture(scope="module")
def markdown(web_data) -> str:
    result = run(web_data, "briefing", "--topic", TOPIC, "--format", "md")
    assert result.exit_code == 0, result.output
    return result.output


def test_markdown_has_the_sessions_points_threads_people_and_sign_ons(markdown, sample, truth):
    topic = next(t for t in sample.topics() if t["slug"] == TOPIC)
    assert markdown.startswith(f"# Briefing: {topic['label']}\n")
    for bullet in topic["bullets"]:
        assert f"\n- {md(bullet)}\n" in markdown
    sections = re.split(r"\n## ", markdown)
    assert [s.split("\n", 1)[0] for s in sections[1:]] == [
        "The session's points", "Most active threads", "Who took part", "Latest positions, in their own words",
        "Sign-ons to statements"]
    threads = re.findall(r"^### \[.+\]\((/thread/[a-z2-7]{32}/)\)$", sections[2], re.M)
    assert len(threads) == 8 and len(set(threads)) == 8
    every = sample.threads(topic=TOPIC, limit=500)["threads"]
    busiest = max(t["size"] for t in every)
    assert threads[0] == f"/thread/{next(t['thread_id'] for t in every if t['size'] == busiest)}/"
    assert sections[2].count("\n> ") >= 8          # an extract each, in the writer's own words
    # Everyone who wrote in the topic's threads, with an organisation where the file names one.
    records = [r for t in every for r in sample.thread_records(t["thread_id"], 1000)]
    people = {r["from_name"] for r in records}
    rows = re.findall(r"^\| \[(.+?)\]\(/person/[a-z2-7]{16}/\) \|", sections[3], re.M)
    assert set(rows) == {md(p) for p in people}
    for org in {r["organisation"] for r in records if r["organisation"]}:
        assert f"- {md(org)}: " in sections[3]
    # Signers named as the truth names them, in the four languages read.
    signed = [r["sign_on"]["name"] for r in truth if r["sign_on"] and r["language"] in LANGUAGES]
    for name in signed:
        assert f"[{md(name)}](/message/" in sections[5], name
    assert len(re.findall(r"^### \[", sections[5], re.M)) == 3      # the sample's three calls


def test_html_output_is_the_same_briefing_printable(web_data, markdown, tmp_path):
    out = tmp_path / "brief.html"
    result = run(web_data, "briefing", "--topic", TOPIC, "--format", "html", "-o", str(out))
    assert result.exit_code == 0 and result.output == ""
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and "@page { size: A4" in text
    assert "<script" not in text
    for kind in ("thread", "message", "person"):
        assert links(text, kind) == links(markdown, kind), kind
    assert outline(text).headings[0] == 1


def test_since_keeps_only_later_activity(web_data, sample):
    since = datetime(2012, 12, 1, tzinfo=timezone.utc)
    brief = sample.briefing(TOPIC, since)
    whole = sample.briefing(TOPIC)
    assert brief["since"].startswith("2012-12-01") and brief["counts"]["messages"] < whole["counts"]["messages"]
    assert all(p["last_date"] > "2012-12-01" for p in brief["participants"])
    assert all(pos["date"] > "2012-12-01" for p in brief["positions"] for pos in p["positions"])
    later = [r for t in sample.threads(topic=TOPIC, since=since, limit=500)["threads"]
             for r in sample.thread_records(t["thread_id"], 1000) if r["date"] > "2012-12-01"]
    assert brief["counts"]["messages"] == len(later)
    assert brief["counts"]["participants"] == len({r["from_address"] for r in later})
    cli = run(web_data, "briefing", "--topic", TOPIC, "--since", "2012-12-01")
    assert cli.exit_code == 0 and "Activity since 2012-12-01" in cli.output


def test_base_url_and_errors(web_data):
    absolute = run(web_data, "briefing", "--topic", TOPIC, "--base-url", "https://archive.example/")
    assert "](https://archive.example/thread/" in absolute.output and "](/thread/" not in absolute.output
    unknown = run(web_data, "briefing", "--topic", "nosuch")
    assert unknown.exit_code == 1 and "no topic 'nosuch'" in unknown.output and TOPIC in unknown.output
    bad = run(web_data, "briefing", "--topic", TOPIC, "--since", "2012-13-40")
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    assert run(web_data, "briefing", "--topic", TOPIC, "--format", "pdf").exit_code == 2


# --- the web page --------------------------------------------------------------------------------

def test_briefing_page(client, sample, markdown, truth):
    html = page(client, f"/topic/{TOPIC}/briefing")
    found = check_semantics(html)
    for bullet in next(t for t in sample.topics() if t["slug"] == TOPIC)["bullets"]:
        assert f"<li>{bullet}</li>" in html
    for kind in ("thread", "message", "person"):
        assert {link for link in found.links if re.match(rf"^/{kind}/[a-z2-7]+/$", link)} == links(markdown, kind)
    for name in {r["sign_on"]["name"] for r in truth if r["sign_on"] and r["language"] in LANGUAGES}:
        assert f">{name}</a>" in html.replace("&#39;", "'"), name
    assert "class=\"no-print\"" in html
    later = page(client, f"/topic/{TOPIC}/briefing?since=2012-12-01")
    assert "since 2012-12-01" in later and len(later) < len(html)
    assert f"/topic/{TOPIC}/briefing" in outline(page(client, f"/topic/{TOPIC}/")).links


@pytest.mark.parametrize("url, status", [
    ("/topic/nosuch/briefing", 404), (f"/topic/{TOPIC}/briefing?since=yesterday", 400),
    (f"/topic/{TOPIC}/briefing?since=2012-02-30", 400), ("/thread/" + "a" * 32 + "/signons", 404),
    ("/thread/not-a-thread/signons", 404),
])
def test_briefing_errors(client, url, status):
    page(client, url, status)


def test_signer_list_page(client, sample, truth):
    roots = {r["thread_root_id"] for r in truth if r["sign_on"]}
    records = {r["message_id"]: r for r in sample.messages()}
    for root in roots:
        thread_id = records[root]["thread_id"]
        html = page(client, f"/thread/{thread_id}/signons")
        check_semantics(html)
        want = [r for r in truth if r["thread_root_id"] == root and r["sign_on"] and r["language"] in LANGUAGES]
        rows = re.findall(r"<tr><td class=\"num\">\d+</td><td>(.*?)</td>", html)
        assert {row.replace("&#39;", "'") for row in rows} == {r["sign_on"]["name"] for r in want}
        assert len(outline(html).links) > len(rows)


# --- hostile mail ----------------------------------------------------------------------------------

HOSTILE_SUBJECT = "[bestbits] Call for signatures: statement to WCIT <script>alert(1)</script> [x](javascript:alert(1))"
HOSTILE_NAME = "<img src=x onerror=alert(2)> *Eve* | [y](javascript:alert(3))"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, build_archive):
    """A data directory and store URL whose one statement thread carries markup in subject,
    names and words."""
    data = tmp_path_factory.mktemp("hostile")
    mbox = data / "hostile.mbox"
    call = eml("call@hostile.example", HOSTILE_SUBJECT,
               body="The civil society statement to WCIT is below. Reply to sign the statement; write to "
                    "organiser@hostile.example.\n")
    call = call.replace(b"From: Jane Doe <jane.doe@civil.example>",
                        f'From: "{HOSTILE_NAME}" <eve.sender@hostile.example>'.encode())
    signs = eml("signs@hostile.example", "Re: " + HOSTILE_SUBJECT, ("call@hostile.example",),
                "Please add our organisation, <b>Evil & Co</b> | *bold*, as a signatory to the statement.\n",
                hour=11)
    mbox.write_bytes(b"".join(b"From x Tue Oct  2 10:00:00 2012\n" + m + b"\n" for m in (call, signs)))
    return data, build_archive(data, [("bestbits", [mbox])])


def test_hostile_markdown_and_html_stay_inert(hostile, tmp_path):
    data, url = hostile
    mdown = run(data, "briefing", "--topic", TOPIC, "--format", "md", url=url)
    assert mdown.exit_code == 0, mdown.output
    text = mdown.output
    assert "<script" not in text and "<img" not in text and "<b>" not in text
    assert "&lt;script&gt;" in text and "&lt;b&gt;Evil &amp; Co&lt;/b&gt;" in text
    assert "\\[x\\](javascript" in text and not re.search(r"(?<!\\)\]\(javascript", text)
    assert "\\*Eve\\* \\|" in text
    assert "eve.sender@hostile.example" not in text and "organiser@hostile.example" not in text
    assert "o…@hostile.example" in text
    out = tmp_path / "hostile.html"
    assert run(data, "briefing", "--topic", TOPIC, "--format", "html", "-o", str(out), url=url).exit_code == 0
    page_text = out.read_text(encoding="utf-8")
    assert "<script" not in page_text and "<img" not in page_text and "<b>Evil" not in page_text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page_text and "&lt;b&gt;Evil &amp; Co&lt;/b&gt;" in page_text
    assert 'href="javascript' not in page_text and "organiser@hostile.example" not in page_text


def test_hostile_web_page_stays_inert(hostile):
    app = make_app(*hostile)
    try:
        with app.test_client() as client:
            html = page(client, f"/topic/{TOPIC}/briefing")
            thread = re.search(r'href="/thread/([a-z2-7]{32})/"', html).group(1)
            signers = page(client, f"/thread/{thread}/signons")
    finally:
        app.extensions["store"].close()
    for text in (html, signers):
        assert "<script" not in text and "<img" not in text and "<b>Evil" not in text
        assert 'href="javascript' not in text
        assert "eve.sender@hostile.example" not in text and "organiser@hostile.example" not in text
    assert "&lt;b&gt;Evil &amp; Co&lt;/b&gt;" in signers and "&lt;script&gt;" in html
