"""Research exports from the CLI: scopes against the facade's own queries, date bounds, clear
errors, the reply graph, manifests, pseudonyms and opt-outs."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver import config
from archiver.cli import main
from archiver.ids import person_key
from archiver.query import Archive
from archiver.store import Store

SALT = "a salt of more than sixteen characters"


@pytest.fixture(scope="module")
def web_data(sample_on_both):
    """This module reads the sample from a store in SQLite and from one on PostgreSQL."""
    return sample_on_both[0]


@pytest.fixture(scope="module")
def app(app_on_both):
    return app_on_both


@pytest.fixture(scope="module")
def archive(web_data) -> Archive:
    store = Store(config.database_url(web_data))
    archive = Archive(store, index_dir=web_data / "whoosh")
    yield archive
    if archive.index is not None:
        archive.index.close()
    store.close()


@pytest.fixture(scope="module")
def everything(archive) -> list[dict]:
    return list(archive.messages())


def run(web_data: Path, *args: str, env: dict | None = None):
    return CliRunner().invoke(main, ["--data", str(web_data), "export", *args], env=env)


def records(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    # split("\n"), not splitlines(): a body may hold U+2028, which JSON leaves unescaped.
    return [json.loads(line) for line in result.stdout.split("\n") if line]


def ids(result) -> list[str]:
    return [r["message_id"] for r in records(result)]


# --- scopes give the facade's message sets -----------------------------------------------------
def test_everything_is_the_archive_in_date_order(web_data, everything):
    assert ids(run(web_data)) == [r["message_id"] for r in everything]


def test_a_list(web_data, archive):
    got = ids(run(web_data, "--list", "governance"))
    assert got == [r["message_id"] for r in archive.messages("governance")]
    assert 0 < len(got) < len(list(archive.messages()))


def test_a_thread(web_data, archive):
    biggest = max(archive.threads(limit=200)["threads"], key=lambda t: t["size"])
    got = ids(run(web_data, "--thread", biggest["thread_id"]))
    assert got == archive.thread_message_ids(biggest["thread_id"], 10_000)
    assert len(got) == biggest["size"]


def test_a_topic_is_its_tagged_messages(web_data, archive, everything):
    got = records(run(web_data, "--topic", "itu-itrs"))
    assert got and all("itu-itrs" in r["topics"] for r in got)
    assert {r["message_id"] for r in got} == {r["message_id"] for r in everything if "itu-itrs" in r["topics"]}
    _, hits = archive.search_ids("topic:itu-itrs", limit=10_000)
    assert {r["message_id"] for r in got} == set(hits)


def test_a_person_by_address_or_key(web_data, archive, everything):
    address = max({r["from_address"] for r in everything},
                  key=lambda a: sum(r["from_address"] == a for r in everything))
    got = ids(run(web_data, "--person", address.upper()))
    person = archive.person(person_key(address), limit=10_000)
    assert len(got) == person["messages"] > 5
    assert set(got) == {m["message_id"] for g in person["groups"] for t in g["threads"] for m in t["messages"]}
    assert ids(run(web_data, "--person", person_key(address))) == got


def test_a_query_is_every_hit_in_date_order(web_data, archive, everything):
    got = ids(run(web_data, "--query", "visa"))
    total, hits = archive.search_ids("visa", limit=10_000, sort="oldest")
    assert len(got) == total > 20 and set(got) == set(hits)
    order = {r["message_id"]: n for n, r in enumerate(everything)}
    assert [order[m] for m in got] == sorted(order[m] for m in got)


@pytest.mark.parametrize("since, until, low, high", [
    ("2012-11", "2012-11", "2012-11-01", "2012-12-01"),
    ("2012-11-05", "2012-11-05", "2012-11-05", "2012-11-06"),
    ("2012-12-15", None, "2012-12-15", "9999"),
    (None, "2012-10", "0000", "2012-11-01"),
    ("2012", "2012", "2012-01-01", "2013-01-01"),
])
def test_since_and_until_bound_the_dates(web_data, everything, since, until, low, high):
    args = (["--since", since] if since else []) + (["--until", until] if until else [])
    got = ids(run(web_data, *args))
    want = [r["message_id"] for r in everything if r["date"] and low <= r["date"] < high]
    assert got == want and want
    # A scope and a date range together: both apply.
    got = ids(run(web_data, "--list", "governance", *args))
    assert got == [r["message_id"] for r in everything
                   if r["date"] and low <= r["date"] < high and "governance" in r["lists"]]


def test_a_query_within_dates(web_data, everything):
    got = records(run(web_data, "--query", "visa", "--since", "2012-11", "--until", "2012-11"))
    assert got and all("2012-11-01" <= r["date"] < "2012-12-01" for r in got)
    assert len(got) < len(records(run(web_data, "--query", "visa")))


# --- errors are clear, never a traceback -------------------------------------------------------
@pytest.mark.parametrize("args, code, words", [
    (["--list", "nope"], 1, "no list named 'nope'"),
    (["--thread", "abc"], 1, "no thread has the id"),
    (["--topic", "nope"], 1, "no topic 'nope'"),
    (["--person", "nobody@nowhere.example"], 1, "no messages from"),
    (["--person", "not an address"], 1, "takes an address"),
    (["--query", '"open'], 2, "bad query"),
    (["--query", "bogus:field"], 2, "bad query"),
    (["--since", "2012-13"], 2, "is not a date"),
    (["--until", "yesterday"], 2, "is not a date"),
    (["--since", "2012-12", "--until", "2012-11"], 1, "is after --until"),
    (["--list", "bestbits", "--topic", "itu-itrs"], 2, "give one scope"),
    (["--list", ""], 1, "must not be empty"),
    (["--format", "parquet"], 1, "give -o"),
    (["--format", "edges"], 1, "give -o"),
    (["--format", "xml"], 2, "Invalid value"),
    (["--format", "mbox", "--pseudonymise"], 1, "cannot be pseudonymised"),
    (["--pseudonymise"], 1, "ARCHIVE_PSEUDONYM_SALT"),
    (["--pseudonymise", "--salt-env", "MY_SALT"], 1, "MY_SALT"),
])
def test_bad_scopes_and_formats_say_what_is_wrong(web_data, args, code, words):
    result = run(web_data, *args, env={"ARCHIVE_PSEUDONYM_SALT": ""})
    assert result.exit_code == code, result.output
    assert words in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_a_short_salt_and_a_bad_opt_out_list_are_refused(web_data, tmp_path):
    result = run(web_data, "--pseudonymise", env={"ARCHIVE_PSEUDONYM_SALT": "short"})
    assert result.exit_code == 1 and "at least 16 characters" in result.output
    bad = tmp_path / "opt-out.txt"
    bad.write_text("# people who asked\nok@example.org\nnot an address\n", encoding="utf-8")
    result = run(web_data, "--opt-out", str(bad))
    assert result.exit_code == 1 and "line 3" in result.output and "Traceback" not in result.output


def test_a_missing_output_folder_is_an_error_not_a_traceback(web_data, tmp_path):
    result = run(web_data, "--format", "csv", "-o", str(tmp_path / "no" / "such" / "x.csv"))
    assert result.exit_code == 1 and "does not exist" in result.output
    assert not list(tmp_path.rglob("*.part"))


# --- manifests ---------------------------------------------------------------------------------
def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt, name", [("jsonl", "out.jsonl"), ("csv", "out.csv"), ("mbox", "out.mbox"),
                                       ("parquet", "out.parquet")])
def test_the_manifest_hashes_the_file_and_names_no_local_path(web_data, tmp_path, fmt, name):
    out = tmp_path / name
    result = run(web_data, "--list", "bestbits", "--since", "2012-11", "--format", fmt, "-o", str(out))
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / (name + ".manifest.json")).read_text(encoding="utf-8"))
    assert manifest["files"] == [{"name": name, "bytes": out.stat().st_size, "sha256": sha256(out)}]
    assert manifest["format"] == fmt and manifest["software"]["name"] == "bestbits-archive"
    assert re.match(r"^\d+\.\d+", manifest["software"]["version"])
    assert manifest["scope"] == {"kind": "list", "value": "bestbits", "query": None, "since": "2012-11",
                                 "until": None, "from_utc": "2012-11-01T00:00:00Z", "before_utc": None}
    assert manifest["counts"]["messages"] > 100 and manifest["counts"]["threads"] > 10
    assert manifest["counts"]["first_date"] >= "2012-11-01"
    assert manifest["codebook"]
    sources = {(s["list"], s["kind"]): s for s in manifest["sources"]}
    bestbits = sources[("bestbits", "pipermail")]
    assert bestbits["archive"] == "http://lists.igcaucus.org/pipermail/bestbits/"
    assert set(bestbits["files"]) <= {"2012-October.txt.gz", "2012-November.txt.gz", "2012-December.txt"}
    assert bestbits["first_seen"] <= bestbits["last_seen"]
    text = json.dumps(manifest)
    assert str(tmp_path) not in text and "fixtures/sample" not in text and str(web_data) not in text
    assert not list(tmp_path.glob("*.part"))


def test_standard_output_gets_a_manifest_only_when_asked(web_data, tmp_path):
    where = tmp_path / "stdout.manifest.json"
    result = run(web_data, "--topic", "itu-itrs", "--format", "csv", "--manifest", str(where))
    assert result.exit_code == 0
    manifest = json.loads(where.read_text(encoding="utf-8"))
    assert manifest["files"] == [{"name": "-", "bytes": len(result.stdout_bytes),
                                  "sha256": hashlib.sha256(result.stdout_bytes).hexdigest()}]
    assert manifest["counts"]["messages"] == len(list(csv.DictReader(io.StringIO(result.stdout))))
    assert list(tmp_path.iterdir()) == [where]


# --- reply graph -------------------------------------------------------------------------------
def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_reply_graph(web_data, tmp_path, everything):
    result = run(web_data, "--format", "edges", "-o", str(tmp_path / "graph"))
    assert result.exit_code == 0, result.output
    edges, nodes = read_csv(tmp_path / "graph" / "edges.csv"), read_csv(tmp_path / "graph" / "nodes.csv")
    sender = {r["message_id"]: r["from_address"].lower() for r in everything}
    replies = [r for r in everything if r["parent_id"] in sender]
    assert len(edges) == len(replies) > 100
    assert list(edges[0]) == ["replier", "replied_to", "message", "thread", "date"]
    for edge, reply in zip(edges, replies):
        assert edge == {"replier": reply["from_address"].lower(), "replied_to": sender[reply["parent_id"]],
                        "message": reply["message_id"], "thread": reply["thread_id"], "date": reply["date"]}
    assert list(nodes[0]) == ["participant", "name", "organisation", "messages"]
    assert sum(int(n["messages"]) for n in nodes) == len(everything)
    assert {n["participant"] for n in nodes} >= {e["replier"] for e in edges} | {e["replied_to"] for e in edges}
    manifest = json.loads((tmp_path / "graph" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["edges"] == len(edges) and manifest["counts"]["nodes"] == len(nodes)
    assert [f["name"] for f in manifest["files"]] == ["edges.csv", "nodes.csv"]
    for entry in manifest["files"]:
        assert entry["sha256"] == sha256(tmp_path / "graph" / entry["name"])
    assert set(manifest["codebook"]) == {"edges.csv", "nodes.csv"}


def test_edges_refuse_a_file_as_their_folder(web_data, tmp_path):
    (tmp_path / "graph").write_text("x")
    result = run(web_data, "--format", "edges", "-o", str(tmp_path / "graph"))
    assert result.exit_code == 1 and "writes a folder" in result.output


# --- pseudonyms and opt-outs -------------------------------------------------------------------
def pseudonymised(web_data, *args, salt=SALT):
    return run(web_data, "--pseudonymise", "--salt-env", "TEST_SALT", *args, env={"TEST_SALT": salt})


def test_pseudonyms_are_stable_across_exports_with_the_same_salt(web_data, everything):
    address = everything[0]["from_address"]
    whole = records(pseudonymised(web_data))
    mine = records(pseudonymised(web_data, "--person", address))
    assert {r["from_address"] for r in mine} == {whole[0]["from_address"]}
    assert re.match(r"^p-[0-9a-f]{16}$", whole[0]["from_address"])
    by_id = {r["message_id"]: r for r in whole}
    assert all(by_id[r["message_id"]] == r for r in mine)   # same ids, same texts
    # Another salt, other pseudonyms; people stay told apart.
    other = records(pseudonymised(web_data, "--person", address, salt="another salt, also long enough"))
    assert {r["from_address"] for r in other}.isdisjoint({r["from_address"] for r in mine})
    assert len({r["from_address"] for r in whole}) == len({r["from_address"].lower() for r in everything})


def test_pseudonymised_records_keep_threads_and_lose_what_identifies(web_data, everything):
    whole = records(pseudonymised(web_data))
    assert len(whole) == len(everything)
    ids_ = {r["message_id"] for r in whole}
    # Threading survives: parents and threads are pseudonyms of the same ids.
    for before, after in zip(everything, whole):
        assert (before["parent_id"] is None) == (after["parent_id"] is None)
        if after["parent_id"] and before["parent_id"] in {r["message_id"] for r in everything}:
            assert after["parent_id"] in ids_
        assert after["date"] == before["date"] and after["topics"] == before["topics"]
        assert after["msg_hash"] is None and after["archive_url"] is None and after["raw_sha256"] is None
        assert after["from_name"] == "" and after["signature"] == ""
        assert all(set(s) == {"list", "kind"} for s in after["sources"])
    text = json.dumps(whole, ensure_ascii=False)
    addresses = {r["from_address"].lower() for r in everything}
    assert not [a for a in addresses if a in text.lower()]
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.-]+", text)
    # No international number is left whole (the sample's signatures carry some).
    assert not re.search(r"\+\d[\d ()./-]{5,}\d", text)


def test_names_of_a_threads_participants_are_masked(web_data, everything):
    whole = records(pseudonymised(web_data))
    for before, after in zip(everything, whole):
        name = before["from_name"]
        if name and " " in name:
            assert name not in after["own_text"] and name not in after["quoted_text"]


def test_an_opt_out_leaves_people_out_of_records_and_the_graph(web_data, tmp_path, everything):
    counts: dict[str, int] = {}
    for r in everything:
        counts[r["from_address"].lower()] = counts.get(r["from_address"].lower(), 0) + 1
    leaving = sorted(counts, key=counts.get, reverse=True)[:2]
    opt_out = tmp_path / "opt-out.txt"
    opt_out.write_text(f"# asked on the list\n\n{leaving[0].upper()}\nSomeone <{leaving[1]}>\n", encoding="utf-8")
    got = records(run(web_data, "--opt-out", str(opt_out), "--manifest", str(tmp_path / "m.json")))
    assert len(got) == len(everything) - counts[leaving[0]] - counts[leaving[1]]
    assert not {r["from_address"].lower() for r in got} & set(leaving)
    manifest = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert manifest["opt_out"] == {"addresses": 2, "messages_left_out": counts[leaving[0]] + counts[leaving[1]]}
    assert leaving[0] not in json.dumps(manifest)
    # Replies to them lose the quotes of their words.
    author = {r["message_id"]: r["from_address"].lower() for r in everything}
    answering = {r["message_id"] for r in everything if author.get(r["parent_id"]) in leaving}
    kept = [r for r in got if r["message_id"] in answering]
    assert kept and all(r["quoted_text"] == "" for r in kept)
    assert manifest["counts"]["quotes_left_out_by_opt_out"] == len(kept)
    assert any(r["quoted_text"] for r in got)
    # Pseudonymised graph: their nodes, and every edge touching them, are gone.
    graph = tmp_path / "graph"
    result = pseudonymised(web_data, "--opt-out", str(opt_out), "--format", "edges", "-o", str(graph))
    assert result.exit_code == 0, result.output
    full = tmp_path / "full"
    assert pseudonymised(web_data, "--format", "edges", "-o", str(full)).exit_code == 0
    gone = {n["participant"] for n in read_csv(full / "nodes.csv")} - {n["participant"] for n in read_csv(graph / "nodes.csv")}
    assert len(gone) == 2
    edges = read_csv(graph / "edges.csv")
    assert edges and not any(e["replier"] in gone or e["replied_to"] in gone for e in edges)
    assert len(edges) < len(read_csv(full / "edges.csv"))
    assert all(n["name"] == "" for n in read_csv(graph / "nodes.csv"))


def test_a_pseudonymised_manifest_names_no_one(web_data, tmp_path, everything):
    address = everything[0]["from_address"]
    out = tmp_path / "p.csv"
    result = pseudonymised(web_data, "--person", address, "--format", "csv", "-o", str(out))
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "p.csv.manifest.json").read_text(encoding="utf-8"))
    assert address not in json.dumps(manifest) and manifest["scope"]["value"].startswith("p-")
    assert manifest["pseudonymised"]["method"] == "HMAC-SHA256"
    assert "(pseudonymisation)" in manifest["codebook"]
    again = tmp_path / "q.csv"
    pseudonymised(web_data, "--format", "csv", "-o", str(again))
    other = json.loads((tmp_path / "q.csv.manifest.json").read_text(encoding="utf-8"))
    assert other["pseudonymised"]["salt_check"] == manifest["pseudonymised"]["salt_check"]
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows and {r["from_address"] for r in rows} == {manifest["scope"]["value"]}


def test_an_mbox_leaves_opted_out_people_out(web_data, tmp_path, everything):
    import mailbox

    leaving = everything[0]["from_address"]
    (tmp_path / "opt-out.txt").write_text(leaving + "\n", encoding="utf-8")
    out = tmp_path / "x.mbox"
    result = run(web_data, "--format", "mbox", "--opt-out", str(tmp_path / "opt-out.txt"), "-o", str(out))
    assert result.exit_code == 0, result.output
    box = mailbox.mbox(str(out))
    try:
        senders = [m["From"] for m in box]
    finally:
        box.close()
    assert len(senders) == sum(r["from_address"].lower() != leaving.lower() for r in everything)
    assert not any(leaving.lower() in (s or "").lower() for s in senders)


# --- the pseudonymiser itself (pure) -----------------------------------------------------------
def test_a_pseudonym_is_a_salted_hmac_of_the_lower_cased_address():
    import hmac

    from archiver.pseudonym import Pseudonymiser

    p = Pseudonymiser(SALT)
    want = hmac.new(SALT.encode(), b"person:jane@civil.example", hashlib.sha256).hexdigest()[:16]
    assert p.person(" Jane@Civil.example ") == "p-" + want == p.person("jane@civil.example")
    assert p.ident("a@b") != p.ident("a@b", "t") and p.ident(None) is None
    assert Pseudonymiser(SALT + "!").person("jane@civil.example") != p.person("jane@civil.example")


@pytest.mark.parametrize("text, want", [
    ("Call +41 22 730 5111 today", "Call [phone] today"),
    ("tel: 555-1234", "tel: [phone]"),
    ("(+55) 11 98765-4321", "[phone]"),
    ("On 2012-10-02 10:00 she wrote", "On 2012-10-02 10:00 she wrote"),
    ("1,000,000 people in 2012", "1,000,000 people in 2012"),
    ("Ref 12345", "Ref 12345"),
])
def test_phone_numbers_are_masked_and_dates_are_not(text, want):
    from archiver.pseudonym import Pseudonymiser

    assert Pseudonymiser(SALT).text(text) == want


def test_addresses_and_names_in_texts_become_pseudonyms():
    from archiver.pseudonym import Pseudonymiser, name_map

    p = Pseudonymiser(SALT)
    jane, ana, anna = p.person("jane@x.org"), p.person("ana@y.org"), p.person("ana.s@z.org")
    names = name_map([("jane@x.org", "Jane Doe"), ("ana@y.org", '"Ana Silva" (APC)'),
                      ("ana.s@z.org", "Ana Souza"), ("info@z.org", "Internet Society")], p.person)
    text = "Thanks Jane, and Ana Silva: mail jane@x.org or ana at y.org. Janet and the Internet Society agree."
    got = p.text(text, names)
    assert got == (f"Thanks {jane}, and {ana}: mail {jane} or {ana}. Janet and the "
                   f"{p.person('info@z.org')} agree.")
    assert p.text("Ana wrote", names) == "[name] wrote"   # two Anas: which one is not said
    assert p.text("Souza wrote", names) == f"{anna} wrote"
    assert p.text("", names) == "" and p.text(None) == ""


def test_a_salt_is_required_and_long(monkeypatch):
    from archiver.errors import ArchiverError
    from archiver.pseudonym import Pseudonymiser

    with pytest.raises(ArchiverError, match="ARCHIVE_PSEUDONYM_SALT"):
        Pseudonymiser.from_env(environ={})
    with pytest.raises(ArchiverError, match="16"):
        Pseudonymiser.from_env("S", environ={"S": "too short"})
    assert Pseudonymiser.from_env("S", environ={"S": SALT}).check() == Pseudonymiser(SALT).check()
