"""Search end to end: real SQLite stores and Whoosh indexes on disk, the query language, facets,
sorting, pagination, threads, snippets, errors, incremental updates, rebuilds and the CLI.

Expected counts come from fixtures/sample/truth.jsonl (or, for quoted text, from the store's
records) rather than from the index itself, wherever that is possible.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from archiver import schema as s
from archiver.cli import main
from archiver.errors import QueryError
from archiver.packing import pack_texts
from archiver.pipeline import ingest, rebuild_index, update_index
from archiver.query import Archive
from archiver.store import Store
from conftest import eml

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample"
TRUTH = [json.loads(line) for line in (SAMPLE / "truth.jsonl").read_text(encoding="utf-8").splitlines()
         if line.strip()]
FACET_FILTER = {"list": "list:{}", "lang": "lang:{}", "month": "date:{}", "author": 'from:"{}"',
                "org": 'org:"{}"', "topic": "topic:{}"}
HIT_KEYS = {"message_id", "thread_id", "score", "date", "from_name", "subject", "lists", "topics",
            "snippet"}


# --- helpers -------------------------------------------------------------------------------

def mail(mid: str, body: str, *, subject: str = "Topic", refs: tuple[str, ...] = (),
         sender: str = "Jane Doe <jane.doe@civil.example>", date: str | None = None,
         hour: int = 10) -> bytes:
    """A message from conftest's eml(), with another sender or Date header when asked."""
    raw = eml(mid, subject, refs, body, hour=hour).decode()
    raw = raw.replace("From: Jane Doe <jane.doe@civil.example>", f"From: {sender}", 1)
    if date:
        raw = re.sub(r"(?m)^Date: .*$", f"Date: {date}", raw, count=1)
    return raw.encode()


def write_mbox(path: Path, messages: list[bytes]) -> str:
    with open(path, "wb") as out:
        for message in messages:
            out.write(b"From someone@civil.example Tue Oct  2 10:00:00 2012\n" + message + b"\n")
    return str(path)


def open_archive(data: Path, server=None) -> Archive:
    """The archive of a data directory laid out as the CLI does (archive.sqlite3, whoosh/), or,
    given a PostgreSQL server, with its store and search (search_backend auto) in a new
    database there."""
    data.mkdir(parents=True, exist_ok=True)
    url = server.create_database() if server else f"sqlite:///{data / 'archive.sqlite3'}"
    _URLS[data] = url
    store = Store(url)
    archive = Archive(store, index_dir=data / "whoosh")
    archive.data = data
    return archive


def all_hits(archive: Archive, query: str, **options) -> list[dict]:
    """Every hit of a query, page by page (100 a page)."""
    hits, page = [], 1
    while True:
        found = archive.search(query, page=page, per_page=100, **options)
        hits += found["hits"]
        if page >= found["pages"]:
            return hits
        page += 1


def ids(archive: Archive, query: str, **options) -> set[str]:
    return {hit["message_id"] for hit in all_hits(archive, query, **options)}


def total(archive: Archive, query: str, **options) -> int:
    return archive.search(query, per_page=1, **options)["total"]


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", (text or "").casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def set_topics(store: Store, tags: dict[str, dict[str, float]]) -> None:
    """Give messages exactly these topics (by Message-ID; absent means none), replacing what the
    tagger chose at ingest; the store marks the changed messages for re-indexing."""
    m = s.messages.c
    with store.engine.connect() as conn:
        pks = dict(conn.execute(select(m.message_id, m.id)).all())
    store.replace_message_tags({pk: tags.get(mid, {}) for mid, pk in pks.items()})


_URLS: dict[Path, str] = {}   # data directory -> its store's URL (PostgreSQL ones live elsewhere)


def cli(data: Path, *args: str):
    url = _URLS.get(data)
    return CliRunner(env={"ARCHIVE_DATABASE_URL": url} if url else None).invoke(
        main, ["--data", str(data), *args])


def on_postgresql(archive: Archive) -> bool:
    return archive.store.engine.dialect.name == "postgresql"


# --- the archives --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample(tmp_path_factory, module_server) -> Archive:
    """The bundled sample, both lists ingested with the index updated by each ingest: in
    SQLite with the Whoosh index, then in PostgreSQL with its search table."""
    archive = open_archive(tmp_path_factory.mktemp("sample"), module_server)
    for name in ("bestbits", "governance"):
        ingest(archive.store, [str(SAMPLE / name)], name, workers=1, archive=archive)
    yield archive
    archive.store.close()


@pytest.fixture(scope="module")
def sample_records(sample) -> dict[str, dict]:
    return {record["message_id"]: record for record in sample.messages()}


ORIGINAL = "Friends, we should defend the quokka charter in the statement we send to the meeting."
HAND = {
    "orig@hand.example": mail("orig@hand.example", ORIGINAL + "\n", subject="Charter",
                              sender="Alice Moreau <alice@hand.example>", hour=8),
    "reply@hand.example": mail(
        "reply@hand.example",
        "I agree with this and will sign it today, as will our board.\n\n"
        "On Tue, 02 Oct 2012 at 08:00, Alice Moreau wrote:\n> " + ORIGINAL + "\n",
        subject="Re: Charter", refs=("orig@hand.example",), sender="Bruno Lima <bruno@hand.example>",
        hour=9),
    "script@hand.example": mail(
        "script@hand.example",
        "Please never paste <script>alert(1)</script> into the archive pages & forms, it breaks them.\n",
        subject="Markup warning", hour=11),
    "en@hand.example": mail(
        "en@hand.example",
        "We are negotiating statements with the national delegations before the conference.\n",
        subject="Statements", hour=12),
    "fr@hand.example": mail(
        "fr@hand.example",
        "Nous proposons une coopération renforcée entre les délégations nationales et la société "
        "civile.\n", subject="Proposition", sender="Hélène Marchand <helene@hand.example>", hour=13),
    "es@hand.example": mail(
        "es@hand.example",
        "Proponemos declaraciones conjuntas de las delegaciones nacionales y de la sociedad civil.\n",
        subject="Propuesta", sender="Joaquín Ruiz <joaquin@hand.example>", hour=14),
    "pt@hand.example": mail(
        "pt@hand.example",
        "Negociamos declarações conjuntas com as delegações nacionais e a sociedade civil "
        "brasileira.\n", subject="Proposta", sender="João Prado <joao@hand.example>", hour=15),
    # UTC: 2012-11-01T00:00Z exactly, 2012-11-01T01:30Z and 2012-10-31T23:00Z.
    "edge@hand.example": mail("edge@hand.example",
                              "Posted at exactly midnight on the first day of November.\n",
                              subject="Midnight", date="Thu, 01 Nov 2012 00:00:00 +0000"),
    "late@hand.example": mail("late@hand.example",
                              "Posted late on the last evening of October, local time.\n",
                              subject="Late", date="Wed, 31 Oct 2012 23:30:00 -0200"),
    "early@hand.example": mail("early@hand.example",
                               "Posted early on the first morning of November, local time.\n",
                               subject="Early", date="Thu, 01 Nov 2012 01:00:00 +0200"),
    "words@hand.example": mail("words@hand.example",
                               " ".join(f"zq{i:04d}" for i in range(250)) + "\n", subject="Codes"),
}
HAND_TOPICS = {"en@hand.example": {"itu-itrs": 5.0},
               "fr@hand.example": {"itu-itrs": 4.0, "enhanced-cooperation": 6.0},
               "script@hand.example": {"logistics": 3.0}}


@pytest.fixture(scope="module")
def hand(tmp_path_factory, module_server) -> Archive:
    """A small hand-made archive: quotes, markup, four languages, dates at month edges, topics
    (on each backend, as the sample)."""
    data = tmp_path_factory.mktemp("hand")
    archive = open_archive(data, module_server)
    source = write_mbox(data / "hand.mbox", list(HAND.values()))
    ingest(archive.store, [source], "alpha", workers=1, archive=archive)
    set_topics(archive.store, HAND_TOPICS)
    update_index(archive)
    yield archive
    archive.store.close()


def test_hand_archive_is_as_built(hand):
    records = {r["message_id"]: r for r in hand.messages()}
    assert set(records) == set(HAND)
    langs = {lang: records[f"{lang}@hand.example"]["language"] for lang in ("en", "fr", "es", "pt")}
    assert langs == {"en": "en", "fr": "fr", "es": "es", "pt": "pt"}
    reply = records["reply@hand.example"]
    assert "quokka" not in reply["own_text"] and "quokka charter" in reply["quoted_text"]
    assert {mid: records[mid]["topics"] for mid in HAND_TOPICS} == \
        {mid: sorted(t, key=lambda k: -t[k]) for mid, t in HAND_TOPICS.items()}
    assert hand.store.unindexed() == []


# --- words, phrases and the Boolean operators ----------------------------------------------

def test_words_are_anded_by_default(sample):
    both = ids(sample, "visa hotel")
    assert both == ids(sample, "visa AND hotel") == ids(sample, "visa") & ids(sample, "hotel")
    assert both and both < ids(sample, "visa")


def test_or_is_the_union(sample):
    assert ids(sample, "itu OR itrs") == ids(sample, "itu") | ids(sample, "itrs")


def test_and_not_is_the_difference(sample):
    got = ids(sample, "wcit AND NOT dubai")
    assert got == ids(sample, "wcit") - ids(sample, "dubai")
    assert got and got != ids(sample, "wcit")
    assert ids(sample, "wcit NOT dubai") == got


