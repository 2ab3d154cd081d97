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
    """Flatten HTML to text: blocks become lines, blockquotes become '> ' quotes, links keep URLs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(html[:MAX_HTML], "html.parser")
    lines: list[str] = []
    current: list[str] = []
    current_depth = 0

    def flush() -> None:
        text = _SPACES.sub(" ", "".join(current)).strip()
        if text:
            lines.append("> " * current_depth + text)
        elif lines and lines[-1] != "":
            lines.append("")
        current.clear()

    # descendants is an iterative walk in document order: no recursion on nesting depth.
    for node in soup.descendants:
        if isinstance(node, Tag):
            if node.name in _BLOCK or node.name == "br":
                flush()
            continue
        # Comments, doctypes, CDATA and processing instructions are markup, not text.
        if not isinstance(node, NavigableString) or isinstance(node, PreformattedString):
            continue
        parents = [p.name for p in node.parents]
        if _SKIP.intersection(parents):
            continue
        depth = parents.count("blockquote")
        if depth != current_depth:
            flush()
            current_depth = depth
        text = str(node)
        if "pre" not in parents:
            text = text.replace("\n", " ")
            current.append(text)
        else:
            for i, part in enumerate(text.split("\n")):
                if i:
                    flush()
                current.append(part)
        link = node.parent if node.parent is not None and node.parent.name == "a" else None
        if link is not None and link.get("href", "").startswith(("http:", "https:")) \
                and link.get("href") != text.strip():
            current.append(f" <{link['href']}>")
    flush()
    return "\n".join(lines).strip("\n")
