"""HTML fragments as text: a feed's HTML-typed titles and descriptions."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser


def html_text(markup: str) -> str:
    """The text of an HTML fragment, tags dropped and entities decoded (`<b>x</b> &amp;` ->
    `x &`); text without markup is returned as it is."""
    if "<" not in markup and "&" not in markup:
        return markup
    tree = LexborHTMLParser(f"<body>{markup}</body>")
    return tree.body.text(separator=" ") if tree.body is not None else markup
