"""One Jinja environment for everything a person reads.

Templates come from the user's directory first (config `[render] templates`), then the
packaged ones, so a user can override one file without copying all. Autoescape is on
for HTML and XML templates, StrictUndefined everywhere; Markdown output escapes
untrusted text with the `md` filter; every format drops control and bidi-override
characters that could disguise text (`clean`).
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from importlib import resources
from pathlib import Path

import jinja2
import markdown as markdown_lib
import nh3
from markupsafe import Markup, escape

from digest.errors import RenderError
from digest.model import Digest, DigestItem, Paper, Profile

FORMATS = {"markdown": "digest.md.j2", "text": "digest.txt.j2", "html": "email/digest.html.j2"}

# C0/C1 controls except tab/newline, and the bidi embedding/override/isolate characters.
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Inline specials; `#`, `+`, `-`, `>` and `1.` matter only where a line starts.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~!&])")
_MD_LINE_START = re.compile(r"^(?:[#+\-=>]|(\d+)[.)])")
_SPACES = re.compile(r"\s+")


def builtin_templates() -> Path:
    """The packaged templates (wheel: digest/templates; source tree: ./templates)."""
    packaged = Path(str(resources.files("digest"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


def clean(text: object) -> str:
    """Text safe to show anywhere: controls and bidi overrides removed, spaces collapsed."""
    return _SPACES.sub(" ", _UNSAFE.sub("", str(text))).strip()


def md_escape(text: object) -> str:
    """Inline Markdown that shows `text` literally: no links, HTML or emphasis from it."""
    return _MD_LINE_START.sub(_escape_line_start, _MD_SPECIAL.sub(r"\\\1", clean(text)))


def _escape_line_start(m: re.Match[str]) -> str:
    return f"{m.group(1)}\\{m.group(0)[-1]}" if m.group(1) else "\\" + m.group(0)


def sentences(text: object, count: int = 2, max_chars: int = 400) -> str:
    """The first `count` sentences of an abstract, cut at `max_chars` with an ellipsis."""
    plain = clean(text)
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", plain)
    out = " ".join(parts[:count])
    if len(out) > max_chars:
        out = out[: max_chars - 1].rsplit(" ", 1)[0] + "…"
    return out


def safe_url(url: object) -> str:
    """`url` when it is http(s) with no spaces or quotes, else "" (no javascript: links)."""
    text = clean(url) if url else ""
    if re.fullmatch(r"https?://[^\s\"'<>`]+", text):
        return text
    return ""


def paper_meta(paper: Paper) -> str:
    """`Deepmind · 2025-10-06 · ▲ 8`: who, when and how popular, plain text."""
    if paper.organization:
        who = clean(paper.organization)
    elif paper.authors_count:
        who = f"{paper.authors_count} author{'' if paper.authors_count == 1 else 's'}"
    else:
        who = "authors unknown"
    parts = [who]
    if paper.published:
        parts.append(paper.published.isoformat())
    if paper.upvotes:
        parts.append(f"▲ {paper.upvotes}")
    return " · ".join(parts)


def paper_link(paper: Paper, base_url: str = "") -> str:
    """Where a title links: the paper's own page, its arXiv page, else our archive permalink."""
    if safe_url(paper.url):
        return safe_url(paper.url)
    if paper.arxiv_id and re.fullmatch(r"[\w./-]+", paper.arxiv_id):
        return f"https://arxiv.org/abs/{paper.arxiv_id}"
    if base_url:
        return f"{base_url}papers/{paper.id}.html"
    return ""


@functools.lru_cache(maxsize=65536)
def _spans(text: str, profile: Profile) -> tuple[tuple[int, int], ...]:
    from digest.rank import match_spans

    return tuple(match_spans(text, profile))


def highlight(text: object, profile: Profile, fmt: str = "html") -> str:
    """`text` with the profile's matching words marked: <mark> (html), **bold** (markdown).

    Every other character is escaped for the format, so untrusted text stays inert.
    """
    plain = clean(text)
    escape_part = {
        "html": lambda t: str(escape(t)),
        "markdown": lambda t: _MD_SPECIAL.sub(r"\\\1", t),
    }.get(fmt, str)
    marks = {"html": ("<mark>", "</mark>"), "markdown": ("**", "**")}.get(fmt, ("", ""))
    out, pos = [], 0
    for start, end in _spans(plain, profile):
        out += [escape_part(plain[pos:start]), marks[0], escape_part(plain[start:end]), marks[1]]
        pos = end
    out.append(escape_part(plain[pos:]))
    joined = "".join(out)
    if fmt == "markdown":
        return _MD_LINE_START.sub(_escape_line_start, joined)
    return Markup(joined) if fmt == "html" else joined


def why(item: DigestItem, fmt: str = "text") -> str:
    """The one-line "why this paper": matched keywords (emphasised) and where they matched."""
    if not item.matches:
        return "popular today"
    parts = []
    for match in item.matches:
        where = " + ".join(match.fields)
        if fmt == "html":
            parts.append(str(Markup("<strong>%s</strong> (%s)") % (clean(match.keyword), where)))
        elif fmt == "markdown":
            parts.append(f"**{md_escape(match.keyword)}** ({where})")
        else:
            parts.append(f"{clean(match.keyword)} ({where})")
    joined = "matches " + ", ".join(parts)
    return Markup(joined) if fmt == "html" else joined


_ALLOWED_TAGS = {"p", "br", "strong", "em", "a", "ul", "ol", "li", "code", "blockquote"}


def markdown_html(text: object) -> Markup:
    """Trusted-looking Markdown from config (intro/footer notes) -> sanitised HTML.

    Python-Markdown passes raw HTML and `javascript:` links through, so its output goes
    through nh3 with a small allow-list; links get rel="noopener noreferrer".
    """
    html = markdown_lib.markdown(str(text), output_format="html")
    return Markup(
        nh3.clean(
            html,
            tags=_ALLOWED_TAGS,
            attributes={"a": {"href", "title"}},
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer",
        )
    )


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
        highlight=highlight,
        why=why,
        markdown=markdown_html,
    )
    return env


def render_digest(
    digest: Digest,
    fmt: str,
    *,
    env: jinja2.Environment | None = None,
    now: datetime | None = None,
    base_url: str = "",
    links: object = None,
    intro: str = "",
) -> str:
    """Render a digest as `markdown`, `text` or `html` (the email layout, CSS inlined).

    `links` carries the reader's manage/unsubscribe URLs (`compose.Links`); a preview
    has none and says so in the footer.
    """
    from digest.compose import EmailRenderer, Links, empty_reasons

    links = links if links is not None else Links()
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    env = env or make_environment()
    try:
        if fmt == "html":
            renderer = EmailRenderer(env, base_url=base_url, intro=intro, brand=digest.title)
            return renderer.render_whole(digest, links).html  # type: ignore[arg-type]
        template = env.get_template(FORMATS[fmt])
        notes = list(digest.notes) or empty_reasons(digest)
        return template.render(digest=digest, now=now, notes=notes, links=links, base_url=base_url)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name!r} not found in the templates directory") from None
    except jinja2.TemplateError as exc:
        where = getattr(exc, "filename", None) or FORMATS[fmt]
        line = getattr(exc, "lineno", None)
        raise RenderError(f"{where}:{line or '?'}: template error: {exc}") from None
