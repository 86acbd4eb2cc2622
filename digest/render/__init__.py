"""Rendering: one Jinja environment, the filters, the email composer, digest formats.

    filters      escaping and text helpers (clean, md_escape, highlight, why, ...)
    items        what an item shows: its links, snippets with the matched words marked
    environment  the Jinja environment: user templates over packaged ones, StrictUndefined
    email        EmailRenderer (whole template or cached fragments) and email assembly
    digest       render_digest: Markdown, text or the HTML email of a digest

No stage logic here: renderers take plain data (a `Digest`) and give text.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers; at run time they load on first use
    from digest.render.digest import FORMATS, render_digest
    from digest.render.email import EmailRenderer, Links, RenderedEmail
    from digest.render.environment import builtin_templates, make_environment
    from digest.render.filters import (
        clean,
        empty_reasons,
        highlight,
        markdown_html,
        md_escape,
        paper_meta,
        preheader,
        safe_url,
        sentences,
        tidy_text,
        why,
    )
    from digest.render.items import item_links, paper_link, paper_links, snippets

#: name -> the module that defines it. Loaded when first asked for (PEP 562): importing
#: `digest.render.email` (a confirmation email) does not load the digest formats.
_WHERE = {
    "FORMATS": "digest.render.digest",
    "render_digest": "digest.render.digest",
    "EmailRenderer": "digest.render.email",
    "Links": "digest.render.email",
    "RenderedEmail": "digest.render.email",
    "builtin_templates": "digest.render.environment",
    "make_environment": "digest.render.environment",
    "clean": "digest.render.filters",
    "empty_reasons": "digest.render.filters",
    "highlight": "digest.render.filters",
    "markdown_html": "digest.render.filters",
    "md_escape": "digest.render.filters",
    "paper_link": "digest.render.items",
    "paper_links": "digest.render.items",
    "item_links": "digest.render.items",
    "snippets": "digest.render.items",
    "paper_meta": "digest.render.filters",
    "preheader": "digest.render.filters",
    "safe_url": "digest.render.filters",
    "sentences": "digest.render.filters",
    "tidy_text": "digest.render.filters",
    "why": "digest.render.filters",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'digest.render' has no attribute {name!r}")


__all__ = [
    "FORMATS",
    "EmailRenderer",
    "Links",
    "RenderedEmail",
    "builtin_templates",
    "clean",
    "empty_reasons",
    "highlight",
    "item_links",
    "make_environment",
    "markdown_html",
    "md_escape",
    "paper_link",
    "paper_links",
    "paper_meta",
    "preheader",
    "render_digest",
    "safe_url",
    "sentences",
    "snippets",
    "tidy_text",
    "why",
]
