"""Private lists: invisible (pages, search, facets, feeds, exports, API) until a reader signs in."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from werkzeug.security import generate_password_hash

from archiver.ids import person_key
from archiver.query import Archive, open_store
from conftest import SAMPLE, eml
from web import create_app
from web.cli import main

MARK = "quetzalcoatlus"        # a word only the private list's messages say


@pytest.fixture(scope="module")
def built(tmp_path_factory, build_archive):
    """bestbits (public) and coordinators (private), one message cross-posted to both: the
    data directory and the store's URL (SQLite, then PostgreSQL)."""
    data = tmp_path_factory.mktemp("private")
    inner = data / "inner"
    inner.mkdir()
    for n in range(3):
        refs = ("inner-0@coord.example",) if n else ()
        (inner / f"{n}.eml").write_bytes(eml(f"inner-{n}@coord.example", f"Strategy {MARK}", refs,
                                             body=f"Only for coordinators: {MARK} plan {n}.\n", hour=9 + n))
    (inner / "cross.eml").write_bytes(eml("cross@coord.example", "Open call",
                                          body="An open call that went to both lists.\n"))
    url = build_archive(data, [("bestbits", [SAMPLE / "bestbits"]), ("coordinators", [inner]),
                               ("bestbits", [inner / "cross.eml"])])
    users = data / "users.toml"
    users.write_text(f'[users]\nalice = "{generate_password_hash("correct horse")}"\n')
    return data, url


def private_app(built, **settings):
    """The app over the built archive with coordinators private (and any other settings)."""
    data, url = built
    return create_app({"DATA_DIR": str(data), "DATABASE_URL": url, "PRIVATE_LISTS": "coordinators",
                       "USERS_FILE": str(data / "users.toml"), **settings})


@pytest.fixture(scope="module")
def app(built):
    app = private_app(built, SECRET_KEY="test-only-key", SEARCH_RATE="1000 per minute",
                      EXPORT_RATE="1000 per minute", LOGIN_RATE="1000 per minute")
    yield app
    app.extensions["store"].close()


@pytest.fixture(scope="module")
def ids(built):
    store = open_store(*built)
    archive = Archive(store)
    thread = next(t for t in archive.threads(list_name="coordinators")["threads"] if t["size"] == 3)
    message = archive.thread(thread["thread_id"])["messages"][0]
    cross = archive.records(["cross@coord.example"])[0]
    key = person_key("jane.doe@civil.example")
    store.close()
    return {"thread": thread["thread_id"], "message": message["msg_hash"], "cross": cross["msg_hash"],
            "person": key}


def sign_in(client, password="correct horse"):
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"user": "alice", "password": password, "csrf": token,
                                       "next": "/list/coordinators/"})


def urls(ids) -> list[str]:
    return ["/", "/list/bestbits/", "/list/bestbits/2012-10/", "/stats/", "/new/?since=2012-01-01",
            f"/person/{ids['person']}/", f"/message/{ids['cross']}/", "/search?q=plan",
            f"/search?q={MARK}", "/search?q=coordinators", "/api/lists", f"/api/search?q={MARK}",
            "/api/search?q=plan", "/list/bestbits/feed.atom", f"/search/feed.atom?q={MARK}",
            f"/search/export.jsonl?q={MARK}", "/search/export.csv?q=plan",
            f"/topic/{'logistics'}/", "/api/list/bestbits/threads"]


def test_anonymous_readers_never_see_a_private_list(app, ids):
    client = app.test_client()
    for url in urls(ids):
        response = client.get(url)
        body = response.get_data(as_text=True)
        assert response.status_code in (200, 400), url
        # The query echoes MARK; the private messages' own subject and words must not appear.
        assert f"Strategy {MARK}" not in body and "Only for coordinators" not in body, url
        if "coordinators" not in url:
            assert "coordinators" not in body, url
    for url in ("/list/coordinators/", "/list/coordinators/2012-10/", f"/thread/{ids['thread']}/",
                f"/message/{ids['message']}/", f"/message/{ids['message']}/raw",
                "/list/coordinators/feed.atom", f"/thread/{ids['thread']}/feed.atom",
                f"/thread/{ids['thread']}/export.jsonl", f"/api/thread/{ids['thread']}",
                f"/api/message/{ids['message']}", "/api/list/coordinators/threads"):
        assert client.get(url).status_code == 404, url
    # The cross-post was public on bestbits: it stays visible, without its private list.
    cross = client.get(f"/message/{ids['cross']}/").get_data(as_text=True)
    assert "An open call" in cross and "coordinators" not in cross
    found = client.get(f"/api/search?q={MARK}").get_json()
    assert found["total"] == 0 and all(v["value"] != "coordinators" for v in found["facets"]["list"])


