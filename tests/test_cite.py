"""Citations: BibTeX and CSL-JSON of messages and threads, from the CLI and the web."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from archiver.cite import bibtex, csl_json, message_item, thread_item
from archiver.cli import main

BASE = "https://archive.example.org"
RECORD = {"message_id": "a1@civil.example", "msg_hash": "abcdefghijklmnopqrstuvwxyz234567",
          "subject": "50% & {braces} _under_ #1 \\ ~tilde^ $x", "from_name": "Jane  Doe",
          "from_address": "jane.doe@civil.example", "date": "2012-11-05T14:03:00Z",
          "lists": ["bestbits"], "archive_url": "http://lists.igcaucus.org/pipermail/bestbits/2012-November/000123.html",
          "sources": []}


@pytest.fixture(scope="module")
def web_data(sample_on_both):
    """This module reads the sample from a store in SQLite and from one on PostgreSQL."""
    return sample_on_both[0]


@pytest.fixture(scope="module")
def app(app_on_both):
    return app_on_both


def fields(entry: str) -> dict[str, str]:
    """Read a BibTeX entry's fields (one per line, as the renderer writes them)."""
    found = {}
    for line in entry.splitlines()[1:-1]:
        name, _, value = line.strip().rstrip(",").partition(" = ")
        found[name] = value[1:-1] if value.startswith("{") else value
    return found


def balanced(text: str) -> bool:
    depth = 0
    for n, ch in enumerate(text):
        if ch in "{}" and n and text[n - 1] == "\\":
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_a_message_as_bibtex():
    entry = bibtex(message_item(RECORD, BASE + "/"))
    assert entry.startswith("@misc{bestbits2012-abcdefgh,\n") and entry.endswith("}\n")
    assert balanced(entry)
    got = fields(entry)
    assert got["author"] == "{Jane Doe}"
    assert got["title"] == r"{50\% \& \{braces\} \_under\_ \#1 \textbackslash{} \textasciitilde{}tilde\textasciicircum{} \$x}"
    assert got["howpublished"] == "Message to the bestbits mailing list"
    assert (got["year"], got["month"], got["date"]) == ("2012", "nov", "2012-11-05")
    assert got["url"] == f"{BASE}/message/{RECORD['msg_hash']}/"
    assert r"\url{http://lists.igcaucus.org/pipermail/bestbits/2012-November/000123.html}" in got["note"]
    assert r"\texttt{<a1@civil.example>}" in got["note"]


def test_a_message_as_csl_json():
    [item] = json.loads(csl_json(message_item(RECORD, BASE)))
    assert item["type"] == "post" and item["title"] == RECORD["subject"]
    assert item["author"] == [{"literal": "Jane Doe"}]
    assert item["issued"] == {"date-parts": [[2012, 11, 5]]}
    assert item["URL"] == f"{BASE}/message/{RECORD['msg_hash']}/"
    assert item["archive_location"] == RECORD["archive_url"] == item["custom"]["original_url"]
    assert item["container-title"] == "bestbits mailing list"


def test_no_name_no_date_no_safe_url():
    record = {**RECORD, "from_name": "", "date": None, "archive_url": "javascript:alert(1)",
              "sources": [{"archive_url": "http://x.example/a{b}"}]}
    entry = bibtex(message_item(record, BASE))
    assert "jane.doe@" not in entry and "j…@civil.example" in entry
    assert "year" not in fields(entry) and "javascript" not in entry and "a{b}" not in entry
    [item] = json.loads(csl_json(message_item(record, BASE)))
    assert "issued" not in item and "archive_location" not in item


def test_a_thread_cites_its_opening_message_and_others():
    summary = {"thread_id": "t" * 32, "subject": "Principles", "size": 12, "lists": ["bestbits"],
               "first_date": "2012-10-02T08:00:00Z", "last_date": "2012-10-09T10:00:00Z",
               "participants": [{"key": "a"}, {"key": "b"}, {"key": "c"}]}
    entry = fields(bibtex(thread_item(summary, RECORD, BASE)))
    assert entry["author"] == "{Jane Doe} and others"
    assert entry["howpublished"] == ("Thread of 12 messages by 3 participants on the bestbits mailing "
                                     "list, 2012-10-02 to 2012-10-09")
    assert entry["url"] == f"{BASE}/thread/{'t' * 32}/"
    [item] = json.loads(csl_json(thread_item(summary, RECORD, BASE)))
    assert item["genre"] == "Mailing list thread" and item["issued"]["date-parts"] == [[2012, 10, 2]]


