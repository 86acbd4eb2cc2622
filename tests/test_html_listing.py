"""HTML listing pages: the page's data island, the rendered cards, and sameness with captures.

`hf_listing_cards.html` renders four entries of seeds/001 as cards (with placeholder arXiv
ids); the HTML parser must give the records the text-capture parser gives for them.
`hf_listing_island.html` carries the DailyPapers `data-props` JSON the page renders from.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from digest.errors import SourceError
from digest.model import Paper, SourceWarning
from digest.sources import html_listing, listing

from .conftest import FIXTURES, SEEDS
from .golden import assert_golden, parser_output

LIVE = FIXTURES / "live"
CAPTURED = date(2025, 12, 31)


def parse(
    data: bytes, origin: str = "page.html", captured: date = CAPTURED
) -> tuple[list[Paper], list[SourceWarning]]:
    warnings: list[SourceWarning] = []
    papers = list(
        html_listing.parse(
            data, origin=origin, source="seeds", captured=captured, warn=warnings.append
        )
    )
    return papers, warnings


@pytest.mark.parametrize("page", sorted(LIVE.glob("*.html")), ids=lambda p: p.stem)
def test_golden(page: Path) -> None:
    """Each page beside its expected records and warnings (UPDATE_GOLDEN=1)."""
    got = parser_output(*parse(page.read_bytes(), origin=page.name))
    assert_golden(page.with_suffix(".expected.json"), got)


def test_cards_give_the_same_records_as_the_text_capture() -> None:
    html_papers, warnings = parse((LIVE / "hf_listing_cards.html").read_bytes())
    seed = {
        p.title: p
        for p in listing.parse(
            (SEEDS / "001_05e3ab3e5f25a62f.txt").read_bytes(),
            origin="001",
            source="seeds",
            captured=CAPTURED,
            warn=lambda w: None,
        )
    }
    assert len(html_papers) == 4
    for paper in html_papers:
        assert paper.arxiv_id is not None and paper.id == paper.arxiv_id
        assert paper.url == f"https://huggingface.co/papers/{paper.arxiv_id}"
        # Apart from what only the HTML knows (the arXiv id and link), the records are equal.
        assert replace(paper, id=seed[paper.title].id, arxiv_id=None, url=None) == seed[paper.title]
    by_title = {p.title: p for p in html_papers}
    ranking = by_title["Scalable In-context Ranking with Generative Models"]
    assert (ranking.organization, ranking.published, ranking.upvotes) == (
        "Deepmind",
        date(2025, 10, 6),
        8,
    )
    assert by_title["Florence: A New Foundation Model for Computer Vision"].authors_count == 23
    assert ranking.first_seen == datetime(2025, 12, 26, tzinfo=UTC)  # the header day
    assert [str(w) for w in warnings] == [
        "page.html:70: paper card without a title; skipped",
    ]


def test_island_wins_and_unescapes_once() -> None:
    papers, warnings = parse((LIVE / "hf_listing_island.html").read_bytes())
    assert warnings == []
    assert [p.id for p in papers] == ["2510.90013", "2510.90015"]
    ranking, escaped = papers
    assert (ranking.organization, ranking.upvotes, ranking.authors_count) == ("Deepmind", 8, 5)
    assert ranking.first_seen == datetime(2025, 10, 16, tzinfo=UTC)  # dateString
    assert escaped.title == 'Escaping <b>Tags</b> & "Quotes" in Titles'


def test_broken_island_falls_back_to_the_cards() -> None:
    page = (LIVE / "hf_listing_island.html").read_text()
    start = page.index('data-props="') + len('data-props="')
    broken = page[:start] + "{&quot;dailyPapers&quot;: [" + page[page.index('"', start) :]
    papers, warnings = parse(broken.encode(), captured=date(2025, 10, 20))
    assert [p.id for p in papers] == ["2510.90013", "2510.90015"]
    assert "DailyPapers data is not JSON" in warnings[0].message
    assert papers[0].first_seen == datetime(2025, 10, 16, tzinfo=UTC)  # the header "Oct 16"
    assert papers[1].title == 'Escaping <b>Tags</b> & "Quotes" in Titles'
    assert (papers[1].authors_count, papers[1].published, papers[1].upvotes) == (
        1,
        date(2025, 10, 15),
        3,
    )


def test_url_date_beats_the_header() -> None:
    papers, _ = parse(
        (LIVE / "hf_listing_cards.html").read_bytes(),
        origin="https://huggingface.co/papers?date=2025-12-24",
    )
    assert papers[0].first_seen == datetime(2025, 12, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    "page",
    [
        b"",
        b"<html><body></body></html>",
        b"<html><body><h1>Daily Papers</h1><p>Nothing today.</p></body></html>",
        b"<!DOCTYPE html><html><body><div>502 Bad Gateway</div></body></html>",
    ],
)
def test_a_page_that_is_no_listing_page_is_one_clear_error(page: bytes) -> None:
    with pytest.raises(SourceError) as info:
        parse(page)
    assert str(info.value) == (
        "page.html: not a Hugging Face papers listing page (no DailyPapers data and no"
        " paper cards); is it the page of https://huggingface.co/papers?"
    )


def test_a_listing_page_with_no_readable_card_warns() -> None:
    papers, warnings = parse(b"<html><body><article><p>An ad.</p></article></body></html>")
    assert papers == []
    assert [w.message for w in warnings][-1].startswith("no paper entries found")


def test_card_problems_are_reported_with_their_line() -> None:
    page = b"""<html><body>
<article><h3><a href="/papers/not-an-id">A Card With a Bad Link</a></h3>
<p>Some abstract text that is long enough.</p>
<ul><li>7 authors</li></ul><span>Oct 99</span></article>
<article>
<h3><a href="/papers/2510.00001">No Meta</a></h3></article>
</body></html>"""
    papers, warnings = parse(page)
    assert [p.title for p in papers] == ["A Card With a Bad Link", "No Meta"]
    assert papers[0].arxiv_id is None and papers[0].authors_count == 7
    assert [str(w) for w in warnings] == [
        "page.html:2: card 'A Card With a Bad Link' has no /papers/<arXiv id> link",
        "page.html:2: metadata block without the '·' separator",
        "page.html:5: entry 'No Meta' has no abstract",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00binary", "binary data, not an HTML page"),
        (b"<html>\n<body>\xff</body></html>", r"page\.html:2: not UTF-8"),
    ],
)
def test_unreadable_pages_raise_source_error(data: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse(data)
