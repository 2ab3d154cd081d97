"""Every browsing, search and API route of the web app, and their error paths (Flask test client)."""

from __future__ import annotations

import gzip
import re
import sys
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from archiver import schema as s
from archiver.browse import _walk_pays
from archiver.ids import person_key
from archiver.query import Archive
from archiver.store import Store
from conftest import BACKENDS, make_app, on_backend


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, web_datas):
    """The sample archive's data directory and store URL: in SQLite, then on PostgreSQL (the
    search index is Whoosh's in the data directory either way)."""
    return web_datas(on_backend(request))


@pytest.fixture(scope="module")
def app(served):
    """The Flask app over the sample archive of this module's backend."""
    app = make_app(*served)
    yield app
    app.extensions["store"].close()


@pytest.fixture(scope="module")
def sample(served):
    """Read access to the same data the app serves, to pick real ids."""
    data, url = served
    store = Store(url)
    yield Archive(store, index_dir=data / "whoosh")
    store.close()


@pytest.fixture(scope="module")
def big_thread(sample):
    return sample.threads(list_name="bestbits", limit=200)["threads"]


def biggest(threads: list[dict]) -> dict:
    return max(threads, key=lambda t: (t["size"], t["thread_id"]))


class Outline(HTMLParser):
    """Collect headings, links and ids of a page."""

    def __init__(self):
        super().__init__()
        self.headings: list[int] = []
        self.links: list[str] = []
        self.ids: list[str] = []
        self.lang = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if attrs.get("id"):
            self.ids.append(attrs["id"])
        if tag == "html":
            self.lang = attrs.get("lang")


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    return parser


def page(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.data[:500])
    html = response.get_data(as_text=True)
    assert "Traceback" not in html
    return html


def check_semantics(html: str) -> Outline:
    found = outline(html)
    assert found.lang == "en"
    assert found.headings and found.headings[0] == 1 and found.headings.count(1) == 1
    for before, after in zip(found.headings, found.headings[1:]):
        assert after <= before + 1, f"heading level jumps from h{before} to h{after}"
    assert len(found.ids) == len(set(found.ids)), "duplicate ids"
    assert "#main" in found.links
    return found


# --- pages -------------------------------------------------------------------------------------
def test_home_lists_programme_and_latest_threads(client, sample):
    html = page(client, "/")
    found = check_semantics(html)
    assert "/list/bestbits/" in found.links and "/list/governance/" in found.links
    for topic in sample.topics():
        assert f"/topic/{topic['slug']}/" in found.links
        assert topic["label"] in html.replace("&#39;", "'").replace("&amp;", "&")
    assert sum(1 for link in found.links if link.startswith("/thread/")) >= 10
    # The lists' feeds, visibly and for feed readers.
    assert 'rel="alternate" type="application/atom+xml"' in html
    assert "/list/bestbits/feed.atom" in found.links


def test_list_page_months_threads_and_scoped_search(client, sample):
    html = page(client, "/list/bestbits/")
    found = check_semantics(html)
    for month in sample.months("bestbits"):
        assert f"/list/bestbits/{month['month']}/" in found.links
        assert f">{month['messages']}<" in html
    assert 'name="list" value="bestbits"' in html
    assert "/list/bestbits/?page=2" in found.links        # 87 threads, 30 a page
    assert page(client, "/list/bestbits/?page=3")
    page(client, "/list/bestbits/?page=4", 400)


def test_month_by_thread_and_by_date(client, sample):
    html = page(client, "/list/bestbits/2012-11/")
    check_semantics(html)
    expected = sample.threads(list_name="bestbits", month="2012-11")["total"]
    assert f"{expected} threads with messages this month" in html
    flat = page(client, "/list/bestbits/2012-11/?view=date")
    assert "205 messages by date" in flat
    assert len(re.findall(r'href="/message/[a-z2-7]{32}/"', flat)) == 205
    assert "/list/bestbits/2012-10/" in flat and "/list/bestbits/2012-12/" in flat


