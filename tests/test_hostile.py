"""Hostile mail never runs in a reader's browser: script, event handlers, javascript: links,
CSS tricks and header injection, in every place mail reaches a page, feed or API answer."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest

from archiver import config
from archiver.pipeline import ingest
from archiver.query import Archive, open_store
from conftest import BACKENDS, on_backend

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
PAYLOAD = '<script>window.pwned=1;alert(1)</script>"><img src=x onerror="window.pwned=2;alert(2)">'


def hostile_messages() -> list[bytes]:
    """A small thread whose every part carries an attack (written here, not copied from anywhere)."""
    out = []
    root = EmailMessage()
    root["From"] = f'"<svg onload=alert(3)>{PAYLOAD}" <evil@attacker.example>'
    root["Subject"] = f"Statement {PAYLOAD}"
    root["Message-ID"] = "<root\"><script>alert(4)</script>@attacker.example>"
    root["Date"] = "Mon, 05 Nov 2012 10:00:00 +0000"
    root.set_content(f"Hello {PAYLOAD}\n[click](javascript:alert(5)) javascript:alert(6)\n"
                     "<a href=\"javascript:alert(7)\">link</a>\n")
    out.append(bytes(root))

    html = EmailMessage()
    html["From"] = "Mallory <mallory@attacker.example>"
    html["Subject"] = "Re: Statement =?utf-8?q?Hi=0D=0ABcc=3A_victim=40example=2Eorg?="
    html["Message-ID"] = "<html-only@attacker.example>"
    html["In-Reply-To"] = root["Message-ID"]
    html["References"] = root["Message-ID"]
    html["Date"] = "Mon, 05 Nov 2012 11:00:00 +0000"
    html.set_content("<html><head><style>body{background:url(javascript:alert(8))}</style></head>"
                     "<body onload=\"alert(9)\"><script>window.pwned=3</script>"
                     "<p style=\"position:fixed;top:0;left:0;width:100%;height:100%\">overlay</p>"
                     "<a href=\"javascript:alert(10)\">Sign here</a><img src=\"http://tracker.example/x.gif\">"
                     "<iframe src=\"javascript:alert(11)\"></iframe><p>Real words in HTML.</p></body></html>",
                     subtype="html")
    out.append(bytes(html))

    attached = EmailMessage()
    attached["From"] = "Trudy <trudy@attacker.example>"
    attached["Subject"] = "Re: Statement"
    attached["Message-ID"] = "<attach@attacker.example>"
    attached["In-Reply-To"] = "<html-only@attacker.example>"
    attached["Date"] = "Mon, 05 Nov 2012 12:00:00 +0000"
    attached.set_content("See the attachment.\n")
    attached.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf",
                            filename=f'"><script>alert(12)</script>{PAYLOAD}.pdf')
    out.append(bytes(attached))
    return out


@pytest.fixture(scope="module", params=BACKENDS)
def hostile(request, tmp_path_factory) -> tuple[Path, str | None]:
    """The hostile thread's data directory (its search index) and store URL: SQLite there, or
    a PostgreSQL database."""
    server = on_backend(request)
    url = server.create_database() if server else None
    data = tmp_path_factory.mktemp("hostile")
    mbox = data / "hostile.mbox"
    with mbox.open("wb") as out:
        for raw in hostile_messages():
            out.write(b"From attacker@example Mon Nov  5 10:00:00 2012\n" + raw.replace(b"\r\n", b"\n") + b"\n")
    store = open_store(data, url)
    archive = Archive(store, index_dir=data / "whoosh")
    report = ingest(store, [str(mbox)], "bestbits", archive=archive)
    assert report.stored == 3
    archive.index.close()
    store.close()
    return data, url


@pytest.fixture(scope="module")
def hostile_dir(hostile) -> Path:
    return hostile[0]


def hostile_app(hostile, **settings):
    from web import create_app

    return create_app({"DATA_DIR": str(hostile[0]), "DATABASE_URL": hostile[1], **settings})


@pytest.fixture(scope="module")
def pages(hostile, hostile_dir) -> list[str]:
    store = open_store(hostile_dir, hostile[1])
    archive = Archive(store, index_dir=hostile_dir / "whoosh")
    thread = archive.threads(limit=1)["threads"][0]
    messages = [m for m in archive.thread(thread["thread_id"])["messages"] if not m.get("missing")]
    key = archive.top_participants(1)[0]["key"]
    store.close()
    urls = ["/", "/list/bestbits/", "/list/bestbits/2012-11/", "/list/bestbits/2012-11/?view=date",
            f"/thread/{thread['thread_id']}/", f"/person/{key}/", "/search?q=statement",
            "/search?q=real", "/new/?since=2012-11-01", "/stats/"]
    urls += [f"/message/{m['msg_hash']}/" for m in messages]
    return urls


class Dangerous(HTMLParser):
    """Find markup that could run: script elements, event-handler attributes, script URLs,
    inline styles and embedded frames."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed", "style", "img"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            value = (value or "").strip().lower()
            if name.startswith("on") or name == "style":
                self.found.append(f"{tag}[{name}]")
            if tag == "link" and value == "data:,":
                continue   # the site's own empty favicon, so no browser asks for /favicon.ico
            if name in ("href", "src", "action") and re.match(r"^(javascript|data|vbscript):", value):
                self.found.append(f"{tag}[{name}={value[:30]}]")


