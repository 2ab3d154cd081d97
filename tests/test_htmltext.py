"""HTML mail -> text: blocks, line breaks, blockquotes, dropped elements, links, bounds."""

from __future__ import annotations

import re

import pytest

from archiver.htmltext import html_to_text


def test_blocks_become_lines():
    html = "<div>one</div><div>two<br>three</div><ul><li>a</li><li>b</li></ul><h2>Title</h2><p>end</p>"
    assert html_to_text(html) == "one\ntwo\nthree\n\na\nb\nTitle\nend"


def test_line_breaks_and_blank_lines():
    assert html_to_text("line1<br>line2<br/><br/>line3") == "line1\nline2\n\nline3"


def test_inline_whitespace_is_collapsed():
    assert html_to_text("<p>Hello\n   world,\tall&nbsp;&nbsp;of you</p>") == "Hello world, all of you"


def test_blockquotes_become_quote_markers():
    html = "<p>own</p><blockquote><p>q1</p><blockquote>q2</blockquote><p>q1 again</p></blockquote><p>after</p>"
    assert html_to_text(html) == "own\n\n> q1\n\n> > q2\n\n> q1 again\n\nafter"


def test_gmail_style_quote():
    html = ('<div dir="ltr">Agreed.</div><div class="gmail_quote">On Tue, Jane wrote:<br>'
            '<blockquote class="gmail_quote" type="cite"><div>Shall we meet?</div></blockquote></div>')
    assert html_to_text(html) == "Agreed.\nOn Tue, Jane wrote:\n\n> Shall we meet?"


def test_script_style_head_and_comments_are_dropped():
    html = ("<html><head><title>Title</title><style>p{color:red}</style></head><body>"
            "<script>var secret = 1;</script><!-- a comment --><noscript>enable js</noscript>"
            "<p>visible</p></body></html>")
    assert html_to_text(html) == "visible"


def test_links_keep_their_urls():
    html = ('<p>Read <a href="https://docs.bestbits.example/draft">the draft</a>, or '
            '<a href="http://old.bestbits.example/">http://old.bestbits.example/</a> or '
            '<a href="mailto:jane.doe@civil.example">write</a>.</p>')
    assert html_to_text(html) == ("Read the draft <https://docs.bestbits.example/draft>, or "
                                  "http://old.bestbits.example/ or write.")


@pytest.mark.parametrize("html", [
    '<p>See <a href="https://docs.bestbits.example/d"><span style="color:blue">the doc</span></a> now</p>',
    '<p>See <a href="https://docs.bestbits.example/d">the <b>doc</b></a> now</p>',
])
def test_links_with_formatted_text_keep_their_urls(html):
    assert html_to_text(html) == "See the doc <https://docs.bestbits.example/d> now"


def test_entities_are_decoded():
    assert html_to_text("<p>a &amp; b &lt;c&gt; caf&eacute; &#8364;5</p>") == "a & b <c> café €5"


def test_pre_keeps_its_line_breaks():
    assert html_to_text("<pre>line1\nline2\nline3</pre>") == "line1\nline2\nline3"


def test_pre_keeps_its_indentation():
    assert html_to_text("<pre>def f():\n    return 1</pre>") == "def f():\n    return 1"


def test_table_cells_are_separated():
    text = html_to_text("<table><tr><th>Name</th><th>Org</th></tr><tr><td>Jane</td><td>Civil</td></tr></table>")
    assert re.fullmatch(r"Name\s+Org\nJane\s+Civil", text)


def test_table_rows_are_lines():
    text = html_to_text("<table><tr><td>Jane</td></tr><tr><td>Bob</td></tr></table>")
    assert text == "Jane\nBob"


def test_plain_text_and_empty_input():
    assert html_to_text("just text, no tags") == "just text, no tags"
    assert html_to_text("") == ""
    assert html_to_text("<p></p><div> </div>") == ""


def test_deep_nesting_does_not_recurse():
    html = "<div>" * 5000 + "deep" + "</div>" * 5000
    assert html_to_text(html) == "deep"


def test_deep_blockquotes():
    html = "<blockquote>" * 300 + "deepest" + "</blockquote>" * 300
    assert html_to_text(html) == "> " * 300 + "deepest"


def test_broken_markup_is_tolerated():
    assert html_to_text("<p>unclosed <b>bold <i>both</p><p>next") == "unclosed bold both\nnext"
