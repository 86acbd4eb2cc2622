"""One Jinja environment for everything a person reads.

Templates come from the user's directory first (config `[render] templates`), then the
packaged ones, so a user can override one file without copying all. Autoescape is on
for HTML and XML templates, StrictUndefined everywhere.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import jinja2

from digest.render.filters import (
    clean,
    highlight,
    markdown_html,
    md_escape,
    paper_meta,
    safe_url,
    sentences,
    why,
)
from digest.render.items import (
    item_links,
    md_links,
    md_url,
    paper_link,
    paper_links,
    snippets,
)


def builtin_templates() -> Path:
    """The packaged templates (wheel: digest/templates; source tree: ./templates)."""
    packaged = Path(str(resources.files("digest"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


def _escape_by_name(name: str | None) -> bool:
    """Autoescape HTML and XML templates (`*.html.j2`, `*.atom.xml.j2`), not text ones."""
    return name is not None and (".html" in name or ".xml" in name)


def make_environment(user_dir: Path | None = None) -> jinja2.Environment:
    """The environment: user templates over packaged ones, autoescape by file name."""
    loaders: list[jinja2.BaseLoader] = []
    if user_dir is not None and user_dir.is_dir() and user_dir != builtin_templates():
        loaders.append(jinja2.FileSystemLoader(str(user_dir)))
    loaders.append(jinja2.FileSystemLoader(str(builtin_templates())))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=_escape_by_name,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        clean=clean,
        md=md_escape,
        sentences=sentences,
        safe_url=safe_url,
        paper_meta=paper_meta,
        paper_link=paper_link,
        paper_links=paper_links,
        item_links=item_links,
        snippets=snippets,
        md_url=md_url,
        md_links=md_links,
        highlight=highlight,
        why=why,
        markdown=markdown_html,
    )
    return env
