"""HTML mail -> readable plain text, with a small block-aware walker over beautifulsoup4."""

from __future__ import annotations

import re
import warnings

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString
from bs4 import MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning

_BLOCK = frozenset("""address article aside blockquote dd div dl dt fieldset figcaption figure footer
form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table tbody thead tfoot tr ul""".split())
_SKIP = frozenset(("script", "style", "head", "title", "template", "noscript", "svg", "object"))
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
MAX_HTML = 2_000_000


def html_to_text(html: str) -> str:
    """Flatten HTML to text: blocks become lines, blockquotes '> ' quotes, cells are spaced,
    <pre> keeps its layout, and links keep their URLs after their text."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(html[:MAX_HTML], "html.parser")
    lines: list[str] = []
    current: list[str] = []
    depth = 0
    link_after: dict[int, str] = {}   # id of a link's last text node -> the link's URL

    pre = [False]   # whether the pending line came from <pre> (kept as written)

    def flush() -> None:
        joined = "".join(current)
        text = joined.rstrip() if pre[0] else _SPACES.sub(" ", joined).strip()
        if text.strip():
            lines.append("> " * depth + text)
        elif lines and lines[-1] != "":
            lines.append("")
        current.clear()
        pre[0] = False

    # descendants is an iterative walk in document order: no recursion on nesting depth.
    for node in soup.descendants:
        if isinstance(node, Tag):
            if node.name in _BLOCK or node.name == "br":
                flush()
            elif node.name in ("td", "th") and current:
                current.append(" ")
            elif node.name == "a":
                href = node.get("href", "")
                strings = list(node.strings)
                if href.startswith(("http:", "https:")) and strings \
                        and href != "".join(strings).strip():
                    link_after[id(strings[-1])] = href
            continue
        # Comments, doctypes, CDATA and processing instructions are markup, not text.
        if not isinstance(node, NavigableString) or isinstance(node, PreformattedString):
            continue
        parents = [p.name for p in node.parents]
        if _SKIP.intersection(parents):
            continue
        level = parents.count("blockquote")
        if level != depth:
            flush()
            depth = level
        text = str(node)
        if "pre" in parents:
            # Preformatted text keeps its spaces and line breaks.
            first, *rest = text.split("\n")
            pre[0] = True
            current.append(first)
            for part in rest:
                lines.append("> " * depth + "".join(current).rstrip())
                current.clear()
                current.append(part)
        else:
            current.append(text.replace("\n", " "))
        if id(node) in link_after:
            current.append(f" <{link_after.pop(id(node))}>")
    flush()
    return "\n".join(lines).strip("\n")
