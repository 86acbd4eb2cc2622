"""A digest as Markdown, plain text or the HTML email: what previews and the archive show."""

from __future__ import annotations

from datetime import datetime

import jinja2

from digest.errors import RenderError
from digest.model import Digest
from digest.render.email import EmailRenderer, Links
from digest.render.environment import make_environment
from digest.render.filters import empty_reasons

FORMATS = {"markdown": "digest.md.j2", "text": "digest.txt.j2", "html": "email/digest.html.j2"}


def render_digest(
    digest: Digest,
    fmt: str,
    *,
    env: jinja2.Environment | None = None,
    now: datetime | None = None,
    base_url: str = "",
    links: Links | None = None,
    intro: str = "",
) -> str:
    """Render a digest as `markdown`, `text` or `html` (the email layout, CSS inlined).

    `links` carries the reader's manage/unsubscribe URLs (`email.Links`); a preview
    has none and says so in the footer.
    """
    links = links if links is not None else Links()
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    env = env or make_environment()
    try:
        if fmt == "html":
            renderer = EmailRenderer(env, base_url=base_url, intro=intro, brand=digest.title)
            return renderer.render_whole(digest, links).html
        template = env.get_template(FORMATS[fmt])
        notes = list(digest.notes) or empty_reasons(digest)
        return template.render(digest=digest, now=now, notes=notes, links=links, base_url=base_url)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name!r} not found in the templates directory") from None
    except jinja2.TemplateError as exc:
        where = getattr(exc, "filename", None) or FORMATS[fmt]
        line = getattr(exc, "lineno", None)
        raise RenderError(f"{where}:{line or '?'}: template error: {exc}") from None
