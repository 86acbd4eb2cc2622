"""The archive at scale: a publish reads only the days that may have changed and gives the
same bytes as a publish from scratch; the search index holds no abstracts; every paper
of a day is reachable from its day page. Real SQLite store, seeds included."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from digest.config import Config
from digest.model import Paper
from digest.pipeline import publish
from digest.publish.manifest import DAYS_DIR
from digest.publish.names import paper_file
from digest.publish.search import LEDE_CHARS
from digest.publish.views import paper_anchor
from digest.store import Store

from .conftest import SeededTemplate
from .factories import make_paper
from .test_publish import search_rows

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def day_paper(title: str, day: str, abstract: str = "An abstract.", **extra: object) -> Paper:
    return make_paper(title, abstract, seen=at(day), **extra)


@pytest.fixture
def seeded(seeded_template: SeededTemplate, tmp_path: Path) -> Iterator[Store]:
    db = tmp_path / "archive.sqlite3"
    shutil.copyfile(seeded_template.root / "var" / "digest.sqlite3", db)
    with Store(db) as store:
        yield store


def published_files(site: Path) -> dict[str, bytes]:
    """Every file of the site but the build state (dot files and directories)."""
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for p in site.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(site).parts)
    }


def test_publishing_day_by_day_gives_the_bytes_of_one_publish_from_scratch(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    config = replace(config, publish=replace(config.publish, base_url="https://example.org/"))
    daily = tmp_path / "daily"
    publish(config, seeded, at("2025-12-27"), out_dir=daily)
    steps = [
        ("2025-12-29", [day_paper("Speech codecs at low bitrates", "2025-12-29")]),
        ("2025-12-30", [day_paper("Video diffusion for weather maps", "2025-12-30")]),
        # A capture that arrives late: its papers belong to an old day that was not read.
        ("2025-12-31", [day_paper("Old news about quantization", "2025-11-03")]),
        ("2025-12-31", []),
    ]
    for today, papers in steps:
        seeded.add_papers(papers)
        report = publish(config, seeded, at(today), out_dir=daily)
        assert report.read_days < report.days  # not every day is read again
    scratch = tmp_path / "scratch"
    publish(config, seeded, at("2025-12-31"), out_dir=scratch)
    assert published_files(daily) == published_files(scratch)


def test_a_new_day_reads_and_ranks_only_that_day(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    first = publish(config, seeded, NOW, out_dir=site)
    assert first.read_days == first.days == 4  # from scratch: every day
    again = publish(config, seeded, NOW, out_dir=site)
    assert (again.read_days, again.ranked_days, again.written) == (0, 0, 0)
    seeded.add_papers([day_paper("Tiny TTS for hearing aids", "2025-12-31")])
    report = publish(config, seeded, NOW, out_dir=site)
    assert (report.read_days, report.ranked_days, report.days) == (1, 1, 5)
    assert "days/2025-12-26.html" not in report.written_paths
    assert not any("2025-12-26" in p for p in report.written_paths)


def test_a_late_change_to_an_old_paper_shows_after_a_full_publish(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    publish(config, seeded, NOW, out_dir=site)
    old = next(p for p in seeded.papers() if p.first_seen and p.first_seen.month == 3)
    seeded.add_papers([replace(old, upvotes=old.upvotes + 1000, sources=("late",))])
    # The merge adds no row and the day is older than the re-read window: kept as it was.
    quiet = publish(config, seeded, NOW, out_dir=site)
    assert quiet.read_days == 0 and quiet.written == 0
    full = publish(config, seeded, NOW, out_dir=site, full=True)
    assert full.read_days == 4
    assert "days/2025-03-13.html" in full.written_paths
    assert f"▲ {old.upvotes + 1000}" in (site / "days" / "2025-03-13.html").read_text("utf-8")


def test_a_lost_day_state_means_every_day_is_read_again(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    publish(config, seeded, NOW, out_dir=site)
    (site / DAYS_DIR / "2025-10-16.json").write_text("{not json")
    report = publish(config, seeded, NOW, out_dir=site)
    assert report.read_days == 4 and report.ranked_days == 4 and report.written == 0


def test_the_search_index_holds_no_abstracts(config: Config, seeded: Store, tmp_path: Path) -> None:
    site = tmp_path / "site"
    publish(config, seeded, NOW, out_dir=site)
    shards = search_rows(site)
    assert sorted(shards) == ["2025-03-13", "2025-10-16", "2025-11-03", "2025-12-26"]
    files = [site / "search-index.js", *site.glob("search/*/*.js")]
    text = "".join(p.read_text("ascii") for p in files)
    text += "".join(p.read_bytes().decode("latin-1") for p in site.glob(".publish-search/*"))
    long_abstracts = [p.abstract for p in seeded.papers() if len(p.abstract) > LEDE_CHARS]
    assert len(long_abstracts) > 300
    for abstract in long_abstracts:
        assert json.dumps(abstract)[1:-1] not in text
    rows = [row for day in shards.values() for row in day]
    assert len(rows) == 331
    assert all(len(row) == 3 and len(row[2]) <= LEDE_CHARS + 1 for row in rows)


class _Entries(HTMLParser):
    """The `li.item` entries of a page: their id and the href of each link in them."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, list[str]] = {}
        self.hrefs: set[str] = set()
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "li" and found.get("id"):
            self._current = found["id"]
            self.ids[self._current or ""] = []
        if tag == "a" and found.get("href"):
            self.hrefs.add(found["href"] or "")
            if self._current:
                self.ids[self._current].append(found["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "li":
            self._current = None


def test_every_paper_of_a_day_is_reachable_from_its_day_page(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    day = "2025-12-30"
    papers = [
        day_paper("Speech translation, streaming", day, "Speech recognition, then MT."),
        day_paper("Sea shells with an arXiv id", day, arxiv_id="2512.01234"),
        day_paper("Sea shells with a page", day, url="https://example.org/shells"),
        day_paper("Sea shells, nowhere else", day),
        day_paper("Sea shells, hostile link", day, url="javascript:alert(1)"),
    ]
    seeded.add_papers(papers)
    site = tmp_path / "site"
    publish(config, seeded, NOW, out_dir=site)
    entries = _Entries()
    entries.feed((site / "days" / f"{day}.html").read_text("utf-8"))
    permalinks = {f"../papers/{paper_file(p.id)}" for p in papers}
    for paper in papers:
        own = f"../papers/{paper_file(paper.id)}"
        assert own in entries.hrefs or paper_anchor(paper.id) in entries.ids, paper.title
    shells = {p.title: p for p in papers}
    arxiv = entries.ids[paper_anchor(shells["Sea shells with an arXiv id"].id)]
    assert arxiv[0] == "https://arxiv.org/abs/2512.01234"  # the title links to its source
    assert entries.ids[paper_anchor(shells["Sea shells with a page"].id)][0].startswith("https:")
    # No page elsewhere (or only an unsafe one): a permalink, so it can be read in full.
    for title in ("Sea shells, nowhere else", "Sea shells, hostile link"):
        own = f"../papers/{paper_file(shells[title].id)}"
        assert entries.ids[paper_anchor(shells[title].id)] == [own]
        assert (site / "papers" / paper_file(shells[title].id)).is_file()
    assert not (site / "papers" / paper_file(shells["Sea shells with a page"].id)).exists()
    assert not any(h.startswith("javascript") for h in entries.hrefs)
    # Search points at the same place: the permalink, or the day page's entry.
    rows = {row[1]: row[0] for row in search_rows(site)[day]}
    for paper in papers:
        href = rows[paper.title]
        if f"../{href}" in permalinks and (site / href).is_file():
            continue
        assert href == f"days/{day}.html#{paper_anchor(paper.id)}", paper.title


def test_cli_publish_full_reads_every_day(
    seeded_project: Path, seeded_config: Config, tmp_path: Path
) -> None:
    """`digest publish --full` is `full=True`: after an old paper changed in the store, a
    plain publish keeps its day as it was and `--full` brings it up to date."""
    from click.testing import CliRunner

    from digest.cli import cli

    site = tmp_path / "cli-site"
    base = ["--config", str(seeded_project / "config.toml"), "--now", NOW.isoformat()]

    def run(*args: str) -> dict[str, object]:
        result = CliRunner().invoke(cli, [*base, "publish", "--out", str(site), "--json", *args])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    run()
    with Store(seeded_config.store_path) as store:
        old = next(p for p in store.papers() if p.first_seen and p.first_seen.month == 3)
        store.add_papers([replace(old, upvotes=old.upvotes + 1000, sources=("late",))])
    assert run()["written"] == 0
    assert run("--full")["written"] != 0
    assert f"▲ {old.upvotes + 1000}" in (site / "days" / "2025-03-13.html").read_text("utf-8")


def test_publishing_from_kept_terms_gives_the_bytes_of_ranking_the_texts(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    """`pipeline.publish` ranks on the terms ingest kept, decoding only the profiles'
    features, and builds a month at a time (here in worker processes that read the store
    themselves); a plain list of the same papers ranked by `rank.rank` analyses every
    text in this process. The sites are the same, byte for byte."""
    from digest import rank
    from digest.publish import publish as publish_site

    config = replace(config, publish=replace(config.publish, base_url="https://example.org/"))
    # A paper without kept terms, and one whose text grew since its terms were kept.
    grown = next(p for p in seeded.papers() if p.first_seen and p.first_seen.month == 12)
    seeded.add_papers(
        [
            day_paper("Quantization of speech models", "2025-12-26"),
            replace(grown, abstract=grown.abstract + " We add LoRA adapters.", sources=("x",)),
        ]
    )
    assert len(seeded.paper_terms([grown.id], rank.terms_key(None))) == 0
    kept = tmp_path / "kept"
    report = publish(config, seeded, NOW, out_dir=kept, workers=2)
    assert report.ranked_days == report.days == report.read_days == 4
    texts = tmp_path / "texts"
    publish_site(config, seeded.papers(), NOW, ranker=rank.rank, out_dir=texts, workers=1)
    assert published_files(kept) == published_files(texts)
    assert (kept / "days" / "2025-12-26.html").read_text("utf-8").count("Quantization of") == 1


def test_a_month_read_at_once_is_in_the_order_of_all_papers(seeded: Store) -> None:
    """`papers_between` sorts in Python what `papers` sorts in SQL: the same order."""
    from datetime import date

    seeded.add_papers(
        [
            day_paper(title, seen)
            for title, seen in [
                ("Zeta paper", "2025-12-26T09:00:00"),
                ("Alpha paper", "2025-12-26T09:00:00"),
                ("Émile paper", "2025-12-26T23:59:59"),
                ("Early paper", "2025-12-01T00:00:00"),
            ]
        ]
    )
    everything = seeded.papers()
    month = [p for p in everything if p.first_seen and p.first_seen.month == 12]
    assert seeded.papers_between(date(2025, 12, 1), date(2026, 1, 1)) == month
    assert seeded.paper_days(date(2025, 12, 1)) == [date(2025, 12, 1), date(2025, 12, 26)]
    assert seeded.arrival_days(331, seeded.newest_paper_row()) == [
        date(2025, 12, 1),
        date(2025, 12, 26),
    ]


def _damage_picks(site: Path, day: str) -> None:
    """Garble the second line of a day's state (its picks), keeping the first."""
    path = site / DAYS_DIR / f"{day}.json"
    head, _, _ = path.read_text(encoding="utf-8").partition("\n")
    path.write_text(head + "\n{not json", encoding="utf-8")


def test_a_new_day_parses_only_the_saved_picks_its_pages_show(
    config: Config, seeded: Store, tmp_path: Path
) -> None:
    """With one recent day and one feed entry, a new day's pages show the picks of its
    own month only: March's saved picks are not parsed (their damage goes unnoticed),
    December's are, and a damaged one there means every day is built again, to the
    bytes of a publish from scratch."""
    config = replace(config, publish=replace(config.publish, recent_days=1, feed_entries=1))
    site = tmp_path / "site"
    publish(config, seeded, NOW, out_dir=site)
    _damage_picks(site, "2025-03-13")
    seeded.add_papers([day_paper("Tiny TTS for hearing aids", "2025-12-31")])
    report = publish(config, seeded, NOW, out_dir=site)
    assert (report.read_days, report.ranked_days, report.days) == (1, 1, 5)
    assert "profiles/speech/2025-12.html" in report.written_paths  # it shows 2025-12-26
    _damage_picks(site, "2025-12-26")
    seeded.add_papers([day_paper("Speech tokens for hearing aids", "2025-12-31")])
    rebuilt = publish(config, seeded, NOW, out_dir=site)
    assert rebuilt.read_days == 5  # every day, and the damaged days ranked again
    scratch = tmp_path / "scratch"
    publish(config, seeded, NOW, out_dir=scratch)
    assert published_files(site) == published_files(scratch)


@pytest.mark.parametrize("damage", ["empty", "cut", "foreign"])
def test_damaged_search_postings_mean_every_day_is_built_again(
    config: Config, seeded: Store, tmp_path: Path, damage: str
) -> None:
    """A day's postings (build state) that are missing, cut short or not in the postings'
    alphabet are never cut into buckets: the publish builds every day again, to the bytes
    of a publish from scratch, instead of a traceback or a bucket a browser misreads."""
    site = tmp_path / "site"
    publish(config, seeded, NOW, out_dir=site)
    path = site / ".publish-search" / "2025-12-26.bin"
    raw = path.read_bytes()
    path.write_bytes({"empty": b"", "cut": raw[:-200], "foreign": raw[:-1] + b'"'}[damage])
    seeded.add_papers([day_paper("Tiny TTS for hearing aids", "2025-12-31")])  # December again
    report = publish(config, seeded, NOW, out_dir=site)
    assert report.read_days == 5
    assert path.read_bytes() == raw
    scratch = tmp_path / "scratch"
    publish(config, seeded, NOW, out_dir=scratch)
    assert published_files(site) == published_files(scratch)