def test_signed_in_readers_see_it_and_sign_out(app, ids):
    client = app.test_client()
    signed = sign_in(client)
    assert signed.status_code == 302 and signed.headers["Location"].endswith("/list/coordinators/")
    page = client.get("/list/coordinators/")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "private, no-store"
    assert MARK in client.get(f"/thread/{ids['thread']}/").get_data(as_text=True)
    assert client.get(f"/api/search?q={MARK}").get_json()["total"] == 3
    assert "coordinators" in client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    assert client.post("/logout", data={"csrf": token}).status_code == 302
    assert client.get("/list/coordinators/").status_code == 404


def test_sign_in_refuses_bad_passwords_forged_forms_and_foreign_redirects(app):
    client = app.test_client()
    assert sign_in(client, "wrong").status_code == 401
    assert client.post("/login", data={"user": "alice", "password": "correct horse"}).status_code == 400
    page = client.get("/login?next=//evil.example/x").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"user": "alice", "password": "correct horse",
                                           "csrf": token, "next": "//evil.example/x"})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_private_lists_need_a_secret_key_and_hashed_passwords(tmp_path):
    from archiver.errors import ArchiverError

    # Settings checks, before any page: an empty SQLite store will do.
    data = tmp_path
    (data / "users.toml").write_text(f'[users]\nalice = "{generate_password_hash("pw")}"\n')
    with pytest.raises(ArchiverError, match="secret_key"):
        create_app({"DATA_DIR": str(data), "PRIVATE_LISTS": "coordinators",
                    "USERS_FILE": str(data / "users.toml")})
    plain = data / "plain.toml"
    plain.write_text('[users]\nbob = "hunter2"\n')
    with pytest.raises(ArchiverError, match="password hash"):
        create_app({"DATA_DIR": str(data), "PRIVATE_LISTS": "coordinators",
                    "USERS_FILE": str(plain), "SECRET_KEY": "k"})


def test_passwd_prints_a_hash_never_the_password():
    result = CliRunner().invoke(main, ["passwd", "alice"], input="s3cret pass\ns3cret pass\n")
    assert result.exit_code == 0
    line = result.output.strip().splitlines()[-1]
    assert line.startswith('"alice" = "') and "s3cret" not in line


def test_review_findings_stay_fixed(app, ids):
    """Leaks and breakouts a review found: person page, message page, query injection,
    tricky sign-in redirects, an impossible month."""
    client = app.test_client()
    person = client.get(f"/person/{ids['person']}/").get_data(as_text=True)
    assert MARK not in person and "Only for coordinators" not in person
    found = client.get(f"/api/search?q={MARK}) OR (list:coordinators")
    assert found.status_code == 400 and "parenthesis" in found.get_json()["error"]
    assert client.get(f"/api/search?q=x) OR {MARK} OR (x").status_code == 400
    cross = client.get(f"/message/{ids['cross']}/").get_data(as_text=True)
    assert "Strategy" not in cross
    thread = client.get(f"/thread/{ids['thread']}/")
    assert thread.status_code == 404
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    for target in ("/\t/evil.example", "/\n/x", "/\\evil.example", "https://evil.example/", "//evil.example"):
        response = client.post("/login", data={"user": "alice", "password": "correct horse",
                                               "csrf": token, "next": target})
        assert response.status_code == 302 and response.headers["Location"] == "/", target
        client.post("/logout", data={"csrf": token})
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.get("/list/bestbits/9999-12/").status_code == 400


def test_password_guessing_is_rate_limited(built):
    app = private_app(built, SECRET_KEY="k", LOGIN_RATE="2 per minute")
    client = app.test_client()
    try:
        assert [sign_in(client, "guess").status_code for _ in range(3)] == [401, 401, 429]
    finally:
        app.extensions["store"].close()


def test_counts_on_the_home_page_leave_the_private_list_out(app, built):
    store = open_store(*built)
    try:
        public = next(l["messages"] for l in Archive(store).lists() if l["name"] == "bestbits")
    finally:
        store.close()
    home = app.test_client().get("/").get_data(as_text=True)
    assert f"{public} messages in" in home


def test_secure_cookies_when_asked(built):
    app = private_app(built, SECRET_KEY="k", SESSION_COOKIE_SECURE=True)
    try:
        response = app.test_client().get("/login")
        assert "Secure" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    finally:
        app.extensions["store"].close()
