"""The search index: the ranker's features of every paper, inverted a month at a time.

    search/days/YYYY-MM-DD.json  a day's papers as the month index is made from them:
                                 rows [href, title, lede], the day's features, each
                                 paper's feature numbers, and the day's spellings with
                                 their stems (`find.spelling_entry`); browsers never load it
    search/YYYY-MM/w-N.js        bucket N of a month's spellings: "spelling:entry;..."
    search/YYYY-MM/b-N.js        bucket N of its features: "feature:postings;...", a key
                                 in bucket fnv1a(key) % buckets (`_month_index`)
    search/YYYY-MM/r-N.js        the month's rows N*ROWS_PER_FILE ... (newest day first)
    search-index.js              window.PAPERS_DIGEST_INDEX: version, the months (newest
                                 first) with their bucket count, key and days, the stop
                                 words and the synonym table (`find.synonym_table`)

A search loads, for each month, only the buckets that hold the query's spellings, then
the buckets of the features they compile to, then the rows of the papers it shows: a
year's first search downloads a few buckets a month and a file of rows, not the year.
Postings are the paper numbers of the month (newest day first) as base-36 gaps.

A row holds a paper's title and the first `LEDE_CHARS` characters of its abstract (cut at
a word), never the whole abstract; the features and spellings are stems and folded words
(a bag of words), not text. `href` is the paper's permalink, or its entry on its day
page (`days/<day>.html#p-<id>`) when it has none. A day file is rewritten only when its
day changes; a month's files only when one of its days did (`?v=` of the month's key
makes browsers fetch them again).

Every file a browser loads is a script that sets a global, not JSON fetched at run time,
because Chromium blocks fetch() of file:// URLs; their JSON has `<`, `>` and `&` escaped
so no string in it can end a script element or be read as markup.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path

from digest.publish.manifest import inputs_hash
from digest.publish.names import plain
from digest.publish.site import Page
from digest.publish.views import Archive, day_href, paper_href
from digest.rank.analyzer import STOPWORDS, SynonymTable, analyzer_for
from digest.rank.find import search_terms, spelling_entry, synonym_table
from digest.rank.terms import terms_key

SEARCH_INDEX = "search-index.js"
#: Bump when the files' layout changes.
SEARCH_VERSION = 3
#: How much of an abstract a search row holds (then cut back to a word).
LEDE_CHARS = 120
#: Rows a row file holds (a search shows up to 50 results: one or two files).
ROWS_PER_FILE = 100
#: A month gets one bucket for about this many papers (rounded to a power of two), so
#: a bucket stays some tens of KB however many papers a day brings.
PAPERS_PER_BUCKET = 8


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


def fnv1a(text: str) -> int:
    """32-bit FNV-1a over the code points of `text` (search.js computes the same)."""
    h = 0x811C9DC5
    for ch in text:
        h = ((h ^ ord(ch)) * 0x01000193) & 0xFFFFFFFF
    return h


def shard_path(day: date) -> str:
    return f"search/days/{day.isoformat()}.json.gz"


def shard_key(archive: Archive, day: date, synonyms_id: str = "") -> str:
    """A day file shows the day's papers and which of them have permalinks (the picks):
    the day's cache key covers both; the analyzer's code and synonyms make the terms."""
    return inputs_hash(
        "search", SEARCH_VERSION, LEDE_CHARS, day.isoformat(), archive.day_keys[day], synonyms_id
    )


def shard_page(
    archive: Archive, day: date, synonyms: Mapping[str, Sequence[str]] | None = None
) -> Page:
    """`search/days/<day>.json` for a day read this time."""
    permalinked = archive.permalinked(day)
    analyzer = analyzer_for(synonyms)

    def render() -> bytes:
        page = day_href("", day)
        listings = archive.listings
        rows, papers, spellings = [], [], set()
        number: dict[str, int] = {}
        for p in archive.day_papers[day]:
            rows.append(
                [
                    paper_href("", p.id)
                    if p.id in permalinked
                    else f"{page}#{listings[p.id].anchor}",
                    listings[p.id].title.strip(),
                    lede(p.abstract),
                ]
            )
            t_features, t_spellings = search_terms(p.title, analyzer)
            a_features, a_spellings = search_terms(p.abstract or "", analyzer)
            spellings |= t_spellings | a_spellings
            have = t_features | a_features
            papers.append([number.setdefault(f, len(number)) for f in sorted(have)])
        data = {
            "day": day.isoformat(),
            "rows": rows,
            "terms": list(number),
            "papers": papers,
            "spell": sorted(spellings),
        }
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return gzip.compress(text, mtime=0)

    return Page(shard_path(day), shard_key(archive, day, terms_key(synonyms)), render)


def _postings(numbers: Sequence[int]) -> str:
    """Sorted paper numbers as base-36 gaps joined by `.`."""
    out, last = [], -1
    for n in numbers:
        out.append(_base36(n - last - 1))
        last = n
    return ".".join(out)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        n, r = divmod(n, 36)
        text = digits[r] + text
        if n == 0:
            return text


def _buckets_for(papers: int) -> int:
    want = max(1, -(-papers // PAPERS_PER_BUCKET))
    return 1 << (want - 1).bit_length()


def _shard_script(name: str, value: object) -> bytes:
    return (
        "(window.PAPERS_DIGEST_SHARDS = window.PAPERS_DIGEST_SHARDS || {})"
        f'["{name}"] = {script_json(value)};\n'
    ).encode("ascii")


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _entry_text(spelling: str, entry: list[str]) -> str:
    """A spelling's entry as a bucket holds it: how many characters to drop from its end
    to get its stem (most stems are a prefix), else `=stem,group,acronym-group`."""
    if len(entry) == 1 and spelling.startswith(entry[0]):
        return str(len(spelling) - len(entry[0]))
    return "=" + ",".join(entry)


Buckets = list[dict[str, str]]


def _month_index(
    out: Path, days: Sequence[date], buckets: int, synonyms: SynonymTable
) -> tuple[Buckets, list[list[object]]]:
    """A month's buckets and rows, made from its day files (newest day first).

    A bucket is {"w": "spelling:entry;...", "t": "feature:postings;..."} (written to
    two files, so a look-up loads only the half it needs): folded words, stems and group
    names hold only letters, digits and `≡`, so `:` and `;` are free (and a string is a
    third of the size of the same table as JSON objects)."""
    spellings: set[str] = set()
    postings: dict[str, list[int]] = {}
    rows: list[list[object]] = []
    for day in days:
        data = json.loads(gzip.decompress((out / shard_path(day)).read_bytes()))
        terms = data["terms"]
        for n, paper in enumerate(data["papers"], start=len(rows)):
            for t in paper:
                postings.setdefault(terms[t], []).append(n)
        rows.extend(data["rows"])
        spellings.update(data["spell"])
    words: list[list[str]] = [[] for _ in range(buckets)]
    features: list[list[str]] = [[] for _ in range(buckets)]
    mask = buckets - 1
    for sp in sorted(spellings):
        words[fnv1a(sp) & mask].append(f"{sp}:{_entry_text(sp, spelling_entry(sp, synonyms))}")
    for f in sorted(postings):
        features[fnv1a(f) & mask].append(f"{f}:{_postings(postings[f])}")
    out_buckets = [
        {"w": ";".join(w), "t": ";".join(t)} for w, t in zip(words, features, strict=True)
    ]
    return out_buckets, rows


MonthBuild = Callable[[], tuple[Buckets, list[list[object]]]]


def search_pages(
    archive: Archive, out: Path, synonyms: Mapping[str, Sequence[str]] | None = None
) -> list[Page]:
    """`search-index.js` and every month's buckets and row files (made from the day files
    that this publish and the ones before wrote, read when a month's file is rendered)."""
    analysis = terms_key(synonyms)
    syn = analyzer_for(synonyms).synonyms
    months: dict[str, list[date]] = {}
    for d in archive.days:  # newest first
        months.setdefault(month_of(d), []).append(d)
    listed, pages = [], []
    for month, days in months.items():
        count = sum(archive.counts[d] for d in days)
        buckets = _buckets_for(count)
        key = inputs_hash(
            "search-month",
            SEARCH_VERSION,
            analysis,
            month,
            [(d, archive.day_keys[d]) for d in days],
        )
        listed.append(
            [month, buckets, key[:10], [[d.isoformat(), archive.counts[d]] for d in days]]
        )
        build = functools.cache(functools.partial(_month_index, out, tuple(days), buckets, syn))

        def bucket(n: int, part: str, build: MonthBuild = build, month: str = month) -> bytes:
            return _shard_script(f"{month}/{part}{n}", build()[0][n][part])

        def row_file(n: int, name: str, build: MonthBuild = build) -> bytes:
            return _shard_script(name, build()[1][n * ROWS_PER_FILE : (n + 1) * ROWS_PER_FILE])

        for n in range(buckets):
            for part, prefix in (("w", "w"), ("t", "b")):
                path = f"search/{month}/{prefix}-{n}.js"
                pages.append(Page(path, key, functools.partial(bucket, n, part)))
        for n in range(-(-count // ROWS_PER_FILE)):
            name = f"{month}/r{n}"
            pages.append(
                Page(f"search/{month}/r-{n}.js", key, functools.partial(row_file, n, name))
            )
    index = {
        "version": SEARCH_VERSION,
        "months": listed,
        "rows": ROWS_PER_FILE,
        "stop": sorted(STOPWORDS),
        "syn": synonym_table(syn),
    }

    def render() -> bytes:
        return f"window.PAPERS_DIGEST_INDEX = {script_json(index)};\n".encode("ascii")

    return [Page(SEARCH_INDEX, inputs_hash("search-index", index), render), *pages]
