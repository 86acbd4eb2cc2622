"""The static archive: pages and links, Atom through feedparser, incremental publishing,
hostile text. Everything runs on a real SQLite store filled from the seeds."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import feedparser
import pytest

from digest.config import Config, load_config
from digest.model import Paper
from digest.pipeline import publish
from digest.publish import PublishReport
from digest.publish.manifest import DAYS_DIR, MANIFEST_NAME
from digest.publish.names import paper_file, profile_slug, unique_slugs
from digest.rank import make_profile
from digest.store import Store

from .conftest import SeededTemplate
from .factories import make_paper
from .golden import assert_golden

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SEED_DAYS = ["2025-03-13", "2025-10-16", "2025-11-03", "2025-12-26"]
HOSTILE_TITLE = (
    "<script>alert(1)</script> </textarea> {{ 7*7 }} [x](javascript:alert(1)) "
    '"><img src=x onerror=alert(1)> \u202eevil speech recognition'
)
HOSTILE_PROFILE = '"><img src=x onerror=alert(2)> speech'


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "action") and value is not None:
                self.links.append(value)


def links_of(path: Path) -> list[str]:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.links


def snapshot(site: Path) -> dict[str, int]:
    return {
        p.relative_to(site).as_posix(): p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()
    }


def new_paper(title: str, abstract: str, day: str, **extra: object) -> Paper:
    """A paper first seen on `day` (YYYY-MM-DD, UTC midnight)."""
    return make_paper(
        title, abstract, seen=datetime.fromisoformat(day).replace(tzinfo=UTC), **extra
    )


@pytest.fixture
def seeded(seeded_template: SeededTemplate, tmp_path: Path) -> Iterator[Store]:
    """A private copy of the store holding the seeds (ingested once per session)."""
    db = tmp_path / "archive.sqlite3"
    shutil.copyfile(seeded_template.root / "var" / "digest.sqlite3", db)
    with Store(db) as store:
        assert store.count_papers() == 331
        yield store


def test_site_has_every_page_and_every_relative_link_resolves(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    report = publish(config, seeded, NOW, out_dir=site)
    assert isinstance(report, PublishReport)
    assert report.days == 4 and report.papers == 331
    assert report.written == report.total and report.unchanged == 0
    assert "331 papers" in report.summary()
    assert (site / "index.html").is_file()
    for day in SEED_DAYS:
        assert (site / "days" / f"{day}.html").is_file()
    for prof in config.profiles:
        assert (site / "profiles" / f"{prof.name}.html").is_file()
        assert (site / "feeds" / f"{prof.name}.atom").is_file()
    for paper in seeded.papers():
        assert (site / "papers" / paper_file(paper.id)).is_file()
    assert not (site / "sitemap.xml").exists()  # no base_url: sitemaps need absolute URLs

    checked = 0
    for page in site.rglob("*.html"):
        for link in links_of(page):
            parts = urlsplit(link)
            assert not link.startswith("/"), f"{page}: absolute path {link}"
            if parts.scheme in ("http", "https"):
                continue
            assert not parts.scheme, f"{page}: unexpected link {link}"
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.is_file(), f"{page.relative_to(site)}: broken link {link}"
            assert site.resolve() in target.parents
            checked += 1
    assert checked > 2000

    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'id="search-input"' in index and "static/search.js" in index
    day = (site / "days" / "2025-12-26.html").read_text(encoding="utf-8")
    assert "<mark>" in day and "RandLoRA" in day
    assert (
        (site / "search-index.js")
        .read_text(encoding="ascii")
        .startswith("window.PAPERS_DIGEST_INDEX = ")
    )


def search_rows(site: Path) -> dict[str, list[list]]:
    """day -> its search rows (`search/rows/<day>-N.js`), in order."""
    shards = "(window.PAPERS_DIGEST_SHARDS = window.PAPERS_DIGEST_SHARDS || {})"
    out: dict[str, list[list]] = {}
    paths = sorted(
        (site / "search" / "rows").glob("*.js"), key=lambda p: (p.stem[:10], len(p.stem), p.stem)
    )
    listed = (site / "search-index.js").read_text(encoding="ascii")
    index = json.loads(listed.removeprefix("window.PAPERS_DIGEST_INDEX = ").removesuffix(";\n"))
    day_keys = {d[0]: d[2] for m in index["months"] for d in m[3]}
    for path in paths:
        day, n = path.stem[:10], path.stem[11:]
        raw = path.read_text(encoding="ascii")
        # named with the day's key in the index: a stale file is not read for a new list
        prefix = f'{shards}["{day}@{day_keys[day]}/r{n}"] = '
        assert raw.startswith(prefix) and raw.endswith(";\n")
        out.setdefault(day, []).extend(json.loads(raw.removeprefix(prefix).removesuffix(";\n")))
    return out


def feed_of(path: Path) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(path.read_bytes())
    assert parsed.bozo == 0, f"{path}: {parsed.get('bozo_exception')}"
    return parsed


def test_atom_feeds_parse_with_stable_ids(config: Config, seeded: Store, tmp_path: Path) -> None:
    site = tmp_path / "site"
    publish(config, seeded, NOW, out_dir=site)
    papers = {p.id: p for p in seeded.papers()}
    feeds = sorted((site / "feeds").glob("*.atom"))
    assert [f.stem for f in feeds] == ["all", "efficient-llms", "speech", "video"]
    for path in feeds:
        feed = feed_of(path)
        assert feed.version == "atom10"
        assert feed.feed.id == f"tag:papers-digest,2025:feeds/{path.stem}"
        assert 0 < len(feed.entries) <= config.publish.feed_entries
        ids = [e.id for e in feed.entries]
        assert len(set(ids)) == len(ids)
        days = [e.updated for e in feed.entries]
        assert days == sorted(days, reverse=True)  # newest first
        for entry in feed.entries:
            m = re.fullmatch(r"tag:papers-digest,(\d{4}-\d\d-\d\d):(\w+)", entry.id)
            assert m, entry.id
            paper = papers[m.group(2)]
            assert paper.first_seen is not None
            assert m.group(1) == paper.first_seen.date().isoformat()
            assert entry.title == paper.title
            assert entry.link.endswith(f"papers/{paper_file(paper.id)}")
            assert (path.parent / entry.link).resolve().is_file()
            assert entry.summary.startswith("matches ")
        assert feed.feed.updated == max(days)


def test_ids_survive_a_move_and_base_url_gives_absolute_links_and_sitemap(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    publish(config, seeded, NOW, out_dir=tmp_path / "a")
    moved = replace(config, publish=replace(config.publish, base_url="https://example.org/digest/"))
    publish(moved, seeded, NOW, out_dir=tmp_path / "b")
    for name in ("all", "speech", "video", "efficient-llms"):
        a = feed_of(tmp_path / "a" / "feeds" / f"{name}.atom")
        b = feed_of(tmp_path / "b" / "feeds" / f"{name}.atom")
        assert a.feed.id == b.feed.id
        assert [e.id for e in a.entries] == [e.id for e in b.entries]
        assert [e.updated for e in a.entries] == [e.updated for e in b.entries]
        assert all(e.link.startswith("https://example.org/digest/papers/") for e in b.entries)
        assert b.feed.links[0].href == f"https://example.org/digest/feeds/{name}.atom"
    # Same pages either way: only feeds and the sitemap know the base URL.
    for page in ("index.html", "days/2025-10-16.html", "profiles/speech.html"):
        assert (tmp_path / "a" / page).read_bytes() == (tmp_path / "b" / page).read_bytes()

    root = ET.parse(tmp_path / "b" / "sitemap.xml").getroot()
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    locs = [loc.text for loc in root.findall("s:url/s:loc", ns)]
    html = sorted((tmp_path / "b").rglob("*.html"))
    months = list((tmp_path / "b" / "profiles").glob("*/*.html"))
    # each profile's months with picks (of the four seed months); 11 since the cut-off's
    # floor is 0.4: video's one November match (relevance 0.4-0.5) is the day's best for it
    assert len(months) == 11
    # The seeds have no source URL: every paper gets a permalink to be read in full.
    assert len(locs) == len(html) == 1 + 4 + 3 + len(months) + 331
    for loc in locs:
        assert loc and loc.startswith("https://example.org/digest/")
        rel = loc.removeprefix("https://example.org/digest/") or "index.html"
        assert (tmp_path / "b" / rel).is_file()


def test_publishing_again_with_nothing_new_rewrites_nothing(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    publish(config, seeded, NOW, out_dir=site)
    before = snapshot(site)
    assert MANIFEST_NAME in before
    again = publish(config, seeded, NOW, out_dir=site)
    assert again.written == 0 and again.removed == 0 and again.ranked_days == 0
    assert again.unchanged == again.total
    assert snapshot(site) == before
    # A lost manifest costs rendering but still rewrites no file with equal bytes.
    (site / MANIFEST_NAME).unlink()
    rebuilt = publish(config, seeded, NOW, out_dir=site)
    assert rebuilt.written == 0 and rebuilt.ranked_days == 4
    after = snapshot(site)
    after.pop(MANIFEST_NAME)
    before.pop(MANIFEST_NAME)
    assert after == before


def test_one_new_day_rewrites_only_the_pages_it_touches(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    config = replace(config, publish=replace(config.publish, base_url="https://example.org/"))
    site = tmp_path / "site"
    publish(config, seeded, NOW, out_dir=site)
    before = snapshot(site)
    speech = new_paper(
        "Streaming speech recognition with tiny transducers",
        "We build an ASR system for on-device speech recognition.",
        "2025-12-30",
    )
    other = new_paper("A study of sea shells", "Shells on beaches, counted.", "2025-12-30")
    seeded.add_papers([speech, other])
    report = publish(config, seeded, NOW, out_dir=site)
    assert report.ranked_days == 1
    assert set(report.written_paths) == {
        "days/2025-12-30.html",
        "index.html",
        f"papers/{paper_file(speech.id)}",
        f"papers/{paper_file(other.id)}",
        "profiles/speech.html",
        "feeds/speech.atom",
        "profiles/speech/2025-12.html",  # its month page; the front page lists the month
        "feeds/all.atom",
        "search-index.js",  # the month list, and the new day's search files
        "search/rows/2025-12-30-0.js",
        ".publish-search/2025-12-30.bin",
        "sitemap.xml",
    } | {p for p in report.written_paths if p.startswith("search/2025-12/")}
    # Only the new day's month of the search index is made again.
    assert any(p.startswith("search/2025-12/b-") for p in report.written_paths)
    assert not any(
        p.startswith(("search/2025-11/", "search/2025-03/")) for p in report.written_paths
    )
    after = snapshot(site)
    changed = {p for p in after if before.get(p) != after[p]}
    # ... and the build state: the manifest and the new day's saved state, nothing more.
    assert changed == set(report.written_paths) | {MANIFEST_NAME, f"{DAYS_DIR}/2025-12-30.json"}
    day = (site / "days" / "2025-12-30.html").read_text(encoding="utf-8")
    assert "Streaming <mark>speech" in day  # highlighted (ASR = speech recognition)
    assert "A study of sea shells" in day  # listed among the day's other papers
    entries = feed_of(site / "feeds" / "speech.atom").entries
    assert entries[0].id == f"tag:papers-digest,2025-12-30:{speech.id}"


def test_vanished_days_and_papers_lose_their_pages_and_foreign_files_stay(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    publish(config, seeded, NOW, out_dir=site)
    (site / "CNAME").write_text("papers.example.org\n")
    late = [p for p in seeded.papers() if p.first_seen and p.first_seen.date().month == 12]
    december = list((site / "profiles").glob("*/2025-12.html"))
    assert december
    # As of 2025-12-01 the last day had not happened yet: its pages must go.
    report = publish(config, seeded, datetime(2025, 12, 1, tzinfo=UTC), out_dir=site)
    assert report.days == 3
    # The day page, its search files, its papers' permalinks and the profiles' month pages.
    month_files = report.removed - 2 - len(late) - len(december)
    assert month_files >= 2  # the month's search buckets and rows
    assert not (site / "days" / "2025-12-26.html").exists()
    assert not (site / ".publish-search" / "2025-12-26.bin").exists()
    assert not any((site / "search" / "rows").glob("2025-12-26-*"))
    assert not (site / "search" / "2025-12").exists() or not any(
        (site / "search" / "2025-12").iterdir()
    )
    assert not any((site / "profiles").glob("*/2025-12.html"))
    assert all(not (site / "papers" / paper_file(p.id)).exists() for p in late)
    assert (site / "CNAME").is_file()
    assert "2025-12-26" not in (site / "index.html").read_text(encoding="utf-8")


def test_hostile_text_is_inert_in_html_atom_and_search_index(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    huge = "speech " + "A" * 100_000
    hostile = new_paper(
        HOSTILE_TITLE,
        "</textarea><script>alert(3)</script> speech recognition [y](javascript:alert(4))",
        "2025-12-30",
        organization="<b onmouseover=alert(5)>Org</b>",
        url="javascript:alert(6)",
        arxiv_id='2401.00001"><script>',
    )
    big = new_paper(huge, "A speech paper with a very long title.", "2025-12-30")
    seeded.add_papers([hostile, big])
    evil_profile = make_profile(
        HOSTILE_PROFILE, ("speech", "<script>alert(1)</script>", "{{ 7*7 }}")
    )
    config = replace(config, profiles=(*config.profiles, evil_profile))
    site = tmp_path / "site"
    publish(config, seeded, NOW, out_dir=site)

    slug = profile_slug(HOSTILE_PROFILE)
    assert re.fullmatch(r"[a-z0-9-]+", slug)
    assert (site / "profiles" / f"{slug}.html").is_file()
    scripts = [site / "search-index.js", *site.glob("search/*/*.js")]
    assert len(scripts) > 10
    for page in [*site.rglob("*.html"), *site.rglob("*.atom"), *scripts]:
        text = page.read_text(encoding="utf-8")
        assert "<script>alert" not in text, page
        assert "<img src=x" not in text and "<b onmouseover" not in text, page
        assert "</textarea>" not in text, page
        assert "\u202e" not in text, page
        assert 'href="javascript' not in text and "href='javascript" not in text, page
    paper_page = (site / "papers" / paper_file(hostile.id)).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in paper_page
    assert "{{ 7*7 }}" in paper_page  # shown as typed, never evaluated
    assert "[x](javascript:alert(1))" in paper_page
    assert 'href="javascript' not in paper_page
    assert "arxiv.org" not in paper_page  # a malformed arXiv id makes no link
    assert "A" * 100_000 in (site / "papers" / paper_file(big.id)).read_text(encoding="utf-8")
    big_day = (site / "days" / "2025-12-30.html").read_text(encoding="utf-8")
    assert "<title>2025-12-30" in big_day

    for path in (site / "feeds").glob("*.atom"):
        feed = feed_of(path)
        for entry in feed.entries:
            if entry.id.endswith(hostile.id):
                assert entry.title == HOSTILE_TITLE.replace("\u202e", "")
    evil_feed = feed_of(site / "feeds" / f"{slug}.atom")
    assert evil_feed.feed.title.endswith(HOSTILE_PROFILE)
    assert any(e.id.endswith(hostile.id) for e in evil_feed.entries)

    for script in scripts:
        raw = script.read_text(encoding="ascii")
        assert "<" not in raw and ">" not in raw and "&" not in raw, script
    rows = {row[0]: row for day in search_rows(site).values() for row in day}
    row = rows[f"papers/{paper_file(hostile.id)}"]  # picked (speech): it has a permalink
    assert row[1] == HOSTILE_TITLE.replace("\u202e", "")
    assert len(rows[f"papers/{paper_file(big.id)}"][1]) > 100_000  # titles stay whole


def test_ranking_in_worker_processes_gives_the_same_site(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    serial = publish(config, seeded, NOW, out_dir=tmp_path / "serial", workers=1)
    parallel = publish(config, seeded, NOW, out_dir=tmp_path / "parallel", workers=2)
    assert serial.ranked_days == parallel.ranked_days == 4
    a, b = snapshot(tmp_path / "serial"), snapshot(tmp_path / "parallel")
    assert a.keys() == b.keys()
    for name in a:
        assert (tmp_path / "serial" / name).read_bytes() == (
            tmp_path / "parallel" / name
        ).read_bytes(), name


def test_a_changed_profile_reranks_and_progress_is_reported(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    publish(config, seeded, NOW, out_dir=site)
    calls: list[tuple[int, int, str]] = []
    narrower = replace(
        config,
        profiles=tuple(
            replace(p, min_score=0.9) if p.name == "efficient-llms" else p for p in config.profiles
        ),
    )
    report = publish(narrower, seeded, NOW, out_dir=site, progress=lambda *a: calls.append(a))
    assert report.ranked_days == 4 and report.written > 0
    assert "profiles/efficient-llms.html" in report.written_paths
    assert len(calls) == report.total and calls[-1][:2] == (report.total, report.total)


def test_names_are_safe_stable_and_distinct() -> None:
    assert profile_slug("efficient-llms") == "efficient-llms"
    assert profile_slug("Speech") != profile_slug("speech")
    assert profile_slug("all") != "all"  # feeds/all.atom belongs to every profile
    for name in ("../../etc", "", "   ", "日本語", HOSTILE_PROFILE, "a" * 500):
        slug = profile_slug(name)
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", slug) and len(slug) < 70
        assert slug == profile_slug(name)
    assert unique_slugs(["x", "x"]) == ["x", "x-2"]
    assert paper_file("2401.01234") == "2401.01234.html"
    assert paper_file("t045a3480d9475a0") == "t045a3480d9475a0.html"
    odd = [paper_file(i) for i in ("hep-th/9901001", "hep-th_9901001", "../x", "..", "a b")]
    assert len(set(odd)) == len(odd)
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.html", f) and ".." not in f for f in odd)


# -- the published bytes: a golden site ---------------------------------------------------

GOLDEN_SITE = Path(__file__).resolve().parent / "fixtures" / "golden" / "site"
GOLDEN_NOW = datetime(2025, 11, 4, 9, tzinfo=UTC)  # three seed days published, Dec 26 not yet
GOLDEN_PAGES = {
    "index.html": "index.html",
    "days/2025-11-03.html": "day-2025-11-03.html",
    "profiles/speech.html": "profile-speech.html",
    "feeds/speech.atom": "feed-speech.atom",
}


@pytest.fixture(scope="module")
def golden_site(seeded_template: SeededTemplate, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds published with the repo's config.toml, once for the golden tests."""
    root = seeded_template.copy_to(tmp_path_factory.mktemp("golden-site"))
    config = load_config(root / "config.toml", required=True)
    with Store(config.store_path) as store:
        publish(config, store, GOLDEN_NOW, out_dir=root / "site")
    return root / "site"


