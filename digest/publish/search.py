"""The search index: the ranker's features of every paper, inverted a month at a time.

    search-index.js           window.PAPERS_DIGEST_INDEX: version, the months (newest
                              first) with their bucket count, key and days (day, papers,
                              key), the stop words and the synonym table
    search/YYYY-MM/b-N.js     bucket N of a month: the postings of the features whose
                              hash falls in it, day by day (`postings`)
    search/rows/DAY-N.js      rows N*ROWS_PER_FILE ... of a day: [href, title, lede]
    .publish-search/DAY.bin   a day's postings as the month's buckets are cut from them
                              (build state: browsers never load it)

A search compiles the query in the browser as `digest.rank.find` does (the same
Snowball stemmer, a JavaScript build of it, and the same synonym table), hashes the
features it needs (`packed.feature_hash`, the id ingest keeps for each paper's feature),
and loads, month by month from the newest, the one bucket of each feature; it stops
when it has a page of results ("More results" goes on), then loads the rows of the
results it shows. A bucket is some tens of KB however large the month, so a year's
first search loads a few hundred KB, not the year.

The index is made from the feature hashes ingest kept (`rank.searchrows`: each paper's
searchable hashes, or else its kept blob's, `find.search_hashes_joined`): no paper is
analysed again for it, and it holds no text: a row has a paper's title and the first
`LEDE_CHARS` characters of its abstract (cut at a word), never the whole abstract.
`href` is the paper's permalink, or its entry on its day page (`days/<day>.html#p-<id>`)
when it has none. A day's files are written only when its day changes; a month's
buckets are cut again (a concatenation of its days' postings, nothing decoded) only when
one of its days did, and `?v=` of its key makes browsers fetch them again.

Every file a browser loads is a script that sets a global, not JSON fetched at run time,
because Chromium blocks fetch() of file:// URLs; their JSON has `<`, `>` and `&` escaped
so no string in it can end a script element or be read as markup.
"""

from __future__ import annotations

import contextlib
import functools
import json
import struct
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path

import numpy as np

from digest.model import Paper
from digest.publish.manifest import DamagedState, inputs_hash
from digest.publish.names import plain
from digest.publish.postings import ALPHABET, FINE, KEY_BITS, encode_joined
from digest.publish.site import Page
from digest.publish.views import Archive, day_href, paper_href
from digest.rank.analyzer import STOPWORDS, analyzer_for
from digest.rank.find import ABSTRACT_MIN_COUNT, synonym_table
from digest.rank.searchrows import joined_hashes
from digest.rank.terms import terms_key

SEARCH_INDEX = "search-index.js"
#: Bump when the files' layout changes.
SEARCH_VERSION = 5
#: Part of the site's globals key: a new layout reads every day again (a day that is not
#: read keeps the search files it has).
SEARCH_FORMAT = (SEARCH_VERSION, FINE, KEY_BITS, ABSTRACT_MIN_COUNT)
#: How much of an abstract a search row holds (then cut back to a word).
LEDE_CHARS = 120
#: Rows a row file holds (a result page of 50 from one day loads one or two).
ROWS_PER_FILE = 50
#: A month gets as many buckets as keep each near this many characters (a power of two,
#: at most `postings.FINE`).
BUCKET_CHARS = 32_000
_DAY_HEAD = struct.Struct("<4sII")
_DAY_MAGIC = b"PDS1"
_IN_ALPHABET = np.zeros(256, dtype=bool)
_IN_ALPHABET[np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)] = True

#: The kept terms of some papers (`window.KeptTerms`): (papers, synonyms) -> {id: their
#: search row (`rank.searchrows`) or blob}.
TermsFn = Callable[[Sequence[Paper], Mapping[str, Sequence[str]] | None], Mapping[str, bytes]]


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


def day_data_path(day: date) -> str:
    return f".publish-search/{day.isoformat()}.bin"


def rows_path(day: date, n: int) -> str:
    return f"search/rows/{day.isoformat()}-{n}.js"


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def day_search_key(archive: Archive, day: date, synonyms: Mapping | None) -> str:
    """A day's search files show its papers and which have permalinks (the picks): the
    day's cache key covers both; the analysis (code and synonyms) makes the features."""
    return inputs_hash(
        "search",
        SEARCH_VERSION,
        LEDE_CHARS,
        ROWS_PER_FILE,
        SEARCH_FORMAT,
        day.isoformat(),
        archive.day_keys[day],
        terms_key(synonyms),
    )


def _shard_script(name: str, value: object) -> bytes:
    return (
        "(window.PAPERS_DIGEST_SHARDS = window.PAPERS_DIGEST_SHARDS || {})"
        f'["{name}"] = {script_json(value)};\n'
    ).encode("ascii")


