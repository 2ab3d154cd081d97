"""Browser tests: Playwright drives Debian's Chromium against the site `archiver serve` serves.

A real HTTP server on 127.0.0.1 serves the sample archive; the scenarios click through the
pages as a reader would (programme -> topic -> thread -> folded quote; search -> facet;
thread -> person; thread -> export), and fail on any JavaScript dialog, page error or
console error. axe-core (tests/browser/node_modules, pinned in tests/browser/package.json)
checks every kind of page for serious and critical accessibility violations. Screenshots at
desktop and phone widths go to tests/artifacts/ (git-ignored).

Skips, saying why, where /usr/bin/chromium is missing or cannot be launched, and the
accessibility checks where axe-core is not installed (`.ci/run` installs both).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000
# A well-formed thread id that names no thread: its page is the 404 page.
UNKNOWN_THREAD = "/thread/" + "a" * 32 + "/"

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found: install Debian's chromium package (.ci/run does)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright package is not installed (pip install -e '.[test]')")
expect = sync_api.expect


# --- the server and the browser ----------------------------------------------------------------

@pytest.fixture(scope="module")
def base_url(web_data):
    """The site over the sample archive, served on 127.0.0.1 by `archiver serve` (gunicorn,
    the production server users run) in a child process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", "from web.cli import main; main()", "--data", str(web_data),
         "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(url + "/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"archiver serve exited: {server.stdout.read().decode()[-2000:]}")
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()


@pytest.fixture(scope="module")
def browser(base_url):
    """Debian's Chromium, headless; it closes before the server stops."""
    playwright = sync_api.sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS, timeout=30_000)
    except sync_api.Error as exc:
        playwright.stop()
        pytest.skip(f"Playwright could not launch {CHROMIUM}: {_launch_failure(exc)}")
    try:
        yield launched
    finally:
        launched.close()
        playwright.stop()


def _launch_failure(exc: Exception) -> str:
    """The gist of a failed launch: the first line and the browser's own complaints."""
    lines = [line.strip(" -") for line in str(exc).splitlines() if line.strip()]
    telling = [line for line in lines[1:] if "<launching>" not in line and re.search(
        r"(?i)error|exitcode|cannot|not found|missing|denied", line)]
    return "; ".join(dict.fromkeys(lines[:1] + telling))[:600]


class Watch:
    """Collects what must fail a test: JS dialogs, page errors and console errors.

    A missing /favicon.ico is not a problem, and neither is the failed load of a page the
    test opened on purpose for its error status (see `allow_status`)."""

    def __init__(self, page, base_url: str) -> None:
        self.base_url = base_url
        self.problems: list[str] = []
        self.allowed: set[str] = set()
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("console", self._console)

    def allow_status(self, path: str) -> None:
        self.allowed.add(urljoin(self.base_url, path))

    def _dialog(self, dialog) -> None:
        self.problems.append(f"JavaScript {dialog.type} dialog: {dialog.message!r}")
        dialog.dismiss()

    def _console(self, message) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        if urlsplit(where).path == "/favicon.ico":
            return
        if where in self.allowed and "Failed to load resource" in message.text:
            return
        self.problems.append(f"console error at {where or '?'}: {message.text}")