def test_every_published_file_is_byte_for_byte_the_golden_one(golden_site: Path) -> None:
    """The whole site (every page, feed, the search index) hashes as the golden list says:
    a refactor that changes one published byte fails here (UPDATE_GOLDEN=1 to accept)."""
    got = {
        p.relative_to(golden_site).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(golden_site.rglob("*"))
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(golden_site).parts)
    }
    assert_golden(GOLDEN_SITE / "sha256.json", got)


@pytest.mark.parametrize("page", sorted(GOLDEN_PAGES))
def test_golden_pages_read_as_kept(golden_site: Path, page: str) -> None:
    """A few whole pages, kept so that a change shows as a readable diff."""
    assert_golden(GOLDEN_SITE / GOLDEN_PAGES[page], (golden_site / page).read_text("utf-8"))


def test_day_rows_escape_each_text_even_one_holding_a_nul() -> None:
    """`other_papers_html` escapes a row's texts in one call joined at NUL; a text with a
    NUL of its own (cleaned text never has one) is escaped on its own, not split."""
    from digest.publish.site import _escaped

    texts = ['<a href="x">', "Tom & Jerry's", "a\0<b>"]
    first_two = ["&lt;a href=&#34;x&#34;&gt;", "Tom &amp; Jerry&#39;s"]
    assert _escaped(texts) == [*first_two, "a\0&lt;b&gt;"]
    assert _escaped(texts[:2]) == first_two


def test_a_paper_gets_a_permalink_exactly_when_it_has_no_readable_link() -> None:
    """`has_page` (what decides a permalink without making a day's listings) says what
    `readable_links` would: a safe url or an arXiv id of the right shape."""
    from digest.publish.views import has_page, readable_links

    papers = [
        make_paper("Plain", url="https://example.org/p"),
        make_paper("Hostile", url="javascript:alert(1)"),
        make_paper("Spaced", url="https://example.org/a b"),
        make_paper("Arxiv only", arxiv_id="2510.12345"),
        make_paper("Bad id", arxiv_id="../../etc"),
        make_paper("Nothing"),
    ]
    assert [has_page(p) for p in papers] == [bool(readable_links(p)) for p in papers]
    assert [has_page(p) for p in papers] == [True, False, False, True, False, False]
