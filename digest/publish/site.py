"""The HTML pages of the archive: what each page is made of, and how to render it.

Every page is planned as a `Page`: its path, a hash of exactly the inputs it shows, and
a function that renders it. Planning is cheap (hashes of fingerprints); rendering only
happens for pages whose inputs changed. Pages that belong to one day (its day page and
its permalinks) are planned only for the days this publish read (`day_pages`); the
site-wide ones (`index_page`, and the profile pages in `profiles`) every time, from the
saved picks. All links are relative, so the site works from file:// and under any path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import jinja2
from markupsafe import Markup, escape

from digest.model import Paper
from digest.publish.manifest import inputs_hash
from digest.publish.names import paper_file
from digest.publish.views import Archive, Listing, day_href, external_links, item_view, paper_href
from digest.render import paper_meta

#: Bump when the pages change in a way the templates' text does not show.
SITE_VERSION = 2
#: Top picks per profile and day on the index page.
INDEX_TOP = 3
#: Templates whose text is part of every page's inputs hash.
TEMPLATES = (
    "site/base.html.j2",
    "site/macros.html.j2",
    "site/index.html.j2",
    "site/day.html.j2",
    "site/profile.html.j2",
    "site/paper.html.j2",
    "site/feed.atom.xml.j2",
    "site/sitemap.xml.j2",
)


@dataclass(frozen=True, slots=True)
class Page:
    """One file of the site: where it goes, what it depends on, how to make it."""

    path: str  #: relative to the output directory, with "/" separators
    key: str  #: hash of its inputs; equal keys mean equal files
    render: Callable[[], bytes]


def template_hash(env: jinja2.Environment, names: tuple[str, ...]) -> str:
    """A hash of the templates' sources (a user override changes it)."""
    assert env.loader is not None
    sources = [env.loader.get_source(env, name)[0] for name in names]
    return inputs_hash(*sources)


def render(env: jinja2.Environment, name: str, **context: object) -> bytes:
    """A template rendered to UTF-8 bytes."""
    return env.get_template(name).render(**context).encode("utf-8", "replace")


def profiles_signature(archive: Archive) -> tuple:
    """What every page shows of the profiles (the header lists them all)."""
    return tuple((p.name, p.slug, p.keywords, p.exclude) for p in archive.profiles)


def index_page(archive: Archive, env: jinja2.Environment, globals_key: str) -> Page:
    """index.html: recent days with top picks, every day, every profile."""
    common = {"site_title": archive.title, "profiles": archive.profiles}

    def render_index() -> bytes:
        recent = []
        for day in archive.days[: archive.recent_days]:
            picks = archive.picks.get(day, [])
            per_profile = []
            for i, info in enumerate(archive.profiles):
                mine = [p for p in picks if p.profile == i]
                top = [item_view(archive, p, "") for p in mine[:INDEX_TOP]]
                per_profile.append((info, len(mine), top))
            recent.append((day, day_href("", day), archive.counts[day], per_profile))
        all_days = [(d, day_href("", d), archive.counts[d]) for d in archive.days]
        totals = [0] * len(archive.profiles)
        for day in archive.days:
            for i, n in enumerate(archive.picks_per_profile(day)):
                totals[i] += n
        return render(
            env,
            "site/index.html.j2",
            root="",
            page_title=archive.title,
            recent=recent,
            all_days=all_days,
            totals=totals,
            paper_count=sum(archive.counts.values()),
            subscribe_url=archive.subscribe_url,
            **common,
        )

    key = inputs_hash(
        globals_key,
        profiles_signature(archive),
        archive.recent_days,
        [(d.isoformat(), archive.day_keys[d]) for d in archive.days],
        archive.subscribe_url,
    )
    return Page("index.html", key, render_index)