def day_search_pages(
    archive: Archive,
    day: date,
    synonyms: Mapping[str, Sequence[str]] | None = None,
    terms: TermsFn | None = None,
) -> list[Page]:
    """A day's search rows and postings, for a day read this time. `terms` gives the
    papers' kept terms (without it, or for a paper it has none of, the text is analysed)."""
    papers = archive.day_papers[day]
    key = day_search_key(archive, day, synonyms)
    permalinked = archive.permalinked(day)
    listings = archive.day_listings(day)
    page = day_href("", day)

    @functools.cache  # one day's rows, cut into files
    def rows() -> list[list[str]]:
        return [
            [
                paper_href("", p.id) if p.id in permalinked else f"{page}#{listings[p.id].anchor}",
                listings[p.id].title.strip(),
                lede(p.abstract),
            ]
            for p in papers
        ]

    def row_file(n: int) -> bytes:
        chunk = rows()[n * ROWS_PER_FILE : (n + 1) * ROWS_PER_FILE]
        return _shard_script(f"{day.isoformat()}@{key[:10]}/r{n}", chunk)

    def data() -> bytes:
        kept = terms(papers, synonyms) if terms is not None else {}
        offsets, chars = encode_joined(*joined_hashes(papers, kept, analyzer_for(synonyms), kept))
        head = _DAY_HEAD.pack(_DAY_MAGIC, len(papers), FINE)
        return head + offsets.astype("<u4").tobytes() + chars

    out = [
        Page(rows_path(day, n), key, functools.partial(row_file, n))
        for n in range(-(-len(papers) // ROWS_PER_FILE))
    ]
    out.append(Page(day_data_path(day), key, data))
    return out


def _day_data(out: Path, day: date, papers: int) -> tuple[np.ndarray, bytes]:
    """(chunk offsets, characters) of a day's postings file (build state), checked: a
    file that is missing or not what `day_search_pages` writes for the day's `papers`
    is deleted and `DamagedState` raised, so that `publish` makes every day again
    (which writes it anew) rather than cut buckets a browser cannot read."""
    path = out / day_data_path(day)
    start = _DAY_HEAD.size + 4 * (FINE + 1)
    try:
        raw = path.read_bytes()
    except OSError:
        raw = b""
    offsets = np.zeros(0, dtype=np.int64)
    good = len(raw) >= start
    if good:
        magic, count, fine = _DAY_HEAD.unpack_from(raw)
        offsets = np.frombuffer(raw, dtype="<u4", count=FINE + 1, offset=_DAY_HEAD.size)
        offsets = offsets.astype(np.int64)
        # Its characters go into scripts unescaped: only the postings' alphabet may be there.
        good = (
            (magic, count, fine) == (_DAY_MAGIC, papers, FINE)
            and offsets[0] == 0
            and offsets[-1] == len(raw) - start
            and bool((np.diff(offsets) >= 0).all())
            and bool(_IN_ALPHABET[np.frombuffer(raw, dtype=np.uint8, offset=start)].all())
        )
    if not good:
        with contextlib.suppress(OSError):
            path.unlink()
        raise DamagedState(f"{path}: the search postings of {day} are missing or damaged")
    return offsets, raw[start:]


def _bucket_count(out: Path, days: Sequence[date]) -> int:
    """Buckets for a month: its postings' size over `BUCKET_CHARS`, a power of two."""
    chars = 0
    for d in days:
        with contextlib.suppress(OSError):  # `_day_data` says what is wrong when it is cut
            chars += (out / day_data_path(d)).stat().st_size - _DAY_HEAD.size - 4 * (FINE + 1)
    want = max(1, -(-chars // BUCKET_CHARS))
    return min(FINE, 1 << (want - 1).bit_length())


def _month_buckets(
    out: Path, days: tuple[date, ...], counts: tuple[int, ...], buckets: int
) -> list[bytes]:
    """Every bucket of a month: for each day (newest first; `counts[i]` papers on
    `days[i]`), its chunks of the bucket."""
    per = FINE // buckets
    parts: list[list[bytes]] = [[] for _ in range(buckets)]
    for d, count in zip(days, counts, strict=True):
        offsets, chars = _day_data(out, d, count)
        cuts = offsets[::per].tolist()
        for j in range(buckets):
            parts[j].append(chars[cuts[j] : cuts[j + 1]])
    return [b"".join(p) for p in parts]


def search_pages(
    archive: Archive, out: Path, synonyms: Mapping[str, Sequence[str]] | None = None
) -> list[Page]:
    """`search-index.js` and every month's buckets (cut from the day files that this
    publish and the ones before wrote, read when a month's bucket is rendered)."""
    months: dict[str, list[date]] = {}
    for d in archive.days:  # newest first
        months.setdefault(month_of(d), []).append(d)
    listed, pages = [], []
    for month, days in months.items():
        day_keys = [day_search_key(archive, d, synonyms) for d in days]
        key = inputs_hash("search-month", SEARCH_VERSION, BUCKET_CHARS, month, day_keys)
        buckets = _bucket_count(out, days)
        # In each bucket's global name too: a bucket read with another month's list of
        # days (a cached index, a publish half written) is not found rather than misread.
        short = inputs_hash(key, buckets)[:10]
        listed.append(
            [
                month,
                buckets,
                short,
                [
                    [d.isoformat(), archive.counts[d], k[:10]]
                    for d, k in zip(days, day_keys, strict=True)
                ],
            ]
        )
        counts = tuple(archive.counts[d] for d in days)
        build = functools.cache(
            functools.partial(_month_buckets, out, tuple(days), counts, buckets)
        )

        def bucket(
            n: int, build: Callable[[], list[bytes]] = build, name: str = f"{month}@{short}"
        ) -> bytes:
            # postings are characters of `postings.ALPHABET` only: nothing to escape
            return (
                b"(window.PAPERS_DIGEST_SHARDS = window.PAPERS_DIGEST_SHARDS || {})"
                + f'["{name}/{n}"] = "'.encode("ascii")
                + build()[n]
                + b'";\n'
            )

        for n in range(buckets):
            path = f"search/{month}/b-{n}.js"
            pages.append(Page(path, f"{key}:{buckets}", functools.partial(bucket, n)))
    index = {
        "version": SEARCH_VERSION,
        "fine": FINE,
        "rows": ROWS_PER_FILE,
        "months": listed,
        "stop": sorted(STOPWORDS),
        "syn": synonym_table(analyzer_for(synonyms).synonyms),
    }

    def render() -> bytes:
        return f"window.PAPERS_DIGEST_INDEX = {script_json(index)};\n".encode("ascii")

    # The list last: a browser that has it finds every file it names already written.
    return [*pages, Page(SEARCH_INDEX, inputs_hash("search-index", index), render)]
