"""Snippets: the stretch of a message with most matched words, marked, as HTML."""

from __future__ import annotations

import html

from .analysis import _WORD, STEMMED, terms


SNIPPET_CHARS = 10_000   # of a text, read for its snippet: the work grows with the text


def snippet(own: str, quoted: str, lang: str, wanted: set[str], width: int = 220) -> str:
    """Return an HTML snippet of a message: the stretch of its own words (else its quoted text)
    with most matched words, each marked <mark>, everything else escaped. Only the first
    SNIPPET_CHARS of each text are read."""
    lang = lang if lang in STEMMED else ""
    for text in (own, quoted):
        text = " ".join(text[:SNIPPET_CHARS].split())
        spans = [m.span() for m in _WORD.finditer(text)
                 if wanted.intersection(terms(m.group(0).lower(), lang))]
        if spans:
            best = _densest(spans, width)
            start = max(0, spans[best][0] - 40)
            end = min(len(text), start + width)
            out, at = [], start
            for a, b in spans:
                if a >= start and b <= end:
                    out += [html.escape(text[at:a]), "<mark>", html.escape(text[a:b]), "</mark>"]
                    at = b
            out.append(html.escape(text[at:end]))
            return ("… " if start else "") + "".join(out) + (" …" if end < len(text) else "")
    text = " ".join(own[:SNIPPET_CHARS].split())
    return html.escape(text[:width]) + (" …" if len(text) > width else "")


def _densest(spans: list[tuple[int, int]], width: int) -> int:
    """Return the first span from which a stretch of `width` characters holds most spans (one
    pass: the end moves forward only)."""
    best, most, end = 0, 0, 0
    for i, (start, _) in enumerate(spans):
        end = max(end, i)
        while end < len(spans) and spans[end][0] < start + width:
            end += 1
        if end - i > most:
            best, most = i, end - i
    return best