@pytest.mark.parametrize("url, status", [
    ("/list/nosuch/", 404), ("/list/bestbits/2012-13/", 400), ("/list/bestbits/november/", 400),
    ("/list/nosuch/2012-11/", 404), ("/list/bestbits/2012-11/?view=tree", 400),
    ("/list/bestbits/?page=0", 400), ("/list/bestbits/?page=x", 400),
    ("/thread/nosuch/", 404), ("/thread/" + "a" * 32 + "/", 404), ("/message/zz/", 404),
    ("/message/" + "b" * 32 + "/", 404), ("/message/" + "b" * 32 + "/raw", 404),
    ("/topic/nosuch/", 404), ("/person/nosuch/", 404), ("/person/" + "c" * 16 + "/", 404),
    ("/new/?since=yesterday", 400), ("/search?sort=loudest&q=wcit", 400),
    ("/search?q=wcit&per_page=1000", 400), ("/search?q=" + "a" * 600, 400),
    ("/pipermail/bestbits/2012-November/999999.html", 404), ("/nowhere", 404),
])
def test_bad_urls_get_clear_error_pages(client, url, status):
    html = page(client, url, status)
    assert f"{status} ·" in html
    assert '<p class="error">' in html


def test_thread_page_tree_quotes_reply_link_and_neighbours(client, sample, big_thread):
    summary = biggest(big_thread)
    html = page(client, f"/thread/{summary['thread_id']}/")
    found = check_semantics(html)
    thread = sample.thread(summary["thread_id"])
    for message in thread["messages"]:
        if not message.get("missing"):
            assert f"m-{message['msg_hash']}" in found.ids
    assert "<details class=\"quoted\">" in html
    assert re.search(r'class="d[1-5]"', html)          # replies are indented
    mailto = re.search(r'href="(mailto:[^"]+)"', html).group(1)
    assert mailto.startswith("mailto:bestbits@lists.igcaucus.org?subject=Re%3A")
    assert "In-Reply-To=%3C" in mailto and "\n" not in mailto
    assert thread["previous"] or thread["next"]
    neighbour = (thread["previous"] or thread["next"])["thread_id"]
    assert f"/thread/{neighbour}/" in found.links
    for topic in summary["topics"]:
        assert f"/topic/{topic['slug']}/" in found.links
    assert f"/thread/{summary['thread_id']}/feed.atom" in found.links


