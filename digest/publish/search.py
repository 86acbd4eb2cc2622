"""The search index: a small list of days, and one shard of papers per day.

    search-index.js          window.PAPERS_DIGEST_INDEX = {"version": 2, "days": [[day,
                             "search/<day>.js?v=<key>", papers], ...]} (newest day first)
    search/YYYY-MM-DD.js     adds {"day": day, "papers": [[href, title, lede], ...]} to
                             window.PAPERS_DIGEST_SHARDS[day]

A row holds a paper's title and the first `LEDE_CHARS` characters of its abstract (cut at
a word), never the whole abstract: at 2,000 papers a day a year of shards is some 0.3 KB a
paper instead of 1.8. `href` is the paper's permalink, or its entry on its day page
(`days/<day>.html#p-<id>`) when it has none. A shard belongs to its day: it is rewritten
only when the day changes, so a new day writes one shard and the short day list; the
`?v=` of each shard makes browsers fetch a changed shard again.

Both are scripts that set globals, not JSON fetched at run time, because Chromium blocks
fetch() of file:// URLs; their JSON has `<`, `>` and `&` escaped so no string in it can
end a script element or be read as markup.
"""

from __future__ import annotations

import json
from datetime import date

from digest.publish.manifest import inputs_hash
from digest.publish.names import plain
from digest.publish.site import Page
from digest.publish.views import Archive, day_href, paper_href

SEARCH_INDEX = "search-index.js"
#: Bump when the shard rows change.
SEARCH_VERSION = 2
#: How much of an abstract a search row holds (then cut back to a word).
LEDE_CHARS = 120


def script_json(value: object) -> str:
    """JSON that is safe inside a script: only ASCII, and no `<`, `>` or `&` characters."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def lede(text: str, limit: int = LEDE_CHARS) -> str:
    """The start of `text` (cleaned), at most `limit` characters, cut at a word with `…`."""
    # Clean only the start: an abstract is ten times longer than what is kept of it.
    head = text[: limit * 2]
    out = plain(head).strip()
    if len(out) <= limit and len(head) == len(text):
        return out
    cut = out[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:.") + "…"


def shard_path(day: date) -> str:
    return f"search/{day.isoformat()}.js"


def shard_key(archive: Archive, day: date) -> str:
    """A shard shows the day's papers and which of them have permalinks (the picks): the
    day's cache key covers both."""
    return inputs_hash("search", SEARCH_VERSION, LEDE_CHARS, day.isoformat(), archive.day_keys[day])


def shard_page(archive: Archive, day: date) -> Page:
    """`search/<day>.js` for a day read this time."""
    permalinked = archive.permalinked(day)

    def render() -> bytes:
        page = day_href("", day)
        listings = archive.day_listings(day)
        rows = [
            [
                paper_href("", p.id) if p.id in permalinked else f"{page}#{listings[p.id].anchor}",
                listings[p.id].title.strip(),
                lede(p.abstract),
            ]
            for p in archive.day_papers[day]
        ]
        data = script_json({"day": day.isoformat(), "papers": rows})
        return (
            "(window.PAPERS_DIGEST_SHARDS = window.PAPERS_DIGEST_SHARDS || {})"
            f'["{day.isoformat()}"] = {data};\n'
        ).encode("ascii")

    return Page(shard_path(day), shard_key(archive, day), render)


def index_list_page(archive: Archive) -> Page:
    """`search-index.js`: every day's shard (with its key, so a changed one is fetched)."""
    days = [
        [d.isoformat(), f"{shard_path(d)}?v={shard_key(archive, d)[:10]}", archive.counts[d]]
        for d in archive.days
    ]

    def render() -> bytes:
        data = script_json({"version": SEARCH_VERSION, "days": days})
        return f"window.PAPERS_DIGEST_INDEX = {data};\n".encode("ascii")

    return Page(SEARCH_INDEX, inputs_hash("search-index", days), render)