def test_parentheses_group(sample):
    got = ids(sample, "(visa OR hotel) baku")
    assert got == (ids(sample, "visa") | ids(sample, "hotel")) & ids(sample, "baku")
    assert got and got != ids(sample, "visa OR (hotel baku)")


def test_operators_are_capitals_only(sample):
    # Lower-case "or" is a word to find, so the query asks for all three words.
    assert ids(sample, "itu or itrs") <= ids(sample, "itu") & ids(sample, "itrs")


def _phrase_in(pattern: str, *texts: str) -> bool:
    return any(re.search(pattern, fold(t)) for t in texts)


# (phrase typed, regex over folded text that the stemmed phrase should match)
PHRASES = [("national delegations", r"\bnational\W+delegation"),
           ("enhanced cooperation", r"\benhanced\W+cooperation"),
           ("marco civil", r"\bmarco\W+civil\b"),
           ("travel funding", r"\btravel\W+funding\b")]


@pytest.mark.parametrize("phrase, pattern", PHRASES)
def test_phrase_finds_own_words_as_the_truth_has_them(sample, phrase, pattern):
    truth_ids = {t["message_id"] for t in TRUTH}
    expected = {t["message_id"] for t in TRUTH
                if _phrase_in(pattern, t["own_text"] or "", t["subject"] or "")}
    got = ids(sample, f'"{phrase}"')
    assert expected and got & truth_ids == expected


@pytest.mark.parametrize("phrase, pattern", PHRASES)
def test_quoted_field_finds_quoted_text(sample, sample_records, phrase, pattern):
    # Quoted text is stemmed by the replying writer's language: count the English writers here.
    english = {mid for mid, r in sample_records.items() if r["language"] == "en"}
    expected = {mid for mid in english if _phrase_in(pattern, sample_records[mid]["quoted_text"])}
    assert expected and ids(sample, f'quoted:"{phrase}"') & english == expected


@pytest.mark.xfail(strict=True, reason="quoted text is indexed with the stemmer of the replying "
                   "writer's language: a Portuguese reply quoting 'our national delegation' in "
                   "English is not found by quoted:\"national delegations\" (the pt stemmer "
                   "keeps 'delegations' and 'delegation' apart)")
def test_quoted_english_in_a_reply_in_another_language(sample, sample_records):
    pattern = r"\bnational\W+delegation\b"
    others = {mid for mid, r in sample_records.items()
              if r["language"] not in ("en", "") and _phrase_in(pattern, r["quoted_text"])}
    assert others
    assert others <= ids(sample, 'quoted:"national delegations"')


def test_a_phrase_only_quoted_is_found_with_quoted_and_not_without(sample, sample_records):
    pattern = PHRASES[1][1]
    only_quoted = {mid for mid, r in sample_records.items()
                   if _phrase_in(pattern, r["quoted_text"])
                   and not _phrase_in(pattern, r["own_text"], r["subject"])}
    assert only_quoted
    assert only_quoted <= ids(sample, 'quoted:"enhanced cooperation"')
    assert not only_quoted & ids(sample, '"enhanced cooperation"')


def test_a_phrase_is_stricter_than_its_words(sample):
    assert ids(sample, '"national delegations"') < ids(sample, "national delegations")


def test_own_words_versus_quoted_text_by_hand(hand):
    assert ids(hand, '"quokka charter"') == {"orig@hand.example"}
    assert ids(hand, "quokka") == {"orig@hand.example"}
    assert ids(hand, 'quoted:"quokka charter"') == {"reply@hand.example"}
    assert ids(hand, "quoted:quokka") == {"reply@hand.example"}
    # "Who said it": Bruno only quoted Alice.
    assert ids(hand, 'from:bruno "quokka charter"') == set()
    assert ids(hand, 'from:alice "quokka charter"') == {"orig@hand.example"}
    assert ids(hand, 'from:bruno quoted:"quokka charter"') == {"reply@hand.example"}
    assert ids(hand, 'quokka OR quoted:quokka') == {"orig@hand.example", "reply@hand.example"}


def test_subject_words_find_a_threads_messages(hand):
    # Own words are searched with the subject.
    assert ids(hand, "charter") == {"orig@hand.example", "reply@hand.example"}


# --- fields --------------------------------------------------------------------------------

def _truth_count(**match) -> int:
    return sum(all(fold(t[k] or "") == fold(v) for k, v in match.items()) for t in TRUTH)


@pytest.mark.parametrize("query, name", [
    ('from:"Hannah Whitcombe"', "Hannah Whitcombe"),
    ("from:whitcombe", "Hannah Whitcombe"),
    ("from:helene", "Hélène Marchetti"),
    ("from:hélène", "Hélène Marchetti"),
    ("from:joao", "João Carvalho Neves"),
])
def test_from_by_name(sample, query, name):
    assert total(sample, query) == _truth_count(from_name=name) > 0


def test_from_by_address(sample):
    address = "hannah.whitcombe@openvoice.example"
    expected = _truth_count(from_address=address)
    assert expected > 0
    assert total(sample, f"from:{address}") == expected
    assert total(sample, f'from:"{address}"') == expected
    found = all_hits(sample, f"from:{address}")
    assert {hit["from_name"] for hit in found} == {"Hannah Whitcombe"}


def test_from_a_domain_finds_its_people(sample):
    expected = sum(t["from_address"].endswith("@redeliberdade.example") for t in TRUTH)
    assert total(sample, "from:redeliberdade.example") == expected > 0


@pytest.mark.parametrize("query, org", [('org:"Open Voice"', "Open Voice Collective"),
                                        ('org:"open voice collective"', "Open Voice Collective"),
                                        ('org:"Maghreb Numerique"', "Maghreb Numérique")])
def test_org(sample, query, org):
    expected = sum(t["organisation"] == org for t in TRUTH)
    assert total(sample, query) == expected > 0
    assert {hit["organisation"] for hit in all_hits(sample, query)} == {org}


def test_subject(sample):
    expected = {t["message_id"] for t in TRUTH if re.search(r"\bbaku\b", fold(t["subject"]))}
    got = ids(sample, "subject:baku")
    assert expected and got & {t["message_id"] for t in TRUTH} == expected
    assert got < ids(sample, "baku")


@pytest.mark.parametrize("name", ["bestbits", "governance"])
def test_list(sample, name):
    expected = sum(name in t["lists"] for t in TRUTH)
    assert total(sample, f"list:{name}") == expected > 0
    assert total(sample, f"list:{name.upper()}") == expected
    assert all(name in hit["lists"] for hit in all_hits(sample, f"list:{name}"))


@pytest.mark.parametrize("lang", ["en", "fr", "es", "pt", "ru", "ar"])
def test_lang(sample, lang):
    expected = sum(t["language"] == lang for t in TRUTH)
    assert total(sample, f"lang:{lang}") == expected > 0
    assert total(sample, f"lang:{lang.upper()}") == expected


def test_lang_and_words(sample):
    assert ids(sample, "lang:pt principios") == ids(sample, "principios") & ids(sample, "lang:pt")


def test_topic_by_hand(hand):
    assert ids(hand, "topic:itu-itrs") == {"en@hand.example", "fr@hand.example"}
    assert ids(hand, "topic:enhanced-cooperation") == {"fr@hand.example"}
    assert ids(hand, "topic:ITU-ITRS") == {"en@hand.example", "fr@hand.example"}
    assert ids(hand, "topic:itu-itrs delegations") == {"en@hand.example", "fr@hand.example"}
    assert ids(hand, "topic:itu-itrs NOT topic:enhanced-cooperation") == {"en@hand.example"}
    assert ids(hand, "topic:logistics OR topic:enhanced-cooperation") == \
        {"script@hand.example", "fr@hand.example"}
    assert ids(hand, "topic:governance-nothing") == set()
    hit = all_hits(hand, "topic:enhanced-cooperation")[0]
    assert hit["topics"] == ["enhanced-cooperation", "itu-itrs"]  # best score first


def test_topic_on_the_sample_matches_the_stored_tags(sample, sample_records):
    tagged: dict[str, set[str]] = {}
    for mid, record in sample_records.items():
        for slug in record["topics"]:
            tagged.setdefault(slug, set()).add(mid)
    if not tagged:
        pytest.skip("no sample message has topics (tagging does not run at ingest yet)")
    for slug, expected in sorted(tagged.items()):
        assert ids(sample, f"topic:{slug}") == expected, slug


def test_prefix(sample):
    got = ids(sample, "polic*")
    assert got >= ids(sample, "policy") | ids(sample, "policies") | ids(sample, "police")
    assert ids(sample, "Polic*") == got
    assert ids(sample, "list:gov*") == ids(sample, "list:governance")
    assert ids(sample, "from:whitc*") == ids(sample, "from:whitcombe")


def test_prefix_within_the_expansion_bound(hand):
    assert ids(hand, "zq00*") == {"words@hand.example"}   # 100 words


# --- dates ---------------------------------------------------------------------------------

def _truth_dates(low: str = "", high: str = "~") -> int:
    return sum(low <= t["date"] < high for t in TRUTH)


@pytest.mark.parametrize("query, low, high", [
    ("date:2012-10", "2012-10", "2012-11"),
    ("date:2012-11", "2012-11", "2012-12"),
    ("date:2012-12", "2012-12", "2013-01"),
    ("date:2012", "2012", "2013"),
    ("date:2012-11-04", "2012-11-04", "2012-11-05"),
    ("date:2012-10-01..2012-11-15", "2012-10-01", "2012-11-16"),
    ("date:2012-11..", "2012-11", "~"),
    ("date:..2012-10", "", "2012-11"),
    ("date:2012-10-15..2012-10-31", "2012-10-15", "2012-11-01"),
])
def test_dates_count_as_the_truth(sample, query, low, high):
    expected = _truth_dates(low, high)
    assert expected > 0
    assert total(sample, query) == expected
    found = all_hits(sample, query)
    assert all(low <= hit["date"] < high for hit in found)