def other_papers_html(
    papers: list[Paper], permalinked: set[str], listings: dict[str, Listing]
) -> Markup:
    """The `<li>` of each paper of a day no profile picked: its title, linking to its
    permalink or else to its source, its meta line and its other links, under an anchor
    that search results point at.

    Made here rather than in day.html.j2: a year at 2,000 papers a day is 730,000 of these
    rows, and a Jinja loop with filters costs several times what this does. Every piece of
    paper text goes through `escape` (all of a day's at once); urls are `readable_links`
    (in `listings`), which passed `safe_url`.
    """
    texts: list[str] = []  # each paper's href, title, meta, then its links' label and url
    more_links: list[int] = []
    for p in papers:
        listed = listings[p.id]
        if p.id in permalinked:
            texts += (paper_href("../", p.id), listed.title, paper_meta(p))
            more_links.append(0)
            continue
        links = listed.links
        texts += (links[0][1], listed.title, paper_meta(p))
        for link in links[1:]:
            texts += link
        more_links.append(len(links) - 1)
    escaped = _escaped(texts)
    rows = []
    at = 0
    for p, n in zip(papers, more_links, strict=True):
        href, title, meta = escaped[at : at + 3]
        more = "".join(
            [
                f' · <a href="{escaped[k + 1]}" rel="noopener noreferrer">{escaped[k]}</a>'
                for k in range(at + 3, at + 3 + 2 * n, 2)
            ]
        )
        at += 3 + 2 * n
        external = ' rel="noopener noreferrer"' if href.startswith("http") else ""
        rows.append(
            f'<li class="item" id="{listings[p.id].anchor}"><a class="title" href="{href}"'
            f'{external}>{title}</a><div class="meta">{meta}{more}</div></li>\n'
        )
    return Markup("".join(rows))


def _escaped(texts: list[str]) -> list[str]:
    """`escape` of each text, as plain strings. One call for all of them, joined at NUL
    (which `escape` leaves alone, and which cleaned text never holds): `escape` makes a
    Markup object each call, and a day page would make ten thousand of them."""
    joined = "\0".join(texts)
    if joined.count("\0") != len(texts) - 1:  # a NUL of its own: one at a time
        return [str(escape(t)) for t in texts]
    return str.split(escape(joined), "\0") if texts else []


def day_pages(archive: Archive, env: jinja2.Environment, globals_key: str, day: date) -> list[Page]:
    """days/<day>.html (a section per profile, then every other paper of the day) and the
    permalinks of the day's papers that get one; the day must be among those read."""
    common = {"site_title": archive.title, "profiles": archive.profiles}
    profiles_sig = profiles_signature(archive)
    n = archive.days.index(day)
    previous = archive.days[n + 1] if n + 1 < len(archive.days) else None
    permalinked = archive.permalinked(day)

    def render_day() -> bytes:
        picks = archive.picks.get(day, [])
        sections = [
            (info, [item_view(archive, p, "../") for p in picks if p.profile == i])
            for i, info in enumerate(archive.profiles)
        ]
        picked = {p.paper_id for p in picks}
        others = [p for p in archive.day_papers[day] if p.id not in picked]
        return render(
            env,
            "site/day.html.j2",
            root="../",
            page_title=f"{day.isoformat()} — {archive.title}",
            day=day,
            count=archive.counts[day],
            sections=sections,
            others=len(others),
            others_html=other_papers_html(others, permalinked, archive.day_listings(day)),
            previous=(previous, day_href("../", previous)) if previous else None,
            **common,
        )

    key = inputs_hash(globals_key, profiles_sig, day.isoformat(), archive.day_keys[day], previous)
    pages = [Page(f"days/{day.isoformat()}.html", key, render_day)]

    for paper in archive.day_papers[day]:
        if paper.id not in permalinked:
            continue
        picks = archive.picks_of_paper.get(paper.id, [])

        def render_paper(paper=paper, picks=picks) -> bytes:
            return render(
                env,
                "site/paper.html.j2",
                root="../",
                page_title=f"{paper.title} — {archive.title}",
                paper=paper,
                day=day,
                day_href=day_href("../", day),
                picks=[
                    (p.day, day_href("../", p.day), archive.profiles[p.profile], p.why)
                    for p in picks
                ],
                links=external_links(paper),
                **common,
            )

        key = inputs_hash(
            globals_key,
            profiles_sig,
            archive.fingerprints[paper.id],
            [(p.day, p.profile, p.matches) for p in picks],
        )
        pages.append(Page(f"papers/{paper_file(paper.id)}", key, render_paper))
    return pages