# --- the CLI and the web ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample(app) -> dict:
    archive = app.extensions["archive"]()
    thread = max(archive.threads(limit=50)["threads"], key=lambda t: t["size"])
    opening = archive.thread_records(thread["thread_id"], 1)[0]
    return {"thread": thread, "message": opening}


def cite(web_data, *args, env=None):
    return CliRunner().invoke(main, ["--data", str(web_data), "cite", *args],
                              env=env or {"ARCHIVE_BASE_URL": ""})


def test_cli_cites_a_message_by_id_or_hash(web_data, sample):
    message = sample["message"]
    by_id = cite(web_data, f"<{message['message_id']}>", "--base-url", BASE)
    assert by_id.exit_code == 0, by_id.output
    assert fields(by_id.stdout)["url"] == f"{BASE}/message/{message['msg_hash']}/"
    assert message["archive_url"] in by_id.stdout
    by_hash = cite(web_data, message["msg_hash"], "--format", "csl-json", env={"ARCHIVE_BASE_URL": BASE})
    assert json.loads(by_hash.stdout)[0]["URL"] == f"{BASE}/message/{message['msg_hash']}/"


def test_cli_cites_a_thread(web_data, sample):
    tid = sample["thread"]["thread_id"]
    result = cite(web_data, "--thread", tid, "--format", "csl-json", "--base-url", BASE)
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)
    assert item["URL"] == f"{BASE}/thread/{tid}/" and item["title"] == sample["thread"]["subject"]


@pytest.mark.parametrize("args, code, words", [
    (["nobody@nowhere.example", "--base-url", BASE], 1, "no message"),
    (["--thread", "a" * 32, "--base-url", BASE], 1, "no thread"),
    (["--base-url", BASE], 2, "give a MESSAGE-ID or --thread"),
    (["x@y", "--thread", "a" * 32, "--base-url", BASE], 2, "one of them"),
    (["x@y"], 2, "--base-url"),
    (["x@y", "--base-url", "ftp://x"], 2, "--base-url"),
    (["x@y", "--base-url", BASE, "--format", "ris"], 2, "Invalid value"),
])
def test_cli_cite_errors(web_data, args, code, words):
    result = cite(web_data, *args)
    assert result.exit_code == code and words in result.output and "Traceback" not in result.output


def test_web_citations(client, sample):
    message, tid = sample["message"], sample["thread"]["thread_id"]
    response = client.get(f"/message/{message['msg_hash']}/cite.bib")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-bibtex; charset=utf-8"
    assert fields(response.data.decode())["url"] == f"http://localhost/message/{message['msg_hash']}/"
    response = client.get(f"/thread/{tid}/cite.json")
    assert response.headers["Content-Type"] == "application/vnd.citationstyles.csl+json; charset=utf-8"
    [item] = json.loads(response.data)
    assert item["URL"] == f"http://localhost/thread/{tid}/"
    assert item["archive_location"] == message["archive_url"]
    assert client.get(f"/thread/{tid}/cite.bib").data.decode().startswith("@misc{")
    assert client.get(f"/message/{message['msg_hash']}/cite.json").status_code == 200


def test_web_citations_use_the_base_url_setting(client, sample, monkeypatch):
    monkeypatch.setenv("ARCHIVE_BASE_URL", BASE + "/")
    [item] = json.loads(client.get(f"/thread/{sample['thread']['thread_id']}/cite.json").data)
    assert item["URL"] == f"{BASE}/thread/{sample['thread']['thread_id']}/"


@pytest.mark.parametrize("url", ["/message/nothash/cite.bib", "/message/" + "a" * 32 + "/cite.bib",
                                 "/thread/" + "a" * 32 + "/cite.json", "/thread/x/cite.json"])
def test_web_citation_of_nothing_is_404(client, url):
    assert client.get(url).status_code == 404


def test_web_citation_format_unknown_is_404(client, sample):
    assert client.get(f"/message/{sample['message']['msg_hash']}/cite.ris").status_code == 404


def test_pages_link_their_citations(client, sample):
    message, tid = sample["message"], sample["thread"]["thread_id"]
    page = client.get(f"/message/{message['msg_hash']}/").data.decode()
    assert f"/message/{message['msg_hash']}/cite.bib" in page and f"/message/{message['msg_hash']}/cite.json" in page
    page = client.get(f"/thread/{tid}/").data.decode()
    assert re.search(rf"Cite: <a href=\"/thread/{tid}/cite.bib\">BibTeX</a> · <a href=\"/thread/{tid}/cite.json\">CSL-JSON</a>", page)
