"""The listing-page parser: the real seeds and golden files for every variant."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from digest.config import Config
from digest.errors import SourceError
from digest.model import Paper, SourceWarning
from digest.sources.listing import organization_name, parse
from digest.store import Store
from digest.text import fold_title, strip_latex

from .conftest import FIXTURES, SEEDS, SeededTemplate
from .factories import make_paper
from .golden import assert_golden, parser_output

CAPTURED = date(2025, 12, 31)


def parse_file(path: Path, captured: date = CAPTURED) -> tuple[list[Paper], list[SourceWarning]]:
    warnings: list[SourceWarning] = []
    papers = list(
        parse(
            path.read_bytes(),
            origin=path.name,
            source="test",
            captured=captured,
            warn=warnings.append,
        )
    )
    return papers, warnings


@pytest.mark.parametrize(
    ("name", "entries"),
    [
        ("000_c2c827a02e57125f.txt", 132),
        ("001_05e3ab3e5f25a62f.txt", 46),
        ("002_543d901a7254557e.txt", 91),
        ("003_96cd1b5ccba177d1.txt", 95),
    ],
)
def test_seed_entry_counts(name: str, entries: int) -> None:
    papers, warnings = parse_file(SEEDS / name)
    assert len(papers) == entries
    assert warnings == []
    assert all(p.title and p.abstract for p in papers)


def test_seeds_hold_331_distinct_papers_and_latex_variants_fold_together() -> None:
    papers = [p for f in sorted(SEEDS.glob("*.txt")) for p in parse_file(f)[0]]
    assert len(papers) == 364
    assert len({fold_title(p.title) for p in papers}) == 331
    met = [p for p in papers if fold_title(p.title).startswith("met2net")]
    assert {p.title.split(":")[0] for p in met} == {"Met$^2$Net", "Met^2Net"}
    assert len({p.id for p in met}) == 1


def test_the_seeded_store_holds_what_the_parser_reads(
    seeded_template: SeededTemplate, seeded_config: Config, seeded_store: Store
) -> None:
    """The session's seeded store (conftest) is the seeds through the pipeline, and each
    test gets a private copy of it."""
    parsed = {fold_title(p.title) for f in sorted(SEEDS.glob("*.txt")) for p in parse_file(f)[0]}
    assert {fold_title(p.title) for p in seeded_store.papers()} == parsed
    template = seeded_template.root / "var" / "digest.sqlite3"
    assert seeded_config.store_path != template
    before = template.read_bytes()
    seeded_store.add_papers([make_paper("A paper only this test has")])
    assert seeded_store.count_papers() == len(parsed) + 1
    assert template.read_bytes() == before


def test_seed_metadata_variants() -> None:
    papers = {p.title: p for f in sorted(SEEDS.glob("*.txt")) for p in parse_file(f)[0]}
    ranking = papers["Scalable In-context Ranking with Generative Models"]
    assert (ranking.organization, ranking.published, ranking.upvotes) == (
        "Deepmind",
        date(2025, 10, 6),
        8,
    )
    florence = papers["Florence: A New Foundation Model for Computer Vision"]
    assert (florence.authors_count, florence.published, florence.upvotes) == (
        23,
        date(2021, 11, 22),
        0,
    )
    papers = {p.title: p for p in parse_file(SEEDS / "003_96cd1b5ccba177d1.txt")[0]}
    align = papers["AlignGPT: Multi-modal Large Language Models with Adaptive Alignment Capability"]
    assert (align.authors_count, align.published, align.upvotes) == (7, date(2024, 5, 22), 0)
    papers = {p.title: p for p in parse_file(SEEDS / "002_543d901a7254557e.txt")[0]}
    revideo = papers["ReVideo: Remake a Video with Motion and Content Control"]
    assert (revideo.published, revideo.upvotes) == (date(2024, 5, 22), 5)


def test_header_day_is_the_capture_day() -> None:
    papers, _ = parse_file(SEEDS / "002_543d901a7254557e.txt")
    assert {p.first_seen.date() for p in papers} == {date(2025, 10, 16)}
    # Resolved against `captured`: the latest Oct 16 not after it.
    papers, _ = parse_file(SEEDS / "002_543d901a7254557e.txt", captured=date(2026, 3, 1))
    assert papers[0].first_seen.date() == date(2025, 10, 16)
    assert papers[0].published == date(2025, 7, 23)  # year-less: the capture year


@pytest.mark.parametrize(
    "capture", sorted((FIXTURES / "listing").glob("*.txt")), ids=lambda p: p.stem
)
def test_golden(capture: Path) -> None:
    """Each small capture beside its expected records and warnings (UPDATE_GOLDEN=1)."""
    assert_golden(capture.with_suffix(".expected.json"), parser_output(*parse_file(capture)))


def test_not_utf8_names_file_and_line() -> None:
    with pytest.raises(SourceError, match=r"bad\.txt:2: not UTF-8"):
        list(
            parse(
                b"Title\n\xff\xfe abstract",
                origin="bad.txt",
                source="t",
                captured=CAPTURED,
                warn=lambda w: None,
            )
        )


def test_binary_data_is_refused() -> None:
    with pytest.raises(SourceError, match="binary"):
        list(
            parse(
                b"\x00\x01\x02", origin="x.bin", source="t", captured=CAPTURED, warn=lambda w: None
            )
        )


def test_empty_capture_warns_and_yields_nothing() -> None:
    warnings: list[SourceWarning] = []
    assert (
        list(parse(b"", origin="e.txt", source="t", captured=CAPTURED, warn=warnings.append)) == []
    )
    assert "no paper entries" in str(warnings[0])


def test_organization_name() -> None:
    assert organization_name("deepmind Deepmind") == "Deepmind"
    assert organization_name("UCAS ucas") == "UCAS"
    assert organization_name("Allen Institute for AI") == "Allen Institute for AI"


def test_strip_latex() -> None:
    assert strip_latex("Met$^2$Net") == "Met2Net"
    assert strip_latex("S^{2}FT") == "S2FT"
    assert strip_latex(r"\textbf{Bold} move") == "Bold move"
    assert fold_title("Met$^2$Net: A Model") == fold_title("Met^2Net: a model") == "met2net a model"


def test_only_cr_and_lf_end_a_line() -> None:
    abstract = "An abstract with a\u2028line separator and a\x0cform feed, long enough to be prose."
    data = (
        f"Title One\n\n{abstract}\n\nTitle Two\n\nAnother abstract that is long enough to count.\n"
    )
    papers, _ = parse_file_bytes(data.encode())
    assert [p.title for p in papers] == ["Title One", "Title Two"]
    assert "line separator" in papers[0].abstract


def test_absurd_counts_are_ignored_with_a_warning() -> None:
    data = (
        "Title\n\nAn abstract long enough to be an abstract of a paper here.\n\n"
        "  • 99999999999999999999999 authors\n·\nOct 2 99999999999999999999\n"
    )
    papers, warnings = parse_file_bytes(data.encode())
    assert (papers[0].authors_count, papers[0].upvotes) == (None, 0)
    assert len(warnings) == 2


def parse_file_bytes(data: bytes) -> tuple[list[Paper], list[SourceWarning]]:
    warnings: list[SourceWarning] = []
    papers = list(parse(data, origin="t.txt", source="t", captured=CAPTURED, warn=warnings.append))
    return papers, warnings
