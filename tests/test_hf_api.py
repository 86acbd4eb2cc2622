"""Hugging Face daily papers JSON: golden records, merging with seed captures, bad input.

The fixture is modelled on the API's answers as its public clients read them (items with
a `paper` object; optional fields at either level). Its arXiv ids are placeholders
(`2507.90001` ...), not the real papers' ids; two titles and abstracts come from the seeds
so that merging can be checked against the real captures.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from digest.errors import SourceError
from digest.model import Paper, SourceWarning
from digest.sources import hf_api, listing
from digest.sources.fetch import HostGate, fetch
from digest.store import Store
from digest.text import fold_title

from .conftest import FIXTURES, SEEDS
from .golden import assert_golden, parser_output
from .http_fixture_server import FixtureServer, Static

LIVE = FIXTURES / "live"
ORIGIN = "https://huggingface.co/api/daily_papers?date=2025-10-16"
CAPTURED = date(2025, 10, 17)


def parse(
    data: bytes, origin: str = ORIGIN, captured: date = CAPTURED
) -> tuple[list[Paper], list[SourceWarning]]:
    warnings: list[SourceWarning] = []
    papers = list(
        hf_api.parse(data, origin=origin, source="hf", captured=captured, warn=warnings.append)
    )
    return papers, warnings


def test_golden() -> None:
    """The fixture beside its expected records and warnings (UPDATE_GOLDEN=1)."""
    got = parser_output(*parse((LIVE / "daily_papers.json").read_bytes()))
    assert_golden(LIVE / "daily_papers.expected.json", got)


def test_fields_from_either_level() -> None:
    papers, warnings = parse((LIVE / "daily_papers.json").read_bytes())
    by_title = {p.title: p for p in papers}
    ranking = by_title["Scalable In-context Ranking with Generative Models"]
    # organization at the top level of the item, the rest under `paper`
    assert (ranking.id, ranking.arxiv_id, ranking.organization, ranking.upvotes) == (
        "2510.90002",
        "2510.90002",
        "Deepmind",
        8,
    )
    assert ranking.url == "https://huggingface.co/papers/2510.90002"
    assert ranking.published == date(2025, 10, 6)
    assert ranking.authors_count == 9
    assert ranking.first_seen == ranking.last_seen == datetime(2025, 10, 16, tzinfo=UTC)
    tiny = by_title["Tiny Speech Tokenizers for On-device ASR"]
    assert (tiny.id, tiny.organization, tiny.upvotes) == ("2510.90003", "example-lab", 0)
    assert "item 3 (2510.90003v2): bad upvotes 'many'; ignored" in str(warnings)


def test_what_readers_want_is_kept() -> None:
    items = list(
        hf_api.items(
            (LIVE / "daily_papers.json").read_bytes(),
            origin=ORIGIN,
            source="hf",
            captured=CAPTURED,
            warn=lambda w: None,
        )
    )
    ranking = items[1].paper
    assert ranking.comments == 3
    assert (ranking.code_url, ranking.code_stars) == ("https://github.com/example/icr", 42)
    assert ranking.keywords == ("In-context Ranking", "attention", "LLM reranking")
    assert ranking.summary.startswith("Sparse attention")
    assert ranking.pdf_url == "https://arxiv.org/pdf/2510.90002"
    assert ranking.authors[:2] == ("Author 1", "Author 2") and ranking.authors_count == 9
    assert items[1].submitted_at == datetime(2025, 10, 16, 3, 0, tzinfo=UTC)
    assert items[2].paper.project_url == "https://example.org/tiny-speech"
    assert items[2].paper.comments == 1  # numComments under `paper` in this one
    assert items[2].paper.version == 2  # the id was 2510.90003v2


def test_bad_items_are_skipped_with_their_position() -> None:
    papers, warnings = parse((LIVE / "daily_papers.json").read_bytes())
    assert len(papers) == 4
    skipped = [str(w) for w in warnings if w.skipped]
    assert skipped == [
        f"{ORIGIN}: item 4: str, not an object; skipped",
        f"{ORIGIN}: item 5 (2510.90004): no title; skipped",
    ]
    flat = papers[-1]
    assert flat.arxiv_id is None and flat.id.startswith("t")  # a title id
    assert flat.published is None
    assert (flat.upvotes, flat.authors_count) == (2, 1)


def test_the_same_paper_as_a_seed_capture_folds_to_one_title(store: Store) -> None:
    """Merging evidence: the JSON's Met$^2$Net is the seed's, by folded title and in the store."""
    seed_papers = list(
        listing.parse(
            (SEEDS / "002_543d901a7254557e.txt").read_bytes(),
            origin="002",
            source="seeds",
            captured=date(2025, 12, 31),
            warn=lambda w: None,
        )
    )
    seed = next(p for p in seed_papers if p.title.startswith("Met$^2$Net"))
    live = parse((LIVE / "daily_papers.json").read_bytes())[0][0]
    assert fold_title(live.title) == fold_title(seed.title)
    assert (live.published, live.upvotes, live.authors_count) == (
        seed.published,
        seed.upvotes,
        seed.authors_count,
    )
    store.add_papers([seed])
    counts = store.add_papers([live])
    assert (counts.new, counts.updated) == (0, 1)
    (row,) = [p for p in store.papers() if fold_title(p.title) == fold_title(seed.title)]
    assert row.id == seed.id  # the id a paper was first stored under never changes
    assert row.arxiv_id == "2507.90001"
    assert row.url == "https://huggingface.co/papers/2507.90001"
    assert set(row.sources) == {"seeds", "hf"}


def test_page_day_comes_from_the_url_or_the_capture() -> None:
    data = (LIVE / "daily_papers.json").read_bytes()
    assert parse(data)[0][0].first_seen == datetime(2025, 10, 16, tzinfo=UTC)
    named = parse(data, origin="archive/2024-05-27.json")[0][0]
    assert named.first_seen == datetime(2024, 5, 27, tzinfo=UTC)  # the file name's day
    # no day in the name: the day the items were put on the daily page (submittedOnDailyAt)
    no_date = parse(data, origin="saved/daily.json")[0][0]
    assert no_date.first_seen == datetime(2025, 10, 16, tzinfo=UTC)
    undated = data.replace(b"submittedOnDailyAt", b"x").replace(
        b'"publishedAt": "2025-10-16', b'"x": "'
    )
    assert parse(undated, origin="saved/daily.json")[0][0].first_seen == datetime(
        2025, 10, 17, tzinfo=UTC
    )  # nothing names a day: the capture day
    assert hf_api.page_day("https://x/api?date=garbage", CAPTURED) == CAPTURED


def test_url_builder_and_arxiv_ids() -> None:
    assert hf_api.daily_papers_url() == "https://huggingface.co/api/daily_papers"
    assert (
        hf_api.daily_papers_url(date(2025, 10, 16), limit=50, page=2)
        == "https://huggingface.co/api/daily_papers?date=2025-10-16&limit=50&p=2"
    )
    assert hf_api.arxiv_id("2401.01234v12") == "2401.01234"
    assert hf_api.arxiv_id("hep-th/9901001v1") == "hep-th/9901001"
    assert hf_api.arxiv_id("not-an-id") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'[{"paper": {"id": "2401.1', r"daily:1: not JSON \(Unterminated string"),
        (b"<!DOCTYPE html><title>502</title>", r"daily:1: not JSON .*'<!DOCTYPE html>"),
        (b"", "empty file, expected JSON"),
        (b"\xff\xfe[]", "not UTF-8"),
        (b'{"error": "Invalid date"}', "the API answered with an error: 'Invalid date'"),
        (b'{"papers": []}', "a JSON object without a list of papers"),
        (b'"just a string"', "JSON str, not a list of papers"),
    ],
)
def test_unusable_documents_raise_one_clear_source_error(data: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message) as info:
        parse(data, origin="daily")
    assert "\n" not in str(info.value)


def test_an_empty_day_warns_and_yields_nothing() -> None:
    papers, warnings = parse(b"[]")
    assert papers == []
    assert [w.message for w in warnings] == ["no papers in this answer (no list for that day yet?)"]


def test_fetched_from_a_local_server_and_parsed(http_server: FixtureServer) -> None:
    body = (LIVE / "daily_papers.json").read_bytes()
    url = http_server.route(
        "/api/daily_papers", Static(body, "application/json", etag='"day-2025-10-16"')
    )
    result = fetch(f"{url}?date=2025-10-16", gate=HostGate(), timeout=5.0)
    again = fetch(f"{url}?date=2025-10-16", state=result.state, gate=HostGate(), timeout=5.0)
    papers, _ = parse(result.data, origin=result.url)
    assert len(papers) == 4
    assert papers[0].first_seen == datetime(2025, 10, 16, tzinfo=UTC)
    assert again.status == "not_modified"