def test_thread_page_stays_light(client, sample, big_thread):
    """A thread page weighs little: well under 60 KB for 30 messages (measured per message)."""
    summary = biggest(big_thread)
    body = client.get(f"/thread/{summary['thread_id']}/").data
    per_message = len(body) / summary["size"]
    assert per_message * 30 < 60_000, f"{len(body)} bytes for {summary['size']} messages"
    zipped = client.get(f"/thread/{summary['thread_id']}/", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == body


def test_message_page_raw_and_place_in_thread(client, sample, big_thread):
    summary = biggest(big_thread)
    reply = next(m for m in sample.thread(summary["thread_id"])["messages"]
                 if not m.get("missing") and m["depth"] > 0)
    html = page(client, f"/message/{reply['msg_hash']}/")
    found = check_semantics(html)
    assert f"/message/{reply['msg_hash']}/raw" in found.links
    assert "in reply to" in html and f"of {summary['size']} in the thread" in html
    raw = client.get(f"/message/{reply['msg_hash']}/raw")
    assert raw.status_code == 200 and raw.mimetype == "text/plain"
    assert raw.data == sample.raw(reply["message_id"])
    archived = [s["archive_url"] for s in reply["sources"] if s["archive_url"]]
    if archived:
        assert archived[0] in html


def test_pipermail_urls_redirect_to_the_message(client, sample, big_thread):
    reply = next(m for t in big_thread for m in sample.thread(t["thread_id"])["messages"]
                 if not m.get("missing") and m["archive_url"])
    tail = "/".join(reply["archive_url"].split("/")[-3:])
    # A list's name in another case is the same list: Mailman's list names ignore case.
    for url in (f"/pipermail/{tail}", f"/pipermail/{tail[0].upper()}{tail[1:]}"):
        response = client.get(url)
        assert response.status_code == 301, url
        assert response.headers["Location"].endswith(f"/message/{reply['msg_hash']}/")


def test_topic_page(client, sample):
    topic = max(sample.topics(), key=lambda t: t["threads"])
    html = page(client, f"/topic/{topic['slug']}/")
    found = check_semantics(html)
    assert "<svg" in html and 'role="img"' in html
    assert sum(1 for link in found.links if link.startswith("/thread/")) == min(30, topic["threads"])
    assert any(link.startswith("/person/") for link in found.links)
    assert f"/topic/{topic['slug']}/feed.atom" in found.links
    assert "Most active participants" in html and "Organisations" in html


def test_a_topics_threads_are_its_threads_latest_first_on_every_page(sample):
    # A topic's page walks every thread in date order, or sorts the topic's own threads when
    # the page is deep in a rare topic: either way the same threads in the same order.
    t, tt = s.threads.c, s.thread_topics.c
    total = sample.stats()["threads"]
    walked = sorted_ = 0
    for topic in sample.topics():
        with sample.store.engine.connect() as conn:
            rows = conn.execute(select(t.thread_id, t.last_date).join(s.thread_topics, tt.thread_id == t.thread_id)
                                .where(tt.topic == topic["slug"])).all()
        # Latest activity first, undated last, ties by thread id.
        expected = [tid for tid, _ in sorted(sorted(rows), key=lambda r: (r[1] is None, r[1] and -r[1].timestamp()))]
        assert topic["threads"] == len(expected)
        for limit, offset in ((1, 0), (3, 2), (5, 0), (30, 0), (7, 21), (30, 30)):
            found = sample.threads(topic=topic["slug"], limit=limit, offset=offset)
            assert found["total"] == len(expected)
            assert [x["thread_id"] for x in found["threads"]] == expected[offset:offset + limit]
            if _walk_pays(offset + limit, total, len(expected)):   # the way the page took
                walked += 1
            else:
                sorted_ += 1
    assert walked and sorted_


def test_a_topics_newest_messages_are_its_newest_either_way(sample):
    # The topic's feed walks messages newest first, or sorts the topic's own: the same messages.
    m, mt = s.messages.c, s.message_topics.c
    with sample.store.engine.connect() as conn:
        total = conn.execute(select(func.max(m.id))).scalar()
    walked = sorted_ = 0
    for topic in sample.topics():
        with sample.store.engine.connect() as conn:
            rows = conn.execute(select(m.message_id, m.date, m.id).join(s.message_topics, mt.message == m.id)
                                .where(mt.topic == topic["slug"])).all()
        expected = [mid for mid, _, _ in sorted(rows, key=lambda r: (r[1] is None, r[1] and -r[1].timestamp(), -r[2]))]
        for limit in (1, 5, 30, 200):
            assert [r["message_id"] for r in sample.latest(topic=topic["slug"], limit=limit)] == expected[:limit]
            if _walk_pays(limit, total, len(rows)):
                walked += 1
            else:
                sorted_ += 1
    assert walked and sorted_


def test_a_topics_participants_and_weeks_count_its_tagged_messages(sample):
    from collections import Counter
    from datetime import timedelta
    m, mt = s.messages.c, s.message_topics.c
    for topic in sample.topics():
        with sample.store.engine.connect() as conn:
            rows = conn.execute(select(m.from_key, m.date).join(s.message_topics, mt.message == m.id)
                                .where(mt.topic == topic["slug"])).all()
        found = sample.topic(topic["slug"])
        people = Counter(key for key, _ in rows if key)
        # The most active first, ties by key.
        assert [(p["key"], p["messages"]) for p in found["participants"]] == \
            sorted(people.items(), key=lambda kv: (-kv[1], kv[0]))[:15]
        weeks = Counter((d.date() - timedelta(days=d.weekday())).isoformat() for _, d in rows if d)
        assert {w["week"]: w["messages"] for w in found["weeks"]} == weeks


def test_person_page_shows_own_words_only(client, sample):
    top = sample.top_participants(1)[0]
    html = page(client, f"/person/{top['key']}/")
    check_semantics(html)
    person = sample.person(top["key"])
    assert person["address"] not in html                    # masked
    assert f"{top['messages']} messages" in html
    # Their quoted words are never on their page: no quoted text of theirs at all.
    assert "<details class=\"quoted\">" not in html
    shown = re.findall(r'href="/message/([a-z2-7]{32})/"', html)
    assert len(shown) == top["messages"]


def test_person_key_is_the_documented_hash(sample):
    top = sample.top_participants(1)[0]
    assert person_key(sample.person(top["key"])["address"]) == top["key"]


def test_whats_new_since_a_date_and_since_the_last_visit(client, sample):
    html = page(client, "/new/?since=2012-12-20")
    check_semantics(html)
    expected = sample.threads(since=__import__("datetime").datetime(2012, 12, 20))
    assert f"{expected['total']} thread" in html
    # Only messages after the date are shown under each thread.
    dates = re.findall(r'<time datetime="(2012-[^"]+)"', html)
    assert dates and all(d > "2012-12-20" for d in dates)
    # A first visit sets the cookie; the next visit counts from it (nothing is newer than now).
    fresh = client.application.test_client()
    first = fresh.get("/new/")
    assert first.status_code == 200 and "last_visit=" in first.headers["Set-Cookie"]
    again = fresh.get("/new/").get_data(as_text=True)
    assert "(your last visit)" in again and "Nothing new since then." in again


def test_stats_page_has_charts_and_tables(client, sample):
    html = page(client, "/stats/")
    check_semantics(html)
    assert html.count("<svg") == 2
    for person in sample.top_participants(5):
        assert person["name"] in html
    # The table has the chart's columns, one row a week here, each row adding up to its total.
    weekly = sample.weekly_by_topic()
    table = re.search(r"<summary>The same numbers as a table</summary>(.*?)</table>", html, re.S).group(1)
    rows = re.findall(r'<tr><th scope="row">([\d-]+)</th>(.*?)</tr>', table)
    assert "<th scope=\"col\">Week of</th>" in table and len(rows) >= len(weekly["weeks"])
    for week, cells in rows:
        counts = [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', cells)]
        assert counts[-1] == weekly["totals"].get(week, 0) and counts[-2] <= counts[-1]


# --- search --------------------------------------------------------------------------------------
def test_search_page_hits_facets_snippets_and_paging(client, sample):
    expected = sample.search("wcit", per_page=20)
    html = page(client, "/search?q=wcit")
    found = check_semantics(html)
    assert f"<strong>{expected['total']}</strong> messages match" in html
    assert html.count("<mark>") >= 10
    assert "/search?page=2&q=wcit&sort=relevance" in found.links
    facet_links = [l.replace("&amp;", "&") for l in found.links if "q=wcit+" in l]
    assert any("topic:" in l for l in facet_links) and any("date:2012-11" in l for l in facet_links)
    # Authors are offered by name, never by address.
    for value in expected["facets"]["author"]:
        assert value["value"] not in html


def test_search_facet_link_narrows_to_its_count(client, sample):
    expected = sample.search("wcit")
    month = next(v for v in expected["facets"]["month"] if v["value"] == "2012-11")
    html = page(client, "/search?q=wcit+date%3A2012-11")
    assert f"<strong>{month['count']}</strong> message" in html
    author = expected["facets"]["author"][0]
    name = sample.people_names([author["value"]])[author["value"]]
    narrowed = page(client, f"/search?q=wcit from:\"{name}\"")
    assert f"<strong>{author['count']}</strong> message" in narrowed


def test_search_sort_by_thread_list_scope_and_help(client, sample):
    newest = page(client, "/search?q=wcit&sort=newest")
    dates = re.findall(r'<time datetime="([^"]+)"', newest)
    assert dates == sorted(dates, reverse=True)
    by_thread = sample.search("wcit", by_thread=True)
    assert f"<strong>{by_thread['total']}</strong>" in page(client, "/search?q=wcit&by_thread=1")
    scoped = sample.search("wcit list:governance")
    assert f"<strong>{scoped['total']}</strong>" in page(client, "/search?q=wcit&list=governance")
    empty = page(client, "/search")
    assert "How to write a query" in empty and "<details id=\"query-help\" open>" in empty


def test_bad_query_is_explained_on_the_search_page(client):
    html = page(client, '/search?q=%22unclosed', 400)
    assert "Bad query:" in html and "Traceback" not in html
    assert 'value="&#34;unclosed"' in html


# --- API -----------------------------------------------------------------------------------------
def test_api_lists_threads_thread_message_search(client, sample, big_thread):
    lists = client.get("/api/lists").get_json()["lists"]
    assert {l["name"] for l in lists} == {"bestbits", "governance"}
    threads = client.get("/api/list/bestbits/threads?page=2").get_json()
    assert threads["total"] == 87 and len(threads["threads"]) == 30
    summary = biggest(big_thread)
    thread = client.get(f"/api/thread/{summary['thread_id']}").get_json()
    assert len(thread["messages"]) == len(sample.thread(summary["thread_id"])["messages"])
    first = next(m for m in thread["messages"] if not m.get("missing"))
    message = client.get(f"/api/message/{first['msg_hash']}").get_json()
    assert message["message"]["message_id"] == first["message_id"]
    assert "@" not in message["message"]["from"].split("…")[0][1:]
    found = client.get("/api/search?q=wcit&per_page=5").get_json()
    assert found["total"] == sample.search("wcit")["total"] and len(found["hits"]) == 5
    assert all("from_address" not in hit for hit in found["hits"])
    assert all("@" not in v["value"] for v in found["facets"]["author"])


@pytest.mark.parametrize("url, status", [
    ("/api/list/nosuch/threads", 404), ("/api/thread/x", 404), ("/api/message/" + "a" * 32, 404),
    ("/api/search", 400), ("/api/search?q=%28wcit", 400), ("/api/search?q=wcit&page=-1", 400),
])
def test_api_errors_are_json(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    assert response.is_json and response.get_json()["error"]


# --- response rules --------------------------------------------------------------------------------
def test_security_headers_and_conditional_requests(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    etag = response.headers["ETag"]
    again = client.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.data


def test_addresses_are_masked_on_pages(client, sample):
    addresses = {p["address"] for p in (sample.person(t["key"]) for t in sample.top_participants(10))}
    for url in ("/", "/list/bestbits/2012-11/?view=date", "/stats/", "/search?q=wcit"):
        html = page(client, url)
        for address in addresses:
            assert address not in html, (url, address)


def test_reply_link_cannot_inject_headers():
    from web.browse import reply_link

    link = reply_link({"subject": "Hi\r\nBcc: victim@example.org", "message_id": "<a\r\nb@x>",
                       "lists": ["bestbits"]})
    assert "\r" not in link and "\n" not in link and "Bcc:" not in link


def test_snippets_show_the_writers_own_words_unless_quotes_were_searched(sample):
    import html as htmllib

    def plain(snippet: str) -> str:
        text = htmllib.unescape(snippet.replace("<mark>", "").replace("</mark>", ""))
        return text.strip("… ").strip()

    for query, fields in (("governance", ("own_text",)), ('quoted:"civil society"', ("own_text", "quoted_text"))):
        found = sample.search(query, per_page=50)
        records = {r["message_id"]: r for r in sample.records([h["message_id"] for h in found["hits"]])}
        assert found["hits"]
        for hit in found["hits"]:
            texts = [" ".join(records[hit["message_id"]][f].split()) for f in fields]
            assert any(plain(hit["snippet"]) in words for words in texts), (query, hit["message_id"])


def test_every_route_answers_good_and_bad_values_without_a_server_error(app, client, sample, big_thread):
    """Each URL rule, with real values and with junk: never a 500, never a traceback."""
    thread = biggest(big_thread)
    message = next(m for m in sample.thread(thread["thread_id"])["messages"] if not m.get("missing"))
    good = {"name": "bestbits", "month": "2012-11", "thread_id": thread["thread_id"],
            "msg_hash": message["msg_hash"], "slug": sample.topics()[0]["slug"],
            "key": sample.top_participants(1)[0]["key"], "fmt": "jsonl", "filename": "style.css",
            "page": "000001.html"}
    junk = {k: "%3Cscript%3E%22x" for k in good}
    seen = set()
    for rule in app.url_map.iter_rules():
        seen.add(rule.endpoint)
        if "GET" not in rule.methods:
            assert client.get(rule.rule).status_code == 405   # a clear answer, not a server error
            continue
        for values, allowed in ((good, {200, 301, 404}), (junk, {400, 404})):
            url = rule.rule
            for arg in rule.arguments:
                url = url.replace(f"<{arg}>", values[arg]).replace(f"<path:{arg}>", values[arg])
            if rule.endpoint.startswith(("search.", "feeds.search", "exports.search", "api.search")):
                url += "?q=wcit" if values is good else "?q=%28"
            searches = rule.endpoint.startswith(("search.", "feeds.search", "exports.search", "api.search"))
            if values is junk and not rule.arguments and not searches:
                # Nothing in its URL to spoil: the same page again (sign-in exists only when
                # some list is private, and none is here).
                allowed = {404} if rule.endpoint == "access.login" else {200}
            response = client.get(url)
            body = response.get_data()
            response.close()
            assert response.status_code in allowed, (url, response.status_code)
            assert b"Traceback" not in body
    assert len(seen) >= 23


def test_an_archive_error_is_a_plain_503_page(web_data):
    from archiver.errors import ArchiverError
    from web import create_app

    app = create_app({"DATA_DIR": str(web_data)})

    @app.route("/__broken")
    def broken():
        raise ArchiverError("index at /secret/path must be rebuilt")

    response = app.test_client().get("/__broken")
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert "archiver reindex" in body and "/secret/path" not in body
    app.extensions["store"].close()


def test_trusted_hosts_and_secure_cookies(web_data):
    from web import create_app

    app = create_app({"DATA_DIR": str(web_data), "TRUSTED_HOSTS": ["archive.example.org"]})
    try:
        client = app.test_client()
        assert client.get("/", headers={"Host": "archive.example.org"}).status_code == 200
        assert client.get("/list/bestbits/feed.atom", headers={"Host": "evil.example"}).status_code == 400
    finally:
        app.extensions["store"].close()


def test_pages_are_the_same_from_sqlite_and_postgresql(web_datas, postgres_server):
    """What SQL leaves open (the order of ties, of rows as stored) differs between databases,
    and the pages that list threads, people, topics and weeks must not show it."""
    drawn = []
    for server in (None, postgres_server):
        app = make_app(*web_datas(server))
        try:
            client, archive = app.test_client(), app.extensions["archive"]()
            urls = ["/", "/stats/", "/new/?since=2012-01-01", "/api/lists"]
            for name in ("bestbits", "governance"):
                urls += [f"/list/{name}/", f"/api/list/{name}/threads"]
                urls += [f"/list/{name}/{m['month']}/{view}" for m in archive.months(name)
                         for view in ("", "?view=date")]
            urls += [f"/topic/{t['slug']}/" for t in archive.topics()]
            urls += [f"/person/{p['key']}/" for p in archive.top_participants(12)]
            urls += [f"/thread/{t['thread_id']}/" for t in archive.threads(limit=12)["threads"]]
            drawn.append({url: client.get(url).get_data(as_text=True) for url in urls})
        finally:
            app.extensions["store"].close()
    sqlite, postgresql = drawn
    assert list(sqlite) == list(postgresql) and len(sqlite) > 40
    assert [url for url in sqlite if sqlite[url] != postgresql[url]] == []


def test_the_page_survey_times_every_kind_of_page(web_data, capsys, monkeypatch):
    # benchmarks/pages.py: one row per kind of page, each found and served.
    import benchmarks.pages
    monkeypatch.setattr(sys, "argv", ["pages.py", "--data", str(web_data)])
    # Set here so that they are restored after: the script sets them for its process.
    for name, value in (("ARCHIVE_DATABASE_URL", ""), ("ARCHIVE_DATA_DIR", str(web_data)),
                        ("ARCHIVE_SEARCH_RATE", "100000 per minute"), ("ARCHIVE_EXPORT_RATE", "100000 per minute")):
        monkeypatch.setenv(name, value)
    benchmarks.pages.main()
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()[2:]]
    assert len(rows) == len(benchmarks.pages.page_paths(web_data)) > 15
    assert {row[1] for row in rows} == {"200"}, rows
