"""The HTML pages of the archive: what each page is made of, and how to render it.

Every page is planned as a `Page`: its path, a hash of exactly the inputs it shows, and
a function that renders it. Planning is cheap (hashes of fingerprints); rendering only
happens for pages whose inputs changed. All links are relative (every page lives at the
root or one directory below it), so the site works from file:// and under any base path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jinja2

from digest.publish.manifest import inputs_hash
from digest.publish.names import paper_file
from digest.publish.views import (
    Archive,
    PaperLink,
    day_href,
    external_links,
    item_view,
    paper_href,
)

#: Bump when the pages change in a way the templates' text does not show.
SITE_VERSION = 1
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


def _render(env: jinja2.Environment, name: str, **context: object) -> bytes:
    return env.get_template(name).render(**context).encode("utf-8", "replace")


def html_pages(archive: Archive, env: jinja2.Environment, globals_key: str) -> list[Page]:
    """Index, day, profile and paper pages."""
    profiles_sig = tuple((p.name, p.slug, p.keywords, p.exclude) for p in archive.profiles)
    common = {"site_title": archive.title, "profiles": archive.profiles}
    pages: list[Page] = []

    # index.html: recent days with top picks, every day, every profile.
    def render_index() -> bytes:
        recent = []
        for day in archive.days[: archive.recent_days]:
            picks = archive.picks.get(day, [])
            per_profile = []
            for i, info in enumerate(archive.profiles):
                mine = [p for p in picks if p.profile == i]
                top = [item_view(archive, p, "") for p in mine[:INDEX_TOP]]
                per_profile.append((info, len(mine), top))
            recent.append((day, day_href("", day), len(archive.day_papers[day]), per_profile))
        all_days = [(d, day_href("", d), len(archive.day_papers[d])) for d in archive.days]
        totals = [
            sum(1 for picks in archive.picks.values() for p in picks if p.profile == i)
            for i in range(len(archive.profiles))
        ]
        return _render(
            env,
            "site/index.html.j2",
            root="",
            page_title=archive.title,
            recent=recent,
            all_days=all_days,
            totals=totals,
            paper_count=len(archive.papers),
            **common,
        )

    index_key = inputs_hash(
        globals_key,
        profiles_sig,
        archive.recent_days,
        [(d.isoformat(), archive.day_keys[d]) for d in archive.days],
    )
    pages.append(Page("index.html", index_key, render_index))

    # days/YYYY-MM-DD.html: a section per profile, then the day's other papers.
    for n, day in enumerate(archive.days):
        previous = archive.days[n + 1] if n + 1 < len(archive.days) else None

        def render_day(day=day, previous=previous) -> bytes:
            picks = archive.picks.get(day, [])
            sections = [
                (info, [item_view(archive, p, "../") for p in picks if p.profile == i])
                for i, info in enumerate(archive.profiles)
            ]
            picked = {p.paper_id for p in picks}
            others = [
                PaperLink(paper_href("../", p.id), p)
                for p in archive.day_papers[day]
                if p.id not in picked
            ]
            return _render(
                env,
                "site/day.html.j2",
                root="../",
                page_title=f"{day.isoformat()} — {archive.title}",
                day=day,
                count=len(archive.day_papers[day]),
                sections=sections,
                others=others,
                previous=(previous, day_href("../", previous)) if previous else None,
                **common,
            )

        key = inputs_hash(
            globals_key, profiles_sig, day.isoformat(), archive.day_keys[day], previous
        )
        pages.append(Page(f"days/{day.isoformat()}.html", key, render_day))

    # profiles/<slug>.html: the profile's picks across days, newest first.
    for i, info in enumerate(archive.profiles):
        picks = archive.profile_picks(i)

        def render_profile(info=info, picks=picks) -> bytes:
            by_day: dict = {}
            for p in picks:
                by_day.setdefault(p.day, []).append(item_view(archive, p, "../"))
            return _render(
                env,
                "site/profile.html.j2",
                root="../",
                page_title=f"{info.name} — {archive.title}",
                profile=info,
                by_day=[(d, day_href("../", d), items) for d, items in by_day.items()],
                count=len(picks),
                **common,
            )

        key = inputs_hash(
            globals_key,
            profiles_sig,
            i,
            [(p, archive.fingerprints[p.paper_id]) for p in picks],
        )
        pages.append(Page(info.page, key, render_profile))

    # papers/<id>.html: one permalink per paper.
    for paper in archive.papers.values():
        picks = archive.picks_of_paper.get(paper.id, [])

        def render_paper(paper=paper, picks=picks) -> bytes:
            day = archive.day_of_paper(paper)
            return _render(
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
