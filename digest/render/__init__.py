"""Rendering: one Jinja environment, the filters, the email composer, digest formats.

    filters      escaping and text helpers (clean, md_escape, highlight, why, ...)
    environment  the Jinja environment: user templates over packaged ones, StrictUndefined
    email        EmailRenderer (whole template or cached fragments) and email assembly
    digest       render_digest: Markdown, text or the HTML email of a digest

No stage logic here: renderers take plain data (a `Digest`) and give text.
"""

from digest.render.digest import FORMATS, render_digest
from digest.render.email import EmailRenderer, Links, RenderedEmail
from digest.render.environment import builtin_templates, make_environment
from digest.render.filters import (
    clean,
    empty_reasons,
    highlight,
    markdown_html,
    md_escape,
    paper_link,
    paper_meta,
    preheader,
    safe_url,
    sentences,
    tidy_text,
    why,
)

__all__ = [
    "FORMATS",
    "EmailRenderer",
    "Links",
    "RenderedEmail",
    "builtin_templates",
    "clean",
    "empty_reasons",
    "highlight",
    "make_environment",
    "markdown_html",
    "md_escape",
    "paper_link",
    "paper_meta",
    "preheader",
    "render_digest",
    "safe_url",
    "sentences",
    "tidy_text",
    "why",
]
