"""HTML mail -> readable plain text, with a small block-aware walker over beautifulsoup4."""

from __future__ import annotations

import html as htmllib
import re
import warnings

from bs4 import BeautifulSoup, CData, NavigableString, Tag
from bs4.element import PreformattedString
from bs4 import MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning
from bs4.exceptions import ParserRejectedMarkup

_BLOCK = frozenset("""address article aside blockquote dd div dl dt fieldset figcaption figure footer
form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table tbody thead tfoot tr ul""".split())
_SKIP = frozenset(("script", "style", "head", "title", "template", "noscript", "svg", "object"))
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_TAG = re.compile(r"<[^>]*>?")
# The strings that make up a link's text (bs4's Tag.strings: no comments, scripts or styles).
_LINK_STRINGS = (NavigableString, CData)
MAX_HTML = 2_000_000
# Text written out, in characters: quote markers repeat on every line, so 500 nested
# blockquotes around a <pre> of short lines would otherwise turn kilobytes into gigabytes.
MAX_TEXT = 2_000_000
# beautifulsoup4 re-links the whole chain of open tags above each node it adds to a tag that
# already has content: its cost is the sum of those depths, quadratic in deep, busy markup
# (100,000 unclosed <div>s and as many words: hours). Above this estimate the words are kept
# without the markup; ordinary mail stays far below it.
MAX_NESTING_COST = 10_000_000
_TAG_TOKEN = re.compile(r"<(/?)([A-Za-z][^\s/>]*)[^>]*>")
_VOID = frozenset("area base br col embed hr img input keygen link meta param source track wbr".split())


def html_to_text(html: str) -> str:
    """Flatten HTML to text: blocks become lines, blockquotes '> ' quotes, cells are spaced,
    <pre> keeps its layout, and links keep their URLs after their text."""
    return flatten(html)[0]


def flatten(html: str) -> tuple[str, tuple[str, ...]]:
    """Return html_to_text's text and why it is less than the HTML: 'body-truncated' (cut at
    MAX_HTML in or MAX_TEXT out), 'html-unparsed' (only the words kept, tags dropped)."""
    cut = len(html) > MAX_HTML
    html = html[:MAX_HTML]
    if _nesting_cost(html) > MAX_NESTING_COST:
        return _strip_tags(html), ("html-unparsed",) + (("body-truncated",) if cut else ())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        try:
            soup = BeautifulSoup(html, "html.parser")
        except ParserRejectedMarkup:
            # html.parser gives up on some broken declarations ("<![ "): keep the words.
            return _strip_tags(html), ("html-unparsed",) + (("body-truncated",) if cut else ())
    link_after = _link_ends(soup)   # id of a link's last text node -> the link's URL
    lines: list[str] = []
    current: list[str] = []
    state = {"depth": 0, "pre": False, "size": 0}   # the pending line's quote depth and <pre>

    def emit(line: str) -> None:
        lines.append(line)
        state["size"] += len(line) + 1

    def flush() -> None:
        joined = "".join(current)
        text = joined.rstrip() if state["pre"] else _SPACES.sub(" ", joined).strip()
        if text.strip():
            emit("> " * state["depth"] + text)
        elif lines and lines[-1] != "":
            emit("")
        current.clear()
        state["pre"] = False

    # descendants is an iterative walk in document order: no recursion on nesting depth. The
    # tags still open are kept on a stack (level, in <pre>, in a skipped element), so a text
    # node learns its context in constant time instead of walking up all its parents.
    opened: list[tuple[Tag, int, bool, bool]] = [(soup, 0, False, False)]
    for node in soup.descendants:
        while opened[-1][0] is not node.parent:
            opened.pop()
        if state["size"] > MAX_TEXT:
            cut = True
            break
        _, level, in_pre, skip = opened[-1]
        if isinstance(node, Tag):
            if node.name in _BLOCK or node.name == "br":
                flush()
            elif node.name in ("td", "th") and current:
                current.append(" ")
            opened.append((node, level + (node.name == "blockquote"),
                           in_pre or node.name == "pre", skip or node.name in _SKIP))
            continue
        # Comments, doctypes, CDATA and processing instructions are markup, not text.
        if not isinstance(node, NavigableString) or isinstance(node, PreformattedString) or skip:
            continue
        if level != state["depth"]:
            flush()
            state["depth"] = level
        text = str(node)
        if in_pre:
            # Preformatted text keeps its spaces and line breaks.
            first, *rest = text.split("\n")
            state["pre"] = True
            current.append(first)
            for part in rest:
                emit("> " * state["depth"] + "".join(current).rstrip())
                current.clear()
                current.append(part)
                if state["size"] > MAX_TEXT:
                    break
        else:
            current.append(text.replace("\n", " "))
        if id(node) in link_after:
            current.append(f" <{link_after[id(node)]}>")
    flush()
    cut = cut or state["size"] > MAX_TEXT
    return "\n".join(lines).strip("\n"), ("body-truncated",) if cut else ()