def test_date_with_words(sample):
    assert ids(sample, "baku date:2012-11") == ids(sample, "baku") & ids(sample, "date:2012-11")
    assert ids(sample, "date:2012-11 baku") == ids(sample, "baku date:2012-11")


def test_dates_are_utc(hand):
    # late: 23:30 on 31 October at -0200 is 01:30 on 1 November UTC; early: the reverse.
    assert "late@hand.example" in ids(hand, "date:2012-11")
    assert "late@hand.example" not in ids(hand, "date:2012-10")
    assert "early@hand.example" in ids(hand, "date:2012-10-31")
    assert "early@hand.example" not in ids(hand, "date:2012-11")
    assert ids(hand, "date:2012-11-01..2012-11-01") >= {"late@hand.example"}


def test_date_ranges_exclude_their_end(hand):
    assert "edge@hand.example" in ids(hand, "date:2012-11")
    assert "edge@hand.example" not in ids(hand, "date:2012-10")
    assert "edge@hand.example" not in ids(hand, "date:..2012-10")
    assert "edge@hand.example" not in ids(hand, "date:2012-10-31")


def test_a_date_in_parentheses_still_filters(sample):
    expected = ids(sample, "baku date:2012-11")
    try:
        got = ids(sample, "(date:2012-11 baku)")
    except QueryError:
        return   # refusing it, saying why, is fine too
    assert got == expected


def test_field_names_in_capitals(sample):
    for query, lower in (("FROM:joao", "from:joao"), ("Date:2012-11", "date:2012-11")):
        try:
            got = ids(sample, query)
        except QueryError:
            continue   # refusing it, saying why, is fine too
        assert got == ids(sample, lower), query


# --- accent folding and stemming ------------------------------------------------------------

@pytest.mark.parametrize("query, mid", [
    ("negotiated", "en"), ("negotiation", "en"), ("statement delegation", "en"),
    ("NEGOTIATING", "en"),
    ("cooperation renforcee", "fr"), ("coopération renforcée", "fr"), ("COOPERATIONS", "fr"),
    ("delegation", "fr"), ("délégation nationale", "fr"), ("societe civile", "fr"),
    ('"cooperation renforcee"', "fr"),
    ("proponer", "es"), ("proponemos", "es"), ("conjunta", "es"), ("declaraciones", "es"),
    ("negociar", "pt"), ("negociamos", "pt"), ("conjunto", "pt"), ("declaracoes", "pt"),
    ("declarações", "pt"), ("delegacoes nacionais", "pt"), ('"sociedade civil brasileira"', "pt"),
])
def test_stemming_and_accent_folding(hand, query, mid):
    assert f"{mid}@hand.example" in ids(hand, query)


@pytest.mark.parametrize("query, mid", [
    ("declaración", "es"), ("delegación", "es"), ("declaração", "pt"), ("delegação", "pt"),
])
def test_singular_finds_plural_in_spanish_and_portuguese(hand, query, mid):
    assert f"{mid}@hand.example" in ids(hand, query)


@pytest.mark.parametrize("query, mid", [
    ("declaracion", "es"), ("declaracao", "pt"), ("delegacion", "es"), ("delegacao", "pt"),
    ('"declaracion conjunta"', "es"),
])
def test_unaccented_singular_finds_plural(hand, query, mid):
    # Typed without accents, 'declaracao' is stemmed 'declaraca' and 'declarações' 'declar':
    # the query looks the word up in its other forms too (index.parse.forms).
    assert f"{mid}@hand.example" in ids(hand, query)


@pytest.mark.parametrize("query, mid", [
    ("delegacoes", "pt"), ("declaracoes", "pt"), ('"delegacoes nacionais"', "pt"),
])
def test_unaccented_plural_still_finds_accented_plural(hand, query, mid):
    # The index keeps each word's unaccented stem too, so these matched before the query
    # looked words up in their other forms; those forms must keep the word as typed.
    assert f"{mid}@hand.example" in ids(hand, query)


@pytest.mark.parametrize("word, expected", [
    ("eleicao", ["eleicao", "eleição", "eleições", "eleicoes"]),
    ("Eleições", ["eleições", "eleição", "eleicao", "eleicoes"]),
    ("sessões", ["sessões", "sessão", "sessao", "sessoes"]),
    ("declaracion", ["declaracion", "declaración", "declaraciones"]),
    ("sesión", ["sesión", "sesiones", "sesion"]), ("reuniao", ["reuniao", "reunião", "reuniões", "reunioes"]),
    ("opiniones", ["opiniones", "opinión", "opinion"]),
    # English words of the same endings stay as typed; so do words too short to have a base.
    ("session", ["session"]), ("nation", ["nation"]), ("reunion", ["reunion"]), ("nao", ["nao"]),
    ("nations", ["nations"]),
])
def test_the_forms_a_typed_word_is_looked_up_in(word, expected):
    from archiver.index.parse import _typed, forms

    assert forms(word) == expected
    assert str(_typed(word)).count(" OR ") == len(expected) - 1


def test_readme_example_declaracao_finds_declaracoes(sample, sample_records):
    plural_only = {mid for mid, r in sample_records.items()
                   if re.search(r"\bdeclaracoes\b", fold(r["subject"] + " " + r["own_text"]))
                   and not re.search(r"\bdeclaracao\b", fold(r["subject"] + " " + r["own_text"]))}
    assert plural_only
    assert plural_only <= ids(sample, "declaração")


def test_readme_example_cooperation_renforcee(sample, sample_records):
    expected = {mid for mid, r in sample_records.items()
                if re.search(r"\bcooperation renforcee\b", fold(r["subject"] + " " + r["own_text"]))}
    assert expected
    assert ids(sample, "cooperation renforcee") >= expected
    assert ids(sample, "cooperation renforcee") == ids(sample, "coopération renforcée")


def test_stemming_is_per_language(hand):
    # An English word is not stemmed by the French rules into a French document's word, and the
    # other way round: each message is searched in its own language's field.
    assert ids(hand, "nationales") >= {"fr@hand.example"}
    assert "en@hand.example" not in ids(hand, "proposons")


# --- facets --------------------------------------------------------------------------------

def _check_facets(archive: Archive, query: str, top: int = 5) -> int:
    found = archive.search(query)
    checked = 0
    for name, values in found["facets"].items():
        counts = [v["count"] for v in values]
        assert counts == sorted(counts, reverse=True), name
        assert len(values) <= 15
        for item in values[:top]:
            value = item["value"].replace('"', "")
            narrowed = f"{query} {FACET_FILTER[name].format(value)}"
            assert total(archive, narrowed) == item["count"], (name, item)
            checked += 1
    return checked


@pytest.mark.parametrize("query", ["wcit statement", '"national delegations"', "list:governance"])
def test_each_facet_count_is_the_total_with_that_filter(sample, query):
    found = sample.search(query)
    for name in ("list", "month", "lang", "author", "org"):
        assert found["facets"][name], name
    assert _check_facets(sample, query) > 10


def test_facets_count_all_matches_not_one_page(sample):
    found = sample.search("list:governance", per_page=3)
    assert sum(v["count"] for v in found["facets"]["month"]) == found["total"]
    assert sum(v["count"] for v in found["facets"]["lang"]) == found["total"]


def test_list_facet_counts_cross_posts_in_each_list(sample):
    found = sample.search("date:2012")
    lists = {v["value"]: v["count"] for v in found["facets"]["list"]}
    assert lists == {"bestbits": sum("bestbits" in t["lists"] for t in TRUTH),
                     "governance": sum("governance" in t["lists"] for t in TRUTH)}


def test_topic_facet_by_hand(hand):
    found = hand.search("delegations OR alert")
    topics = {v["value"]: v["count"] for v in found["facets"]["topic"]}
    assert topics == {"itu-itrs": 2, "enhanced-cooperation": 1, "logistics": 1}
    assert _check_facets(hand, "delegations OR alert") >= 3


def test_topic_facet_on_the_sample(sample):
    if not sample.search("date:2012")["facets"]["topic"]:
        pytest.skip("no sample message has topics (tagging does not run at ingest yet)")
    for value in sample.search("wcit statement")["facets"]["topic"][:5]:
        assert total(sample, f"wcit statement topic:{value['value']}") == value["count"]


# --- sorting and pages ---------------------------------------------------------------------

@pytest.mark.parametrize("query", ["list:governance", "baku", "wcit statement"])
def test_sort_newest_and_oldest(sample, query):
    newest = [hit["date"] for hit in all_hits(sample, query, sort="newest")]
    oldest = [hit["date"] for hit in all_hits(sample, query, sort="oldest")]
    assert len(newest) == total(sample, query) > 1
    assert newest == sorted(newest, reverse=True)
    assert oldest == sorted(oldest)
    assert oldest == newest[::-1]


def test_sort_newest_across_pages(sample):
    pages = [sample.search("list:bestbits", sort="newest", page=p, per_page=50)["hits"] for p in (1, 2)]
    assert pages[0][-1]["date"] >= pages[1][0]["date"]