def _open_page(browser, base_url, viewport=DESKTOP, **options):
    context = browser.new_context(base_url=base_url, viewport=viewport, **options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    return context, page, Watch(page, base_url)


def _check(watch: Watch) -> None:
    if watch.problems:
        pytest.fail("the browser reported problems:\n  " + "\n  ".join(watch.problems))


@pytest.fixture
def page(browser, base_url):
    """A fresh desktop page; the test fails on any dialog, page error or console error."""
    context, page, watch = _open_page(browser, base_url)
    page.watch = watch
    yield page
    context.close()
    _check(watch)


def visit(page, path: str, status: int = 200):
    """Open a path and check the answer's status; return the response."""
    if status != 200:
        page.watch.allow_status(path)
    response = page.goto(path)
    assert response is not None, f"no response for {path}"
    assert response.status == status, f"{path}: status {response.status}, expected {status}"
    return response


def hrefs(page, selector: str) -> list[str]:
    """The href attributes (as written) of the elements matching a selector, in order."""
    found = page.eval_on_selector_all(selector, "els => els.map(e => e.getAttribute('href'))")
    return list(dict.fromkeys(h for h in found if h))


def path_of(page) -> str:
    parts = urlsplit(page.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


THREAD_LINK = re.compile(r"^/thread/[a-z2-7]{32}/$")
MESSAGE_LINK = re.compile(r"^/message/[a-z2-7]{32}/$")
PERSON_LINK = re.compile(r"^/person/[a-z2-7]{16}/$")
TOPIC_LINK = re.compile(r"^/topic/[a-z0-9-]+/$")
LIST_LINK = re.compile(r"^/list/[^/]+/$")
MONTH_LINK = re.compile(r"^/list/[^/]+/\d{4}-\d{2}/$")


def matching(links: list[str], pattern: re.Pattern) -> list[str]:
    return [link for link in links if pattern.match(link)]


# --- the site's pages, found by following links from home ------------------------------------

@pytest.fixture(scope="module")
def site(browser, base_url) -> dict[str, str]:
    """One path per kind of page, each reached by following links from the home page."""
    context, page, watch = _open_page(browser, base_url)
    page.watch = watch
    try:
        paths = {"home": "/"}
        visit(page, "/")
        links = hrefs(page, "main a[href]")
        lists, threads = matching(links, LIST_LINK), matching(links, THREAD_LINK)
        topics = matching(hrefs(page, "main .programme a[href]"), TOPIC_LINK)
        nav = hrefs(page, "header nav a[href]")
        for kind, path in (("stats", "/stats/"), ("new", "/new/")):
            assert path in nav, f"the site's navigation does not link to {path}: {nav}"
            paths[kind] = path
        assert lists, "the home page links to no list"
        assert topics, "the home page's programme links to no topic"
        assert threads, "the home page links to no thread"
        paths["list"] = lists[0]
        visit(page, lists[0])
        months = matching(hrefs(page, "main a[href]"), MONTH_LINK)
        assert months, f"{lists[0]} links to no month"
        paths["month"] = months[0]
        # The topic with the most threads: its page has threads, people and a chart.
        counts = page_topic_counts(page, topics)
        paths["topic"] = max(topics, key=lambda t: counts.get(t, 0))
        paths["thread"] = threads[0]
        visit(page, threads[0])
        messages = matching(hrefs(page, "main a[href]"), MESSAGE_LINK)
        people = matching(hrefs(page, "main a[href]"), PERSON_LINK)
        assert messages, f"{threads[0]} links to no message permalink"
        assert people, f"{threads[0]} links to no participant"
        paths["message"], paths["person"] = messages[0], people[0]
        paths["search"] = "/search?q=" + SEARCH_WORD
        paths["error"] = UNKNOWN_THREAD
    finally:
        context.close()
    _check(watch)
    return paths


def page_topic_counts(page, topics: list[str]) -> dict[str, int]:
    """Threads per topic, read from the home page's programme ('· N threads')."""
    visit(page, "/")
    counts = {}
    for item in page.locator("main .programme > li").all():
        link = item.locator("a").first.get_attribute("href")
        found = re.search(r"(\d+) threads?", item.inner_text())
        if link in topics and found:
            counts[link] = int(found.group(1))
    return counts


# A word most sample messages use, so the results have facets to narrow them.
SEARCH_WORD = "governance"


def result_total(page) -> int:
    """The number of results the search page announces."""
    text = page.locator("main").inner_text()
    found = re.search(r"([\d,]+)\s+(?:results?|messages?|hits?|matches)", text)
    assert found, f"{page.url}: no result count on the page"
    return int(found.group(1).replace(",", ""))


# --- scenarios ---------------------------------------------------------------------------------

def test_watch_catches_dialogs_and_errors(browser, base_url):
    """The guard itself: a dialog, a console error and an uncaught exception are all caught."""
    context, page, watch = _open_page(browser, base_url)
    try:
        page.set_content("<script>alert('hello'); console.error('boom'); throw new Error('oops');</script>")
        page.wait_for_function("() => document.readyState === 'complete'")
    finally:
        context.close()
    kinds = " | ".join(watch.problems)
    assert len(watch.problems) == 3, kinds
    assert "alert dialog" in kinds and "boom" in kinds and "oops" in kinds, kinds


def test_programme_topic_thread_unfold_quote(page, site):
    """Home -> a programme session -> a thread of it -> unfold a quote: its text shows."""
    visit(page, "/")
    page.locator(f'main .programme a[href="{site["topic"]}"]').click()
    expect(page).to_have_url(re.compile(re.escape(site["topic"]) + "$"))
    expect(page.locator("h1")).not_to_be_empty()
    topic = site["topic"]
    threads = matching(hrefs(page, "main a[href]"), THREAD_LINK)
    assert threads, f"{topic} lists no thread"
    for thread in threads[:15]:
        if path_of(page) != topic:
            visit(page, topic)
        page.locator(f'main a[href="{thread}"]').first.click()
        expect(page).to_have_url(re.compile(re.escape(thread) + "$"))
        if page.locator("details.quoted").count():
            break
    else:
        pytest.fail(f"none of the first threads of {topic} has a folded quote (details.quoted)")
    quote = page.locator("details.quoted").first
    text = quote.locator(":scope > :not(summary)").first
    expect(text).to_be_hidden()
    quote.locator("summary").click()
    expect(quote).to_have_attribute("open", "")
    expect(text).to_be_visible()
    assert text.inner_text().strip(), f"{page.url}: the unfolded quote is empty"


def test_search_then_facet(page, site):
    """Type a query in the search form, submit, narrow by a facet: fewer results, filter in URL."""
    visit(page, "/")
    box = page.locator("form[role=search] input[name=q]").first
    box.fill(SEARCH_WORD)
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?"))
    before_url = page.url
    before_q = dict(parse_qsl(urlsplit(before_url).query)).get("q")
    assert before_q == SEARCH_WORD, before_url
    total = result_total(page)
    assert total > 1, f"{before_url}: {total} results"
    items = page.locator("main .facets li:has(a[href])")
    assert items.count(), f"{before_url}: no facet links (.facets li a)"
    chosen = None
    for item in items.all():
        count = re.search(r"\((\d+)\)\s*$", item.inner_text())
        if count and 0 < int(count.group(1)) < total:
            chosen = item.locator("a[href]").first
            break
    assert chosen is not None, f"{before_url}: no facet narrows the {total} results"
    href = chosen.get_attribute("href")
    chosen.click()
    expect(page).to_have_url(re.compile(r"/search\?"))
    after_q = dict(parse_qsl(urlsplit(page.url).query)).get("q", "")
    assert after_q == dict(parse_qsl(urlsplit(href).query)).get("q"), f"{href} led to {page.url}"
    added = after_q.removeprefix(before_q).strip()
    assert after_q.startswith(before_q) and re.match(r"^[a-z]+:\S", added), (
        f"the facet filter is not in the URL: {before_url} -> {page.url}")
    narrowed = result_total(page)
    assert 0 < narrowed < total, f"{page.url} ({added}): {narrowed} results, before the facet {total}"


def test_thread_to_person(page, site):
    """From a thread, a participant's name leads to their page."""
    visit(page, site["thread"])
    link = page.locator("main article a[href^='/person/']").first
    name = link.inner_text().strip()
    link.click()
    expect(page).to_have_url(re.compile(r"/person/[a-z2-7]{16}/$"))
    expect(page.locator("h1")).to_have_text(re.compile(re.escape(name.split(" <")[0][:20])))
    assert "@" not in page.locator("h1").inner_text(), "an address shows in the person's heading"


def test_thread_export_download(page, site):
    """The thread's JSON Lines export downloads as a non-empty file of JSON objects."""
    visit(page, site["thread"])
    with page.expect_download() as pending:
        page.locator("main a[href$='/export.jsonl']").first.click()
    download = pending.value
    assert download.failure() is None, download.failure()
    data = Path(download.path()).read_text(encoding="utf-8")
    assert data.strip(), f"{download.url}: empty download"
    records = [json.loads(line) for line in data.splitlines() if line.strip()]
    assert records and all(isinstance(r, dict) for r in records), download.url
    assert download.suggested_filename.endswith(".jsonl"), download.suggested_filename


# --- screenshots -------------------------------------------------------------------------------

SCREENSHOTS = ("home", "thread", "search", "topic", "person", "stats")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots(browser, base_url, site, viewport):
    """Full-page screenshots into tests/artifacts/; no kind of page scrolls sideways."""
    ARTIFACTS.mkdir(exist_ok=True)
    width = "desktop" if viewport is DESKTOP else "phone"
    phone = viewport is PHONE
    context, page, watch = _open_page(browser, base_url, viewport=viewport, is_mobile=phone,
                                      has_touch=phone)
    page.watch = watch
    overflow = []
    try:
        # Every kind of page is checked for sideways scrolling; the main ones are photographed.
        for kind in SCREENSHOTS + tuple(k for k in A11Y_PAGES if k not in SCREENSHOTS):
            visit(page, site[kind], status=404 if kind == "error" else 200)
            if kind in SCREENSHOTS:
                page.screenshot(path=str(ARTIFACTS / f"{kind}-{width}.png"), full_page=True)
            wide = page.evaluate(WIDE_ELEMENTS)
            if wide:
                overflow.append(f"{site[kind]}: wider than the {viewport['width']}px viewport: "
                                + ", ".join(wide[:5]))
    finally:
        context.close()
    _check(watch)
    assert not overflow, "\n".join(overflow)


# Elements that stick out of the viewport on the right (the page would scroll sideways).
WIDE_ELEMENTS = """() => {
  const limit = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= limit) return [];
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.right > limit + 1 && box.width > 0) {
      let name = el.tagName.toLowerCase();
      if (el.id) name += '#' + el.id;
      if (typeof el.className === 'string' && el.className) name += '.' + el.className.trim().split(/\\s+/).join('.');
      out.push(name + ' (' + Math.round(box.right) + 'px)');
    }
  }
  return out;
}"""


# --- accessibility -----------------------------------------------------------------------------

A11Y_PAGES = ("home", "list", "month", "thread", "message", "topic", "person", "search", "stats",
              "new", "error")


@pytest.fixture(scope="module")
def axe_source() -> Path:
    if not AXE.is_file():
        pytest.skip(f"axe-core not installed at {AXE.relative_to(ROOT)}: "
                    "run `npm ci` in tests/browser (.ci/run does)")
    return AXE


@pytest.mark.parametrize("kind", A11Y_PAGES)
def test_accessibility(browser, base_url, site, axe_source, kind):
    """axe-core finds no serious or critical violation on each kind of page."""
    # The site's CSP forbids every script; the test context bypasses it to inject axe.
    context, page, watch = _open_page(browser, base_url, bypass_csp=True)
    page.watch = watch
    try:
        visit(page, site[kind], status=404 if kind == "error" else 200)
        # Folded parts (quotes, signatures, the stats tables) are checked too: unfold them.
        page.eval_on_selector_all("details", "els => els.forEach(e => { e.open = true; })")
        page.add_script_tag(path=str(axe_source))
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    finally:
        context.close()
    _check(watch)
    violations = result["violations"]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"axe-{kind}.json").write_text(json.dumps(
        [{"id": v["id"], "impact": v["impact"], "help": v["help"],
          "targets": [n["target"] for n in v["nodes"]]} for v in violations], indent=1))
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, f"{site[kind]}: accessibility violations:\n" + "\n".join(
        f"  [{v['impact']}] {v['id']}: {v['help']} ({len(v['nodes'])} nodes; "
        + ", ".join(" ".join(n["target"]) for n in v["nodes"][:4]) + f") {v['helpUrl']}"
        for v in bad)


# --- the briefing pack, printed ----------------------------------------------------------------

BRIEFING_TOPIC = "/topic/wcit-statement/"   # the sample's statement topic: it has sign-on lists


def test_briefing_prints_on_a4(browser, base_url):
    """Topic page -> its briefing pack; in print the site's navigation and the form are gone;
    Chromium prints it to an A4 PDF (tests/artifacts/briefing.pdf), whose first page is drawn
    as tests/artifacts/briefing-page1.png to be looked at."""
    ARTIFACTS.mkdir(exist_ok=True)
    context, page, watch = _open_page(browser, base_url)
    page.watch = watch
    try:
        visit(page, BRIEFING_TOPIC)
        page.locator("main a[href$='/briefing']").first.click()
        expect(page).to_have_url(re.compile(r"/topic/wcit-statement/briefing$"))
        expect(page.locator("h1")).to_have_text(re.compile(r"^Briefing: "))
        for heading in ("Most active threads", "Who took part", "Latest positions, in their own words",
                        "Sign-ons to statements"):
            expect(page.locator("main h2", has_text=heading)).to_be_visible()
        assert page.locator("ol.signers li").count() >= 10
        page.emulate_media(media="print")
        expect(page.locator("header.site")).to_be_hidden()
        expect(page.locator("main form")).to_be_hidden()
        expect(page.locator(".no-print").first).to_be_hidden()
        pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    finally:
        context.close()
    _check(watch)
    path = ARTIFACTS / "briefing.pdf"
    path.write_bytes(pdf)
    assert pdf.startswith(b"%PDF-")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    # A4 is 595.28 x 841.89 points; Chromium rounds it a little.
    assert boxes and all(abs(float(w) - 595.3) < 2 and abs(float(h) - 841.9) < 2 for w, h in boxes), boxes[:3]
    assert 2 <= len(boxes) <= 40, f"{len(boxes)} pages"
    tool = shutil.which("pdftoppm")
    if tool is None:
        pytest.skip("pdftoppm (Debian's poppler-utils) not found: the A4 PDF is checked, its first page is "
                    "not drawn as PNG")
    png = ARTIFACTS / "briefing-page1"
    subprocess.run([tool, "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(path), str(png)],
                   check=True, timeout=60, capture_output=True)
    data = png.with_suffix(".png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert abs(height / width - 297 / 210) < 0.01, (width, height)   # portrait A4


@pytest.mark.parametrize("path", [BRIEFING_TOPIC + "briefing", "/thread/{statement}/signons"])
def test_moderator_pages_accessibility(browser, base_url, axe_source, path):
    """axe-core finds no serious or critical violation on the briefing and signer-list pages."""
    context, page, watch = _open_page(browser, base_url, bypass_csp=True)
    page.watch = watch
    try:
        if "{statement}" in path:
            visit(page, BRIEFING_TOPIC + "briefing")
            path = page.locator("main a[href$='/signons']").first.get_attribute("href")
        visit(page, path)
        page.add_script_tag(path=str(axe_source))
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    finally:
        context.close()
    _check(watch)
    bad = [f"[{v['impact']}] {v['id']}: {v['help']}" for v in result["violations"]
           if v["impact"] in ("serious", "critical")]
    assert not bad, f"{path}: " + "; ".join(bad)