class _Link:
    """A web link being walked: its URL, its last text node, and enough of its text to tell
    whether the text is the URL itself (for it and for every link around it)."""

    __slots__ = ("href", "bound", "last", "text", "overflow")

    def __init__(self, href: str, outer: _Link | None):
        self.href, self.last, self.text, self.overflow = href, None, "", False
        self.bound = max(len(href), outer.bound if outer is not None else 0)

    def add(self, text: str) -> None:
        if self.overflow:
            return
        # Only the stripped text is compared with a URL: leading space never counts, and text
        # longer than every URL it could be compared with differs whatever follows.
        self.text = (self.text + text).lstrip()
        if len(self.text.rstrip()) > self.bound:
            self.overflow, self.text = True, ""
        else:
            self.text = self.text[:self.bound + 1]

    def differs(self) -> bool:
        return self.overflow or self.text.strip() != self.href


def _link_ends(soup: BeautifulSoup) -> dict[int, str]:
    """Map the last text node of each web link to its URL, where the text is not the URL.

    One walk with a stack of open tags: each text node counts towards its innermost link, whose
    text passes to the link around it when it closes (nested links are broken HTML)."""
    links: list[_Link] = []
    opened: list[tuple[Tag, _Link | None]] = [(soup, None)]

    def close() -> None:
        _, link = opened.pop()
        outer = opened[-1][1]
        if link is not None and outer is not None and outer is not link and link.last is not None:
            outer.last = link.last
            if link.overflow:
                outer.overflow = True
            else:
                outer.add(link.text)

    for node in soup.descendants:
        while opened[-1][0] is not node.parent:
            close()
        link = opened[-1][1]
        if isinstance(node, Tag):
            href = node.get("href", "") if node.name == "a" else ""
            if isinstance(href, str) and href.startswith(("http:", "https:")):
                link = _Link(href, link)
                links.append(link)
            opened.append((node, link))
        elif link is not None and type(node) in _LINK_STRINGS:
            link.last = node
            link.add(str(node))
    while len(opened) > 1:
        close()
    # In document order of the links: an inner link ending on the same text node wins.
    return {id(link.last): link.href for link in links if link.last is not None and link.differs()}


def _nesting_cost(html: str) -> int:
    """Estimate beautifulsoup4's tree-building cost: for each tag or text added to an open tag
    that already holds something, the number of tags open. Tags are matched as bs4 matches them:
    an end tag closes everything opened after its start tag, and one never opened is ignored."""
    stack: list[list] = []   # [name, holds something] of each open tag
    opened: dict[str, int] = {}
    cost = last = 0

    def add() -> None:
        nonlocal cost
        if stack:
            if stack[-1][1]:
                cost += len(stack)
            stack[-1][1] = True

    for match in _TAG_TOKEN.finditer(html):
        if html[last:match.start()].strip():
            add()
        last = match.end()
        name = match.group(2).lower()
        if match.group(1):
            if opened.get(name):
                while stack:
                    top = stack.pop()[0]
                    opened[top] -= 1
                    if top == name:
                        break
            continue
        add()
        if name not in _VOID and not match.group(0).endswith("/>"):
            stack.append([name, False])
            opened[name] = opened.get(name, 0) + 1
        if cost > MAX_NESTING_COST:
            break
    return cost


def _strip_tags(html: str) -> str:
    """Text of markup the parser rejected: tags dropped, entities decoded, blank runs folded."""
    out: list[str] = []
    for line in htmllib.unescape(_TAG.sub(" ", html)).split("\n"):
        line = _SPACES.sub(" ", line).strip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")