def test_pages(sample):
    everything = all_hits(sample, "baku")
    found = sample.search("baku", per_page=10)
    assert found["total"] == len(everything) == len({h["message_id"] for h in everything})
    assert found["pages"] == -(-found["total"] // 10) > 2
    seen: list[str] = []
    for page in range(1, found["pages"] + 1):
        hits = sample.search("baku", page=page, per_page=10)["hits"]
        assert len(hits) == (10 if page < found["pages"] else found["total"] - 10 * (page - 1))
        seen += [h["message_id"] for h in hits]
    assert len(seen) == len(set(seen))                 # page 2 differs from page 1, and so on
    assert seen == [h["message_id"] for h in everything]  # the same order as one long page
    assert sample.search("baku", page=found["pages"] + 1, per_page=10)["hits"] == []


def test_per_page_is_bounded(sample):
    assert len(sample.search("date:2012", per_page=100)["hits"]) == 100
    for bad in (101, 0, -1):
        with pytest.raises(QueryError, match="between 1 and 100"):
            sample.search("baku", per_page=bad)
    with pytest.raises(QueryError, match="numbered from 1"):
        sample.search("baku", page=0)
    with pytest.raises(QueryError, match="unknown sort"):
        sample.search("baku", sort="random")


# --- one hit per thread --------------------------------------------------------------------

@pytest.mark.parametrize("query", ["baku", "wcit statement", "list:governance"])
def test_by_thread_gives_one_hit_per_thread(sample, query):
    threads = {hit["thread_id"] for hit in all_hits(sample, query)}
    hits = sample.search(query, per_page=100, by_thread=True)["hits"]
    assert len(threads) > 1
    assert len(hits) == len({h["thread_id"] for h in hits})
    assert {h["thread_id"] for h in hits} == threads


@pytest.mark.parametrize("query", ["baku", "wcit statement", "list:governance"])
def test_by_thread_total_is_the_number_of_threads(sample, query):
    threads = {hit["thread_id"] for hit in all_hits(sample, query)}
    found = sample.search(query, per_page=5, by_thread=True)
    assert found["total"] == len(threads)
    assert found["pages"] == -(-len(threads) // 5)


@pytest.mark.parametrize("query", ["baku date:2012-11", "date:2012-11"])
def test_by_thread_with_a_date(sample, query):
    threads = {hit["thread_id"] for hit in all_hits(sample, query)}
    hits = sample.search(query, per_page=100, by_thread=True)["hits"]
    assert len(hits) == len({h["thread_id"] for h in hits}) == len(threads)


# --- snippets ------------------------------------------------------------------------------

def test_snippets_mark_the_matched_word(sample, sample_records):
    marked = 0
    for hit in sample.search("baku", per_page=50)["hits"]:
        if re.search(r"\bbak[uú]\b", sample_records[hit["message_id"]]["own_text"], re.I):
            assert re.search(r"<mark>bak[uú]</mark>", hit["snippet"], re.I), hit["snippet"]
            marked += 1
    assert marked > 5


def test_snippet_marks_the_original_accented_word(hand):
    [hit] = hand.search("cooperation renforcee")["hits"]
    assert "<mark>coopération</mark>" in hit["snippet"]
    assert "<mark>renforcée</mark>" in hit["snippet"]


def test_snippet_of_a_quoted_match_comes_from_the_quote(hand):
    [hit] = hand.search('quoted:"quokka charter"')["hits"]
    assert "<mark>quokka</mark>" in hit["snippet"] and "<mark>charter</mark>" in hit["snippet"]


@pytest.mark.parametrize("query", ["script", "alert", "forms", "pages"])
def test_snippets_are_html_escaped(hand, query):
    [hit] = hand.search(query)["hits"]
    snippet = hit["snippet"]
    assert "<script>" not in snippet and "</script>" not in snippet
    assert "&lt;" in snippet and "&amp;" in snippet
    assert re.sub(r"</?mark>", "", snippet).count("<") == 0
    if query in ("script", "alert"):
        assert f"<mark>{query}</mark>" in snippet


def test_snippet_without_a_match_in_the_text_is_escaped_plain_text(hand):
    # "warning" is only in the subject: the snippet is the start of the text, escaped.
    [hit] = hand.search("warning")["hits"]
    assert "<mark>" not in hit["snippet"] and "&lt;script&gt;" in hit["snippet"]


# --- errors --------------------------------------------------------------------------------

BAD = [
    ("title:baku", "unknown field 'title:'"),
    ('baku "visa', "quotation mark is not closed"),
    ("(visa OR hotel baku", "'(' is not closed"),
    ("visa) baku", "')' has no opening"),
    ("date:2012-13", "is not a date"),
    ("date:2012-02-30", "is not a date"),
    ("date:soon", "is not a date"),
    ("date:2012-12..2012-10", "exclude each other"),
    ("", "empty"),
    ("   ", "empty"),
    ("x" * 501, "501 characters long"),
    ("a*", "too short"),
    ("!!!", re.compile(r"no words|common words")),
]


def _says(message: str, fragment) -> bool:
    return bool(fragment.search(message)) if isinstance(fragment, re.Pattern) else fragment in message


@pytest.mark.parametrize("query, fragment", BAD)
def test_bad_queries_raise_query_error(sample, query, fragment):
    with pytest.raises(QueryError) as info:
        sample.search(query)
    assert _says(str(info.value), fragment)


def test_prefix_matching_too_many_words(hand):
    if on_postgresql(hand):
        # One GIN scan matches a prefix however many words it stands for, and the search's
        # time limit bounds it: PostgreSQL needs no cap on the words.
        assert ids(hand, "zq*") == {"words@hand.example"}
        return
    with pytest.raises(QueryError, match=r"'zq\*' matches more than 200 words"):
        hand.search("zq*")


def test_a_query_of_500_characters_runs(sample):
    query = ("baku " * 100).strip().ljust(500, "x")
    assert len(query) == 500
    sample.search(query)


@pytest.mark.parametrize("query, fragment", BAD)
def test_cli_bad_query_exits_2_without_a_traceback(sample, query, fragment):
    result = cli(sample.data, "search", query)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "bad query" in result.stderr and _says(result.stderr, fragment)
    assert result.stdout == ""


def test_cli_prefix_too_many_exits_2(hand):
    result = cli(hand.data, "search", "zq*")
    if on_postgresql(hand):   # no cap there (test_prefix_matching_too_many_words)
        assert result.exit_code == 0 and "words@hand.example" in result.stdout, result.output
        return
    assert result.exit_code == 2 and "matches more than 200 words" in result.stderr


@pytest.mark.parametrize("query", ["baku [a TO c]", "{a TO b}"])
def test_range_syntax_is_searched_as_plain_words(sample, query):
    # Whoosh's range syntax is switched off: brackets are ordinary characters, never a traceback.
    plain = query.replace("[", " ").replace("]", " ").replace("{", " ").replace("}", " ")
    assert sample.search(query)["total"] == sample.search(plain)["total"]


def test_cli_limit_above_100_is_refused(sample):
    result = cli(sample.data, "search", "baku", "--limit", "101")
    assert result.exit_code == 2 and "Traceback" not in result.output


# --- the CLI -------------------------------------------------------------------------------

def test_cli_json(sample):
    result = cli(sample.data, "search", 'baku "national delegations"', "--format", "json", "--limit", "3")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert {"total", "pages", "facets", "hits"} <= set(found)
    assert found["total"] == total(sample, 'baku "national delegations"') > 0
    assert set(found["facets"]) == {"topic", "author", "org", "list", "month", "lang"}
    assert 0 < len(found["hits"]) <= 3
    for hit in found["hits"]:
        assert HIT_KEYS <= set(hit)
        assert isinstance(hit["score"], float) and isinstance(hit["lists"], list)
        assert isinstance(hit["topics"], list) and "<mark>" in hit["snippet"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", hit["date"])


def test_cli_json_page_sort_and_threads(sample):
    args = ["search", "list:governance", "--format", "json", "--limit", "5", "--sort", "oldest"]
    one = json.loads(cli(sample.data, *args).stdout)
    two = json.loads(cli(sample.data, *args, "--page", "2").stdout)
    assert one["pages"] == -(-one["total"] // 5)
    assert not {h["message_id"] for h in one["hits"]} & {h["message_id"] for h in two["hits"]}
    assert one["hits"][-1]["date"] <= two["hits"][0]["date"]
    threaded = json.loads(cli(sample.data, "search", "baku", "--by-thread", "--format", "json",
                              "--limit", "100").stdout)
    tids = [h["thread_id"] for h in threaded["hits"]]
    assert len(tids) == len(set(tids)) > 1


def test_cli_json_topics(hand):
    found = json.loads(cli(hand.data, "search", "topic:itu-itrs", "--format", "json").stdout)
    assert {h["message_id"]: h["topics"] for h in found["hits"]} == {
        "en@hand.example": ["itu-itrs"], "fr@hand.example": ["enhanced-cooperation", "itu-itrs"]}
    assert {v["value"]: v["count"] for v in found["facets"]["topic"]} == \
        {"itu-itrs": 2, "enhanced-cooperation": 1}


def test_cli_text(sample):
    # Twenty hits: the first few may match 'baku' only in their subject (short replies rank
    # high), and a snippet marks words of the text.
    result = cli(sample.data, "search", "baku", "--limit", "20")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{total(sample, 'baku')} messages match; page 1 of ")
    assert "[Baku]" in result.stdout or "[baku]" in result.stdout
    assert "<mark>" not in result.stdout
    assert "\nlist: bestbits" in result.stdout


# --- keeping the index up to date ------------------------------------------------------------

def test_ingest_makes_words_searchable_before_it_returns(tmp_path):
    a = write_mbox(tmp_path / "a.mbox", [mail("a1@inc.example", "The wombat census starts now.\n"),
                                         mail("a2@inc.example", "Wombat numbers are up.\n", hour=11)])
    b = write_mbox(tmp_path / "b.mbox", [mail("b1@inc.example", "A numbat was seen at dawn.\n")])
    data = tmp_path / "data"
    result = cli(data, "ingest", a, "--list", "alpha", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["indexed"] == 2
    assert json.loads(cli(data, "search", "wombat", "--format", "json").stdout)["total"] == 2
    assert json.loads(cli(data, "search", "numbat", "--format", "json").stdout)["total"] == 0
    result = cli(data, "ingest", b, "--list", "alpha", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["indexed"] == 1
    found = json.loads(cli(data, "search", "numbat", "--format", "json").stdout)
    assert [h["message_id"] for h in found["hits"]] == ["b1@inc.example"]
    # Ingesting again changes nothing, and nothing is indexed twice.
    assert json.loads(cli(data, "ingest", b, "--list", "alpha", "--format", "json").stdout)["indexed"] == 0
    assert json.loads(cli(data, "search", "wombat OR numbat", "--format", "json").stdout)["total"] == 3


def test_a_cross_post_is_reindexed_with_its_new_list(tmp_path):
    archive = open_archive(tmp_path / "data")
    message = mail("x1@inc.example", "The platypus proposal needs more signatures.\n")
    ingest(archive.store, [write_mbox(tmp_path / "a.mbox", [message])], "alpha", workers=1, archive=archive)
    assert ids(archive, "list:beta") == set()
    report = ingest(archive.store, [write_mbox(tmp_path / "b.mbox", [message])], "beta", workers=1,
                    archive=archive)
    assert report.indexed == 1
    assert ids(archive, "list:beta platypus") == {"x1@inc.example"}
    [hit] = all_hits(archive, "platypus")           # replaced, not added twice
    assert hit["lists"] == ["alpha", "beta"]
    assert {v["value"]: v["count"] for v in archive.search("platypus")["facets"]["list"]} == \
        {"alpha": 1, "beta": 1}
    archive.store.close()


def test_a_rethreaded_message_is_reindexed_with_its_new_thread(tmp_path):
    archive = open_archive(tmp_path / "data")
    # b answers a, which arrives later and itself answers z (never seen): b's thread root moves
    # from the stand-in for a to the stand-in for z.
    b = mail("b@thr.example", "Echidna reply.\n", subject="Re: Echidna", refs=("a@thr.example",), hour=12)
    a = mail("a@thr.example", "Echidna question.\n", subject="Re: Echidna", refs=("z@thr.example",), hour=11)
    ingest(archive.store, [write_mbox(tmp_path / "b.mbox", [b])], "alpha", workers=1, archive=archive)
    before = archive.index.search("echidna").hits[0].thread_id
    report = ingest(archive.store, [write_mbox(tmp_path / "a.mbox", [a])], "alpha", workers=1,
                    archive=archive)
    assert report.indexed == 2
    stored = {r["message_id"]: r["thread_id"] for r in archive.messages()}
    assert stored["a@thr.example"] == stored["b@thr.example"] != before
    # The index holds the new thread ids (what by_thread collapses on).
    indexed = {h.message_id: h.thread_id for h in archive.index.search("echidna").hits}
    assert indexed == stored
    assert len(archive.search("echidna", by_thread=True)["hits"]) == 1
    archive.store.close()


def test_not_after_a_cross_post_by_hand(tmp_path):
    archive = open_archive(tmp_path / "data")
    # Enough messages that Whoosh keeps the first segment (with its deletion) on the next commit.
    messages = [mail(f"n{i}@not.example", f"Filler note number {i} about the agenda."
                     + (" Zebra crossing." if i == 3 else "") + "\n", hour=i % 24) for i in range(40)]
    ingest(archive.store, [write_mbox(tmp_path / "a.mbox", messages)], "alpha", workers=1, archive=archive)
    # n4, the document right after the only match, is cross-posted: re-indexed, its old copy deleted.
    ingest(archive.store, [write_mbox(tmp_path / "b.mbox", [messages[4]])], "beta", workers=1,
           archive=archive)
    assert ids(archive, "zebra") == {"n3@not.example"}
    found = [h["message_id"] for h in all_hits(archive, "NOT zebra")]
    assert sorted(found) == sorted(f"n{i}@not.example" for i in range(40) if i != 3)
    archive.store.close()


def test_rebuild_gives_the_same_results_as_the_incremental_index(tmp_path, sample):
    # Ingest in another order (governance first) and in small batches, then rebuild with the CLI.
    archive = open_archive(tmp_path / "data")
    for name in ("governance", "bestbits"):
        ingest(archive.store, [str(SAMPLE / name)], name, workers=1, batch_size=100, archive=archive)
    queries = ["baku", '"national delegations"', "wcit AND NOT dubai", "(visa OR hotel) baku",
               "from:joao", 'org:"Open Voice"', "list:governance", "lang:fr", "date:2012-11",
               'quoted:"enhanced cooperation"', "polic*", "declaração"]

    def results(arch: Archive) -> dict:
        out = {}
        for q in queries:
            found = arch.search(q, per_page=100, sort="newest")
            out[q] = (found["total"], [h["message_id"] for h in all_hits(arch, q, sort="newest")],
                      found["facets"])
        return out

    incremental = results(archive)
    # The same store contents as the shared sample, ingested the other way round.
    assert {q: v[0] for q, v in incremental.items()} == {q: total(sample, q) for q in queries}
    archive.store.close()
    result = cli(tmp_path / "data", "reindex")
    assert result.exit_code == 0 and result.stdout.strip() == f"indexed {len(TRUTH)} messages"
    rebuilt = open_archive(tmp_path / "data")
    assert rebuilt.index.doc_count() == len(TRUTH)
    assert rebuilt.store.unindexed() == []
    assert results(rebuilt) == incremental
    # With no deleted documents left, NOT is the complement.
    assert total(rebuilt, "NOT baku") + total(rebuilt, "baku") == len(TRUTH)
    rebuilt.store.close()


def test_rebuild_index_in_the_library(tmp_path):
    archive = open_archive(tmp_path / "data")
    ingest(archive.store, [write_mbox(tmp_path / "a.mbox", list(HAND.values()))], "alpha", workers=1,
           archive=archive)
    before = {q: ids(archive, q) for q in ("quokka", "quoted:quokka", "date:2012-11", "from:joao")}
    assert rebuild_index(archive) == len(HAND)
    assert {q: ids(archive, q) for q in before} == before
    assert not (tmp_path / "data" / "whoosh.new").exists()
    assert not (tmp_path / "data" / "whoosh.old").exists()
    archive.store.close()


# --- searching while an ingest writes --------------------------------------------------------

def test_an_open_searcher_survives_an_ingest_and_a_rebuild(tmp_path):
    from whoosh import query as whoosh_query

    from archiver.index.storage import open_dir

    archive = open_archive(tmp_path / "data")
    first = [mail(f"k{i}@conc.example", f"Kangaroo report {i}.\n", hour=i) for i in range(5)]
    ingest(archive.store, [write_mbox(tmp_path / "a.mbox", first)], "alpha", workers=1, archive=archive)
    old = open_dir(tmp_path / "data" / "whoosh").searcher()
    try:
        every = whoosh_query.Every()
        assert len(old.search(every, limit=None)) == 5
        ingest(archive.store, [write_mbox(tmp_path / "b.mbox", [mail("w@conc.example", "A wallaby.\n")])],
               "alpha", workers=1, archive=archive)
        assert len(old.search(every, limit=None)) == 5          # the old view, still readable
        assert ids(archive, "wallaby") == {"w@conc.example"}    # a new searcher sees the new one
        rebuild_index(archive)
        kept = old.search(every, limit=None)                    # readers keep the old files
        assert sorted(hit["msg_id"] for hit in kept) == sorted(f"k{i}@conc.example" for i in range(5))
        assert ids(archive, "kangaroo OR wallaby") == {f"k{i}@conc.example" for i in range(5)} | \
            {"w@conc.example"}
    finally:
        old.close()
    archive.store.close()


def test_searching_in_another_thread_between_ingests(tmp_path):
    data = tmp_path / "data"
    writer = open_archive(data)
    reader = open_archive(data)   # its own store connection, as the web app would have
    asked, answered, results, errors = threading.Event(), threading.Event(), [], []
    stop = False

    def searcher():
        while True:
            asked.wait()
            asked.clear()
            if stop:
                return
            try:
                results.append(sorted(ids(reader, "gecko")))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            answered.set()

    def search_in_thread() -> list[str]:
        answered.clear()
        asked.set()
        assert answered.wait(timeout=60)
        assert errors == []
        return results[-1]

    thread = threading.Thread(target=searcher, daemon=True)
    thread.start()
    try:
        assert search_in_thread() == []            # no index yet: nothing, no error
        for n in range(3):
            batch = [mail(f"g{n}.{i}@conc.example", f"Gecko sighting {n} {i}.\n", hour=i) for i in range(30)]
            ingest(writer.store, [write_mbox(tmp_path / f"g{n}.mbox", batch)], "alpha", workers=1,
                   archive=writer)
            found = search_in_thread()
            assert len(found) == 30 * (n + 1)
            assert {f"g{n}.{i}@conc.example" for i in range(30)} <= set(found)
    finally:
        stop = True
        asked.set()
        thread.join(timeout=60)
    writer.store.close()
    reader.store.close()


def test_a_search_that_opens_the_index_as_an_ingest_commits(tmp_path, monkeypatch):
    # The interleaving, made deterministic: the commit happens just after the reader has chosen
    # the index generation to read. Seen without the hook about once in 20 runs of a loop that
    # searches in a thread during three ingests.
    from whoosh.index import TOC

    data = tmp_path / "data"
    writer = open_archive(data)
    first = [mail(f"h{i}@race.example", f"Heron count {i}.\n", hour=i) for i in range(5)]
    ingest(writer.store, [write_mbox(tmp_path / "a.mbox", first)], "alpha", workers=1, archive=writer)
    second = write_mbox(tmp_path / "b.mbox", [mail("h9@race.example", "Heron count 9.\n")])
    reader = open_archive(data)
    latest = TOC._latest_generation.__func__
    armed = [True]

    def commit_right_after(cls, storage, indexname):
        generation = latest(cls, storage, indexname)
        if armed:
            armed.clear()
            ingest(writer.store, [second], "alpha", workers=1, archive=writer)
        return generation

    monkeypatch.setattr(TOC, "_latest_generation", classmethod(commit_right_after))
    try:
        assert reader.search("heron")["total"] in (5, 6)
    finally:
        monkeypatch.undo()
        assert not armed                      # the commit did happen in between
        assert reader.search("heron")["total"] == 6
        writer.store.close()
        reader.store.close()


@pytest.mark.parametrize("query", ['list:"bestbits governance"', 'topic:"logistics x"', 'lang:"en fr"'])
def test_phrases_in_keyword_fields_are_no_traceback(sample, query):
    result = cli(sample.data, "search", query)
    assert result.exit_code in (0, 2) and "Traceback" not in result.output


# --- the index's own matching and format ------------------------------------------------------

def test_varints_round_trip():
    import numpy

    from archiver.index import _np_varints, _unvarints, _varints
    for numbers in ([], [0], [5, 127, 0], [128], [0, 300, 127, 16383, 16384, 2 ** 35, 1]):
        packed = _varints(numbers)
        assert _unvarints(packed) == numbers
        assert _np_varints(numpy.frombuffer(packed, numpy.uint8)).tolist() == numbers


def test_positions_are_read_back_as_written():
    from archiver.index import SCHEMA
    fmt = SCHEMA["own"].format
    found = {w: (freq, fmt.decode_positions(v), fmt.decode_frequency(v))
             for w, freq, _, v in fmt.word_values("a b|c a " + "x " * 300 + "a", None)}
    assert found["a"] == (3, [0, 2, 303], 3)
    assert found["b"] == found["c"] == (1, [1], 1)   # two terms at one position
    assert found["x"][0] == 300 and found["x"][1] == list(range(3, 303))


@pytest.mark.parametrize("query", ['"national delegations"', '"enhanced cooperation"', "baku",
                                   'quoted:"enhanced cooperation"', '"civil society statement"',
                                   "subject:wcit", "from:joao", "topic:itu-itrs", "lang:fr",
                                   "polic*", "wcit AND NOT dubai", "(visa OR hotel) baku"])
def test_matching_in_numpy_equals_whooshs_own_matching(sample, query):
    # The index's packed postings read by Whoosh's own matchers, and matched and scored by
    # Whoosh, give the same documents and scores as the archive's matching in numpy.
    if on_postgresql(sample):
        pytest.skip("Whoosh's own matchers: the PostgreSQL search has none")
    from archiver.index import _match, _parse
    view = sample.index._view()
    q = _parse(query, view.reader)
    docs, scores = _match(q, view)
    theirs = {docnum: score for score, docnum in view.searcher.search(q, limit=None).top_n}
    assert docs.size and set(docs.tolist()) == set(theirs)
    if "NOT" not in query:   # Whoosh adds a constant for the NOT part
        assert scores.tolist() == pytest.approx([theirs[d] for d in docs.tolist()], rel=1e-5)


def test_a_phrase_is_exact_across_segments_and_replaced_documents(tmp_path, monkeypatch):
    import archiver.index.build
    monkeypatch.setattr(archiver.index.build, "SEGMENT_DOCS", 3)
    archive = open_archive(tmp_path / "data")
    bodies = ["the quokka charter is here", "charter quokka the other way", "a quokka with a big charter",
              "quokka charter quokka charter twice", "quokka\n\ncharter across lines",
              "nothing to see", "quokkas charters in plural"]
    first = [mail(f"p{i}@seg.example", body + ".\n", hour=i) for i, body in enumerate(bodies)]
    ingest(archive.store, [write_mbox(tmp_path / "a.mbox", first)], "alpha", workers=1, archive=archive)
    assert len(archive.index._view().leaves) == 3   # written as a rebuild writes: 3 + 3 + 1
    expected = {"p0@seg.example", "p3@seg.example", "p4@seg.example", "p6@seg.example"}
    assert ids(archive, '"quokka charter"') == expected
    assert ids(archive, '"charter quokka"') == {"p1@seg.example", "p3@seg.example"}
    assert ids(archive, "quokka charter") == expected | {"p1@seg.example", "p2@seg.example"}
    # Two messages re-indexed with new words: found once each, by their new words only.
    m = s.messages.c
    with archive.store.engine.begin() as conn:
        for mid, text in (("p0@seg.example", "the charter alone now."),
                          ("p5@seg.example", "now a quokka charter too.")):
            pk, sha = conn.execute(select(m.id, m.raw_sha256).where(m.message_id == mid)).one()
            conn.execute(s.texts.update().where(s.texts.c.message == pk)
                         .values(data=pack_texts(text, "", "", "", [], archive.store.raw_bytes(sha))))
            conn.execute(s.messages.update().where(m.id == pk).values(indexed=False))
    assert update_index(archive) == 2
    found = [h["message_id"] for h in all_hits(archive, '"quokka charter"')]
    assert sorted(found) == sorted(expected - {"p0@seg.example"} | {"p5@seg.example"})
    assert total(archive, "nothing") == 0 and total(archive, "alone") == 1
    assert total(archive, "NOT alone") == len(bodies) - 1   # old copies are not counted
    archive.store.close()


def test_searchers_of_one_index_share_their_tables_until_it_changes(tmp_path):
    # The web gives each server thread an archive and a searcher of its own; what matching
    # reads whole (columns, dates, live documents) is one copy per process, not one a thread.
    archive = open_archive(tmp_path / "data")
    first = [mail(f"n{i}@share.example", f"numbat number {i}.\n", hour=i) for i in range(3)]
    ingest(archive.store, [write_mbox(tmp_path / "a.mbox", first)], "alpha", workers=1, archive=archive)
    second = Archive(archive.store, index_dir=tmp_path / "data" / "whoosh")
    views = [archive.index._view(), second.index._view()]
    assert views[0] is not views[1] and views[0].searcher is not views[1].searcher
    assert views[0].tables is views[1].tables
    assert total(archive, "numbat") == total(second, "numbat") == 3
    # A redaction only deletes (no new segment): both threads see new tables, shared again.
    assert archive.store.redact("n1@share.example", "asked by its author")
    assert update_index(archive) == 1
    fresh = [archive.index._view(), second.index._view()]
    assert fresh[0].tables is fresh[1].tables is not views[0].tables
    assert len(fresh[0].leaves) == len(views[0].leaves) and not fresh[0].all_live
    assert total(archive, "numbat") == total(second, "numbat") == 2
    archive.store.close()


def test_two_copies_of_an_index_never_share_their_tables(tmp_path):
    # Copies have segments of the same ids; each copy's own deletions must count in it.
    archive = open_archive(tmp_path / "data")
    first = [mail(f"c{i}@copy.example", f"quoll number {i}.\n", hour=i) for i in range(3)]
    ingest(archive.store, [write_mbox(tmp_path / "a.mbox", first)], "alpha", workers=1, archive=archive)
    archive.store.close()
    copies = []
    for name, gone in (("one", "c0@copy.example"), ("two", "c2@copy.example")):
        shutil.copytree(tmp_path / "data", tmp_path / name)
        copy = open_archive(tmp_path / name)
        assert copy.store.redact(gone, "asked by its author") and update_index(copy) == 1
        copies.append(copy)
    views = [copy.index._view() for copy in copies]   # both held at once
    assert views[0].tables is not views[1].tables
    assert ids(copies[0], "quoll") == {"c1@copy.example", "c2@copy.example"}
    assert ids(copies[1], "quoll") == {"c0@copy.example", "c1@copy.example"}
    assert total(copies[0], "quoll") == total(copies[1], "quoll") == 2
    for copy in copies:
        copy.store.close()


def test_an_update_commits_a_segment_per_segment_docs_and_replaces_across_them(tmp_path, monkeypatch):
    import archiver.index.build
    monkeypatch.setattr(archiver.index.build, "SEGMENT_DOCS", 3)
    archive = open_archive(tmp_path / "data")
    first = [mail(f"u{i}@seg.example", f"wallaby number {i}.\n", hour=i) for i in range(2)]
    ingest(archive.store, [write_mbox(tmp_path / "a.mbox", first)], "alpha", workers=1, archive=archive)
    before = len(archive.index._view().leaves)
    # Eight more, and the first two again with other words: ten documents, in four commits.
    more = [mail(f"u{i}@seg.example", f"wallaby number {i}.\n", hour=i) for i in range(2, 10)]
    ingest(archive.store, [write_mbox(tmp_path / "b.mbox", more)], "alpha", workers=1, archive=archive)
    assert len(archive.index._view().leaves) == before + 3   # 3 + 3 + 2, none merged yet
    m = s.messages.c
    with archive.store.engine.begin() as conn:
        conn.execute(s.messages.update().where(m.message_id.in_(["u0@seg.example", "u1@seg.example"]))
                     .values(indexed=False))
    assert update_index(archive) == 2
    assert total(archive, "wallaby") == 10
    assert ids(archive, "number") == {f"u{i}@seg.example" for i in range(10)}
    archive.store.close()


def _bound_row(archive: Archive) -> int | None:
    """The row of the index's bound, checked against its key (the row's msg_hash)."""
    found = archive.index.bound()
    if not isinstance(found, tuple):
        return found
    row, key = found
    assert key == (archive.store.row_hash(row) or "")
    return row


def test_messages_above_the_index_bound_are_added_without_a_look_up(tmp_path, monkeypatch):
    """Replacing a document asks every segment for its id; a message from a row above the
    highest row the index was ever sent cannot be there, and is added without asking."""
    from archiver.index.searchindex import SearchIndex
    archive = open_archive(tmp_path / "data")
    first = [mail(f"b{i}@bound.example", f"bandicoot number {i}.\n", hour=i) for i in range(3)]
    ingest(archive.store, [write_mbox(tmp_path / "a.mbox", first)], "alpha", workers=1, archive=archive)
    # Built into an empty index (fresh directory, swapped in) and still bounded.
    assert _bound_row(archive) == archive.store.last_row() == 3
    sent: list[set] = []
    update = SearchIndex.update

    def watched(self, records, new=frozenset()):
        sent.append(new)   # filled as the records are read
        return update(self, records, new=new)

    monkeypatch.setattr(SearchIndex, "update", watched)
    more = [mail(f"b{i}@bound.example", f"bandicoot number {i}.\n", hour=i) for i in range(3, 5)]
    # Two new messages, and an old one cross-posted (its row is below the bound: replaced).
    report = ingest(archive.store, [write_mbox(tmp_path / "b.mbox", more + [first[0]])], "beta",
                    workers=1, archive=archive)
    assert report.indexed == 3
    assert sent == [{"b3@bound.example", "b4@bound.example"}]
    assert _bound_row(archive) == archive.store.last_row() == 5
    assert total(archive, "bandicoot") == 5 and ids(archive, "list:beta") == {
        "b0@bound.example", "b3@bound.example", "b4@bound.example"}
    # Without a bound (a lost or unreadable file), everything is replaced: none is taken as new.
    (tmp_path / "data" / "whoosh" / SearchIndex.ROWS_FILE).write_text("garbled", encoding="ascii")
    assert archive.index.bound() is None
    last = [mail("b5@bound.example", "bandicoot number 5.\n")]
    ingest(archive.store, [write_mbox(tmp_path / "c.mbox", last + [first[1]])], "beta",
           workers=1, archive=archive)
    assert sent[-1] == set() and _bound_row(archive) == 6
    assert total(archive, "bandicoot") == 6 and len(all_hits(archive, "bandicoot")) == 6
    archive.store.close()


def test_an_index_beside_a_store_restored_from_an_older_backup_adds_nothing_twice(tmp_path):
    """Restored, the store gives rows above the index's bound to messages the index holds
    from before: the bound's row holds another message, so it is distrusted (everything is
    replaced) until a repair notes a new one."""
    from archiver.check import check, repair
    from archiver.index.searchindex import UNTRUSTED
    data = tmp_path / "data"
    archive = open_archive(data)
    older = [mail(f"o{i}@restore.example", f"wombat number {i}.\n", hour=i) for i in range(3)]
    ingest(archive.store, [write_mbox(tmp_path / "a.mbox", older)], "alpha", workers=1, archive=archive)
    archive.store.close()
    shutil.copy(data / "archive.sqlite3", tmp_path / "backup.sqlite3")   # rows 1-3
    archive = open_archive(data)
    lost = [mail(f"l{i}@restore.example", f"wombat number {i}.\n", hour=i) for i in range(3)]
    ingest(archive.store, [write_mbox(tmp_path / "b.mbox", lost)], "alpha", workers=1, archive=archive)
    assert _bound_row(archive) == 6
    archive.store.close()
    shutil.copy(tmp_path / "backup.sqlite3", data / "archive.sqlite3")      # restored: rows 1-3
    for extra in ("-wal", "-shm"):
        (data / f"archive.sqlite3{extra}").unlink(missing_ok=True)
    archive = open_archive(data)
    # Another list's four messages first (rows 4-7), then the lost ones again (rows 8-10,
    # above the old bound of 6): the index already holds those three.
    others = [mail(f"n{i}@restore.example", f"numbat number {i}.\n", hour=i) for i in range(4)]
    ingest(archive.store, [write_mbox(tmp_path / "c.mbox", others)], "beta", workers=1, archive=archive)
    assert archive.index.bound() == UNTRUSTED
    ingest(archive.store, [write_mbox(tmp_path / "d.mbox", lost)], "alpha", workers=1, archive=archive)
    assert archive.index.bound() == UNTRUSTED
    assert len(all_hits(archive, "wombat")) == total(archive, "wombat") == 6   # none twice
    repair(archive, check(archive))
    assert _bound_row(archive) == archive.store.last_row() == 10 and check(archive).agree
    archive.store.close()


def test_a_rebuild_and_a_repair_leave_the_index_bounded(tmp_path, monkeypatch, sample):
    import archiver.pipeline
    from archiver.check import check, repair
    from archiver.index.searchindex import SearchIndex
    monkeypatch.setattr(archiver.pipeline, "PARALLEL_INDEX_MIN", 0)
    archive = open_archive(tmp_path / "data")
    ingest(archive.store, [str(SAMPLE / "bestbits")], "bestbits", workers=2, archive=archive)
    assert len(archive.index._view().leaves) == 2                   # built in parallel
    assert _bound_row(archive) == archive.store.last_row() > 0
    (tmp_path / "data" / "whoosh" / SearchIndex.ROWS_FILE).unlink()
    rebuild_index(archive, workers=1)                               # in one process
    assert _bound_row(archive) == archive.store.last_row()
    assert rebuild_index(archive, workers=2) == archive.index.doc_count()
    assert _bound_row(archive) == archive.store.last_row()
    # Then messages above the bound are added, not looked for: none is indexed twice.
    more = [mail(f"r{i}@rebuilt.example", f"quokka number {i}.\n", hour=i) for i in range(3)]
    ingest(archive.store, [write_mbox(tmp_path / "r.mbox", more)], "bestbits", workers=1, archive=archive)
    assert len(all_hits(archive, "quokka")) == total(archive, "quokka") == 3
    assert _bound_row(archive) == archive.store.last_row()
    assert check(archive).agree
    # Stored without the index, then repaired: the repair's rows are under the bound it notes.
    ingest(archive.store, [str(SAMPLE / "governance")], "governance", workers=1)
    assert _bound_row(archive) < archive.store.last_row()
    repair(archive, check(archive))
    assert _bound_row(archive) == archive.store.last_row()
    assert check(archive).agree
    archive.store.close()


def test_a_reader_maps_the_index_files_instead_of_copying_them(tmp_path):
    """Whoosh's own storage copies every file of a segment into memory when a reader opens it
    (1 GB per searching process at 1,000,000 messages); the archiver's maps them."""
    import tracemalloc

    from whoosh import query as whoosh_query

    from archiver.index.storage import open_dir
    archive = open_archive(tmp_path / "data")
    for name in ("bestbits", "governance"):
        ingest(archive.store, [str(SAMPLE / name)], name, workers=1, archive=archive)
    archive.store.close()
    where = tmp_path / "data" / "whoosh"
    on_disk = sum(f.stat().st_size for f in where.iterdir())
    tracemalloc.start()
    try:
        searcher = open_dir(where).searcher()
        found = len(searcher.search(whoosh_query.Term("lists", "governance"), limit=None))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    searcher.close()
    assert found == sum(1 for t in TRUTH if "governance" in t["lists"]) and on_disk > 500_000
    assert peak < on_disk / 4, (peak, on_disk)


# Queries of every kind, to compare indexes written in different ways.
SEGMENT_QUERIES = [("baku", {}), ('"national delegations"', {}), ("wcit AND NOT dubai", {}),
                   ("list:governance", {"sort": "newest"}), ("statement", {"by_thread": True}),
                   ('quoted:"enhanced cooperation"', {"sort": "oldest"}), ("date:2012-11", {})]


def segment_results(arch: Archive) -> list:
    """Total, facets and the first 50 hits with their scores, for each of SEGMENT_QUERIES."""
    return [(found["total"], found["facets"], [(h["message_id"], h["score"]) for h in found["hits"]])
            for found in (arch.search(q, per_page=50, **o) for q, o in SEGMENT_QUERIES)]


def test_a_many_segment_index_answers_as_a_one_segment_index(tmp_path, monkeypatch, sample):
    import archiver.index.build
    archive = open_archive(tmp_path / "data")
    for name in ("bestbits", "governance"):
        ingest(archive.store, [str(SAMPLE / name)], name, workers=1, archive=archive)
    rebuild_index(archive)
    assert len(archive.index._view().leaves) == 1
    one = segment_results(archive)
    monkeypatch.setattr(archiver.index.build, "SEGMENT_DOCS", 97)
    rebuild_index(archive)
    assert len(archive.index._view().leaves) == -(-len(TRUTH) // 97)
    assert segment_results(archive) == one
    archive.store.close()


@pytest.mark.parametrize("query", ["wcit statement", "baku", "list:governance"])
def test_by_thread_facets_count_threads(sample, query):
    # With one hit per thread the total counts threads, and so do the facets: each count is
    # the total the search gets with that value as a filter.
    found = sample.search(query, by_thread=True)
    checked = 0
    for name in ("list", "lang", "month", "author", "topic"):
        for item in found["facets"][name][:3]:
            narrowed = f"{query} {FACET_FILTER[name].format(item['value'])}"
            assert total(sample, narrowed, by_thread=True) == item["count"], (name, item)
            checked += 1
    assert checked > 8
    assert sum(v["count"] for v in found["facets"]["list"]) >= found["total"]


@pytest.mark.parametrize("sort", ["newest", "oldest"])
def test_by_thread_sorted_by_date_keeps_each_threads_newest_or_oldest_match(sample, sort):
    every = all_hits(sample, "wcit", sort=sort)
    hits = all_hits(sample, "wcit", sort=sort, by_thread=True)
    firsts: dict[str, str] = {}
    for hit in every:
        firsts.setdefault(hit["thread_id"], hit["date"])
    assert [h["date"] for h in hits] == sorted(firsts.values(), reverse=sort == "newest")
    assert hits[0]["date"] == every[0]["date"]


def test_require_and_andmaybe(sample):
    assert total(sample, "wcit REQUIRE statement") == total(sample, "wcit statement") > 0
    assert total(sample, "wcit ANDMAYBE statement") == total(sample, "wcit")


def test_an_index_of_another_format_asks_for_a_reindex(tmp_path):
    from whoosh import index as whoosh_index
    from whoosh.fields import ID, TEXT, Schema

    from archiver.errors import ArchiverError
    from archiver.index import SCHEMA
    archive = open_archive(tmp_path / "data")
    ingest(archive.store, [write_mbox(tmp_path / "a.mbox", list(HAND.values()))], "alpha", workers=1)
    for schema in (Schema(msg_id=ID(stored=True, unique=True), own=TEXT()), SCHEMA):
        # An older schema, or today's written with Whoosh's own codec (as before).
        shutil.rmtree(tmp_path / "data" / "whoosh", ignore_errors=True)
        (tmp_path / "data" / "whoosh").mkdir()
        writer = whoosh_index.create_in(str(tmp_path / "data" / "whoosh"), schema).writer()
        writer.add_document(msg_id="orig@hand.example", own="quokka")
        writer.commit()
        archive.index.close()
        with pytest.raises(ArchiverError, match="archiver reindex"):
            archive.search("quokka")
        with archive.store.engine.begin() as conn:
            conn.execute(s.messages.update().values(indexed=False))
        with pytest.raises(ArchiverError, match="archiver reindex"):
            update_index(archive)   # as an ingest would, after storing
        assert archive.index.doc_count() == 0
        result = cli(tmp_path / "data", "search", "quokka")
        assert result.exit_code != 0 and "archiver reindex" in result.output
        assert "Traceback" not in result.output
        assert rebuild_index(archive) == len(HAND)
        assert ids(archive, "quokka") == {"orig@hand.example"}
    archive.store.close()


def test_pickled_index_classes_keep_one_importable_name():
    """Whoosh pickles the schema and codec into the index by module and class name: those names
    must not move with the package's files, or an index on disk stops opening."""
    import pickle

    import archiver.index as package
    from archiver.index import codec, schema

    for cls in (schema._Positions, schema._Prepared, schema._Text, schema._Codes, codec._Codec,
                codec._PostingsWriter, codec._Matcher, codec._FieldWriter):
        assert cls.__module__ == "archiver.index" and getattr(package, cls.__name__) is cls
    assert pickle.loads(pickle.dumps(package.SCHEMA)).names() == package.SCHEMA.names()


def test_an_index_built_in_parallel_answers_as_one_built_in_one_process(tmp_path, monkeypatch, sample):
    """A first build splits the rows among forked processes, each writing its own segments;
    the index they make together finds, counts and scores as the one-process index does."""
    import archiver.pipeline
    archive = open_archive(tmp_path / "data")
    for name in ("bestbits", "governance"):
        ingest(archive.store, [str(SAMPLE / name)], name, workers=1, archive=archive)
    rebuild_index(archive, workers=1)
    one = segment_results(archive)
    monkeypatch.setattr(archiver.pipeline, "PARALLEL_INDEX_MIN", 0)
    assert rebuild_index(archive, workers=3) == len(TRUTH)
    assert len(archive.index._view().leaves) == 3
    assert segment_results(archive) == one
    # A first ingest into an empty index builds it the same way, and marks every row indexed.
    fresh = open_archive(tmp_path / "fresh")
    report = ingest(fresh.store, [str(SAMPLE / "bestbits")], "bestbits", workers=2, archive=fresh)
    assert report.indexed == report.stored and len(fresh.index._view().leaves) == 2
    assert fresh.store.unindexed() == []
    ingest(fresh.store, [str(SAMPLE / "governance")], "governance", workers=2, archive=fresh)
    # Then updated in place (cross-posts re-indexed, old copies deleted): the same matches and
    # counts; scores may differ a little, as Whoosh counts deleted copies in its statistics.
    # (Where matches outnumber the page, equal scores fall in document order: totals and facets.)
    def matched(found: list) -> list:
        return [(total, facets, {mid for mid, _ in hits} if total <= 50 else None)
                for total, facets, hits in found]
    assert matched(segment_results(fresh)) == matched(one)
    archive.store.close()
    fresh.store.close()


def test_the_quick_add_document_writes_what_whooshs_own_writes(tmp_path, sample_records):
    """The writer adds the analysed text fields' words straight into the pool; every posting
    (id, weight, positions), field length, stored value and column of the segment it writes
    is what Whoosh's own add_document writes from the same documents."""
    from archiver.index.analysis import document
    from archiver.index.codec import _writer
    from archiver.index.storage import create_in
    records = sorted(sample_records.values(), key=lambda r: r["message_id"])
    assert records

    def written(plain: bool) -> dict:
        where = tmp_path / ("plain" if plain else "quick")
        where.mkdir()
        ix = create_in(where)
        writer = _writer(ix, plain=plain)
        for record in records:
            writer.add_document(**document(record))
        writer.commit(merge=False)
        out: dict = {}
        with ix.reader() as reader:
            out["docs"] = reader.doc_count_all()
            for name, text in reader.all_terms():
                matcher = reader.postings(name, text)
                found = []
                while matcher.is_active():
                    found.append((matcher.id(), matcher.weight(), matcher.value()))
                    matcher.next()
                out[name, text] = found
            names = reader.schema.names()
            out["lengths"] = {name: [reader.doc_field_length(n, name) for n in range(out["docs"])]
                              for name in names}
            out["stored"] = [reader.stored_fields(n) for n in range(out["docs"])]
            out["columns"] = {name: list(reader.column_reader(name))
                              for name in names if reader.has_column(name)}
        return out

    quick, plain = written(False), written(True)
    assert quick.keys() == plain.keys() and len(quick) > 1000
    assert quick == plain
    # The subject's boost is in its weights, and the text fields have lengths to score by.
    subject = {weight for key, posts in quick.items() if isinstance(key, tuple) and key[0] == "subject"
               for _, weight, _ in posts}
    assert min(subject) == 2.0
    assert all(quick["lengths"]["own"]) and any(quick["lengths"]["quoted"])


def test_updates_merge_their_small_segments_and_never_a_big_one(tmp_path, monkeypatch):
    import archiver.index.build
    monkeypatch.setattr(archiver.index.build, "SEGMENT_DOCS", 4)
    monkeypatch.setattr(archiver.index.build, "SMALL_SEGMENT", 3)
    monkeypatch.setattr(archiver.index.build, "SMALL_SEGMENTS", 3)
    archive = open_archive(tmp_path / "data")

    def segments() -> dict[str, int]:
        return {reader.segment().segment_id(): reader.doc_count_all()
                for reader, _ in archive.index._view().leaves}

    first = [mail(f"big{i}@seg.example", f"quokka number {i}.\n", hour=i) for i in range(12)]
    ingest(archive.store, [write_mbox(tmp_path / "a.mbox", first)], "alpha", workers=1, archive=archive)
    big = segments()
    assert sorted(big.values()) == [4, 4, 4]
    for n in range(4):
        ingest(archive.store, [write_mbox(tmp_path / f"u{n}.mbox", [mail(f"new{n}@seg.example", "quokka.\n", hour=20)])],
               "alpha", workers=1, archive=archive)
        found = segments()
        assert {sid: count for sid, count in found.items() if sid in big} == big   # never merged
        # One small segment per update; an update finding three writes them into its own.
        assert sorted(count for sid, count in found.items() if sid not in big) == ([1] * (n + 1) if n < 3 else [4])
    assert total(archive, "quokka") == 16
    archive.store.close()


def test_the_densest_stretch_is_found_in_one_pass():
    """_densest gives the span the plain count over every span gives (it was quadratic)."""
    import random

    from archiver.index.snippets import _densest
    rng = random.Random(7)
    for _ in range(200):
        starts = sorted(rng.sample(range(2000), rng.randint(1, 60)))
        spans = [(s, s + 3) for s in starts]
        width = rng.choice([5, 50, 220])
        plain = max(range(len(spans)), key=lambda i: sum(1 for s in spans[i:] if s[0] < spans[i][0] + width))
        assert _densest(spans, width) == plain
