"""The machine-read files: Atom feeds, sitemap.xml, static assets (search: `search`).

Atom (RFC 4287): entry ids are `tag:` URIs made of the day and the paper id only, feed
ids of the profile slug only, so neither changes when the site moves; `updated` comes
from the data (the day a paper was first seen), never from the clock, so an unchanged
archive gives byte-identical feeds. Links are absolute when `[publish] base_url` is set,
else relative to the feed's own location (feed readers resolve them against the feed URL).

sitemap.xml needs absolute URLs (sitemaps.org), so it is written only when `base_url` is
set; more than 50,000 URLs are split into sitemap-N.xml files under a sitemap index.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time
from urllib.parse import quote

import jinja2

from digest.publish.manifest import inputs_hash
from digest.publish.names import atom_time, entry_id, feed_id, paper_file, shorten
from digest.publish.picks import Pick
from digest.publish.site import Page
from digest.publish.views import Archive
from digest.render import sentences

#: Most URLs one sitemap file may hold (sitemaps.org).
SITEMAP_LIMIT = 50_000
STATIC = (
    "static/style.css",
    "static/search.js",
    "static/snowball-english.js",
    "static/blake2b.js",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _render(env: jinja2.Environment, name: str, **context: object) -> bytes:
    return env.get_template(name).render(**context).encode("utf-8", "replace")


def _feed_entries(archive: Archive, days: Iterable[list[Pick]], href_prefix: str) -> list[dict]:
    """Entries of a feed, one per (day, paper): profiles that picked it become categories.
    `days`: the feed's picks, a list a day, newest day first; only as many days are taken
    as the newest `feed_entries` entries need (a year's picks are not read)."""
    entries: dict[tuple[date, str], dict] = {}
    for picks in days:
        if len(entries) >= archive.feed_entries:
            break  # an entry is a (day, paper): an older day has none of the kept ones
        _add_entries(archive, picks, href_prefix, entries)
    return list(entries.values())


def _add_entries(
    archive: Archive, picks: list[Pick], href_prefix: str, entries: dict[tuple[date, str], dict]
) -> None:
    for pick in picks:
        key = (pick.day, pick.paper_id)
        if key in entries:
            entries[key]["categories"].append(archive.profiles[pick.profile].name)
            continue
        if len(entries) >= archive.feed_entries:
            continue  # picks come newest first: the feed keeps the newest entries
        paper = archive.papers[pick.paper_id]
        updated = paper.first_seen or datetime.combine(pick.day, datetime.min.time(), UTC)
        entries[key] = {
            "id": entry_id(pick.day, pick.paper_id),
            "title": shorten(paper.title, 1000),
            "updated": atom_time(updated),
            "href": href_prefix + "papers/" + paper_file(paper.id),
            "summary": f"{pick.why}. {sentences(paper.abstract)}",
            "categories": [archive.profiles[pick.profile].name],
        }


def _days_of(archive: Archive, profile: int | None = None) -> Iterator[list[Pick]]:
    """A feed's picks a day at a time, newest day first, read as they are taken: one
    profile's in rank order, or (None) every profile's, the best score first (all.atom)."""
    for day in archive.days:
        picks = archive.picks.get(day, [])
        if profile is None:
            yield sorted(picks, key=lambda p: -p.score)
        else:
            yield [p for p in picks if p.profile == profile]


def feed_pages(archive: Archive, env: jinja2.Environment, globals_key: str) -> list[Page]:
    """`feeds/<slug>.atom` per profile and `feeds/all.atom` (every profile's picks)."""
    base = archive.base_url
    # A feed without entries is as new as the newest day (known without its papers).
    latest = datetime.combine(archive.days[0], time.min, UTC) if archive.days else _EPOCH
    feeds: list[tuple[str, str, str, Iterator[list[Pick]]]] = []
    feeds.append(("all", f"{archive.title}: every profile", "index.html", _days_of(archive)))
    for i, info in enumerate(archive.profiles):
        title = f"{archive.title}: {info.name}"
        feeds.append((info.slug, title, info.page, _days_of(archive, i)))
    pages = []
    prefix = base if base else "../"
    for slug, title, alternate, picks in feeds:
        # Entries are cheap to make (at most feed_entries of them): make them now and
        # hash them, so the key covers exactly what the feed shows.
        entries = _feed_entries(archive, picks, prefix)
        updated = max((e["updated"] for e in entries), default=atom_time(latest))
        context = {
            "feed_id": feed_id(slug),
            "title": title,
            "updated": updated,
            "self_href": (base + f"feeds/{slug}.atom") if base else f"{slug}.atom",
            "alternate_href": prefix + alternate,
            "author": archive.title,
            "entries": entries,
        }
        key = inputs_hash(globals_key, sorted(context.items(), key=lambda kv: kv[0]))
        pages.append(
            Page(
                f"feeds/{slug}.atom",
                key,
                functools.partial(_render, env, "site/feed.atom.xml.j2", **context),
            )
        )
    return pages


def sitemap_pages(
    archive: Archive, env: jinja2.Environment, paths: list[tuple[str, date | None]]
) -> list[Page]:
    """sitemap.xml (and sitemap-N.xml beyond 50,000 URLs); none without a base_url."""
    base = archive.base_url
    if not base:
        return []
    urls = [(base + quote(path), day.isoformat() if day else None) for path, day in paths]

    def page(name: str, urls: list | None, sitemaps: list | None) -> Page:
        def render() -> bytes:
            return _render(env, "site/sitemap.xml.j2", urls=urls, sitemaps=sitemaps)

        return Page(name, inputs_hash("sitemap", base, urls, sitemaps), render)

    if len(urls) <= SITEMAP_LIMIT:
        return [page("sitemap.xml", urls, None)]
    chunks = [urls[i : i + SITEMAP_LIMIT] for i in range(0, len(urls), SITEMAP_LIMIT)]
    pages, index = [], []
    for n, chunk in enumerate(chunks, 1):
        pages.append(page(f"sitemap-{n}.xml", chunk, None))
        index.append((f"{base}sitemap-{n}.xml", max((m for _, m in chunk if m), default=None)))
    pages.append(page("sitemap.xml", None, index))
    return pages


def static_pages(env: jinja2.Environment) -> list[Page]:
    """The stylesheet and the search scripts, copied from templates/site/static/."""
    assert env.loader is not None
    pages = []
    for path in STATIC:
        text = env.loader.get_source(env, f"site/{path}")[0]
        data = text.encode("utf-8")
        pages.append(Page(path, inputs_hash(text), functools.partial(bytes, data)))
    return pages