def test_pages_carry_no_markup_that_could_run(hostile, pages):
    app = hostile_app(hostile, SEARCH_RATE="1000 per minute")
    client = app.test_client()
    try:
        for url in pages:
            response = client.get(url)
            assert response.status_code == 200, url
            assert "script-src" not in response.headers["Content-Security-Policy"]
            parser = Dangerous()
            parser.feed(response.get_data(as_text=True))
            assert parser.found == [], (url, parser.found)
            assert "victim@example.org" not in response.get_data(as_text=True)
        # The attacks are on the pages, as text a reader can see.
        thread = client.get(next(u for u in pages if u.startswith("/thread/"))).get_data(as_text=True)
        assert "&lt;script&gt;window.pwned=1" in thread and "Real words in HTML." in thread
    finally:
        app.extensions["store"].close()


def test_reply_links_cannot_add_headers(hostile, pages):
    app = hostile_app(hostile)
    try:
        thread = app.test_client().get(next(u for u in pages if u.startswith("/thread/")))
        links = re.findall(r'href="(mailto:[^"]*)"', thread.get_data(as_text=True))
        assert links
        for link in links:
            link = link.replace("&amp;", "&")
            assert set(re.findall(r"[?&]([A-Za-z-]+)=", link)) == {"subject", "In-Reply-To"}
            decoded = urllib.request.unquote(link)
            assert "\r" not in decoded and "\n" not in decoded, decoded
    finally:
        app.extensions["store"].close()


def test_feeds_and_api_carry_mail_as_text(hostile, pages):
    app = hostile_app(hostile, SEARCH_RATE="1000 per minute")
    client = app.test_client()
    try:
        feed = client.get("/list/bestbits/feed.atom").get_data(as_text=True)
        assert "<script" not in feed and "&lt;script" in feed
        api = client.get("/api/search?q=statement")
        assert api.is_json and "<script>" in str(api.get_json())   # JSON is data, served as JSON
        assert api.mimetype == "application/json"
    finally:
        app.extensions["store"].close()


# --- in a real browser ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(hostile, hostile_dir):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium package (.ci/run does)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", "from web.cli import main; main()", "--data", str(hostile_dir),
         "serve", "--port", str(port), "--workers", "1"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**__import__("os").environ, config.ENV_PREFIX + "SEARCH_RATE": "1000 per minute",
             config.ENV_PREFIX + "DATABASE_URL": hostile[1] or ""})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(url + "/", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_no_script_runs_in_chromium(served, pages):
    sync_api = pytest.importorskip("playwright.sync_api")
    events: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: (events.append(f"dialog: {d.message}"), d.dismiss()))
            page.on("pageerror", lambda e: events.append(f"page error: {e}"))
            # Nothing leaves for another host: no tracker image, no frame.
            page.on("request", lambda r: None if r.url.startswith(served) or r.url.startswith("data:")
                    else events.append(f"request to {r.url}"))
            for url in pages:
                page.goto(served + url)
                for summary in page.locator("details > summary").all():
                    summary.click()
                assert page.evaluate("window.pwned === undefined"), url
        finally:
            browser.close()
    assert events == []
