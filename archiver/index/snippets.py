"""Snippets: the stretch of a message with most matched words, marked, as HTML."""

from __future__ import annotations

import html

from .analysis import _WORD, STEMMED, terms


def snippet(own: str, quoted: str, lang: str, wanted: set[str], width: int = 220) -> str:
    """Return an HTML snippet of a message: the stretch of its own words (else its quoted text)
    with most matched words, each marked <mark>, everything else escaped."""
    lang = lang if lang in STEMMED else ""
    for text in (own, quoted):
        text = " ".join(text.split())
        spans = [m.span() for m in _WORD.finditer(text)
                 if wanted.intersection(terms(m.group(0).lower(), lang))]
        if spans:
            best = max(range(len(spans)), key=lambda i: sum(1 for s in spans[i:] if s[0] < spans[i][0] + width))
            start = max(0, spans[best][0] - 40)
            end = min(len(text), start + width)
            out, at = [], start
            for a, b in spans:
                if a >= start and b <= end:
                    out += [html.escape(text[at:a]), "<mark>", html.escape(text[a:b]), "</mark>"]
                    at = b
            out.append(html.escape(text[at:end]))
            return ("… " if start else "") + "".join(out) + (" …" if end < len(text) else "")
    text = " ".join(own.split())
    return html.escape(text[:width]) + (" …" if len(text) > width else "")
