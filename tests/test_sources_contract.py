"""The contract every registered source parser keeps, whatever bytes it is given.

For each kind in `digest.sources.known_kinds()` and each input (empty, garbage, not
UTF-8, one huge line, a valid fixture of that kind, that fixture cut short or with a
stray byte, and values at the edge of a type for that kind): parsing raises nothing but
SourceError, yields only `Paper`s with an id and
a title, reports problems as `SourceWarning`s naming the origin, and gives the same
result when run twice on the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from digest.errors import SourceError
from digest.model import Paper, SourceWarning
from digest.sources import _registry, known_kinds, parser_for

from .conftest import FIXTURES

ORIGIN = "contract-input"
CAPTURED = date(2025, 10, 17)
#: A valid document of each kind (the listing kind reads text captures and HTML pages).
VALID: dict[str, list[Path]] = {
    "listing": [
        FIXTURES / "listing" / "authors_and_dates.txt",
        FIXTURES / "live" / "hf_listing_cards.html",
    ],
    "hf_daily": [FIXTURES / "live" / "daily_papers.json"],
    "feed": [FIXTURES / "live" / "arxiv_rss.xml"],
    "auto": [
        FIXTURES / "listing" / "authors_and_dates.txt",
        FIXTURES / "live" / "hf_listing_island.html",
        FIXTURES / "live" / "daily_papers.json",
        FIXTURES / "live" / "arxiv_rss.xml",
    ],
}
HOSTILE: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "whitespace": lambda: b" \n\t\r\n ",
    "garbage": lambda: bytes(range(256)) * 4,
    "not-utf8": lambda: "Café paper\n\nAn abstract in Latin-1, not UTF-8.\n".encode("latin-1"),
    "utf16": lambda: "Title\n\nAbstract of a paper.\n".encode("utf-16"),
    "huge-line": lambda: b"word " * 400_000,
    "huge-tag": lambda: b"<" + b"a" * 1_000_000 + b">",
}
#: Inputs aimed at one kind's parser: values at the edge of what a field can hold.
EDGE: dict[str, dict[str, bytes]] = {
    "hf_daily": {
        "deep-nesting": b"[" * 100_000 + b"]" * 100_000,
        "lone-surrogate-title": b'[{"paper": {"title": "A \\ud800 title", "summary": "Text."}}]',
        "5000-digit-number": b'[{"paper": {"id": "2401.00001", "title": "T", "upvotes": 1'
        + b"0" * 5000
        + b"}}]",
        "published-in-year-10000-utc": b'[{"paper": {"id": "2401.00001", "title": "T", '
        b'"publishedAt": "9999-12-31T23:59:59-23:59"}}]',
    },
    "feed": {
        "surrogate-character-reference": b'<rss version="2.0"><channel><title>t</title>'
        b"<item><title>A &#xD800; title</title><link>http://x/1</link></item></channel></rss>",
        "updated-in-year-10000-utc": b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        b"<updated>9999-12-31T23:59:59-23:59</updated><id>u</id>"
        b"<entry><title>T</title><id>u1</id><summary>Text.</summary></entry></feed>",
    },
    "listing": {
        "html-surrogate-reference": b"<html><body><article><h3><a href='/papers/2401.00001'>"
        b"A &#xD800; title</a></h3><p>An abstract that is long enough to be one.</p>"
        b"</article></body></html>",
        "date-in-year-9999": "A Title\n\nAn abstract long enough to be an abstract of a paper."
        "\n\n  • 3 authors\n·\nDec 31, 9999\n".encode(),
    },
}
#: Known bugs: each of these fails today (strict xfail: fixing the bug turns it red, to
#: drop the mark). Bad values in one item should cost that value, not the document.
BUGS: dict[tuple[str, str], str] = {}
EDGE_CASES = [
    pytest.param(
        kind,
        case,
        marks=[pytest.mark.xfail(strict=True, reason=BUGS[kind, case])]
        if (kind, case) in BUGS
        else [],
        id=f"{kind}-{case}",
    )
    for kind in known_kinds()
    for case in sorted(EDGE.get(kind, {}))
]
#: What a parser may do with one input: (papers, warnings) or the SourceError's text.
Outcome = tuple[list[Paper], list[SourceWarning]] | str


def outcome(kind: str, data: bytes) -> Outcome:
    """Parse `data` as `kind`; anything but SourceError escapes (and fails the test)."""
    parser = parser_for(kind)
    assert parser is not None
    warnings: list[SourceWarning] = []
    try:
        papers = list(
            parser(data, origin=ORIGIN, source="contract", captured=CAPTURED, warn=warnings.append)
        )
    except SourceError as exc:
        return str(exc)
    return papers, warnings


def assert_contract(kind: str, data: bytes) -> Outcome:
    first = outcome(kind, data)
    assert outcome(kind, data) == first, "the same bytes gave another result"
    if isinstance(first, str):
        assert first.startswith(ORIGIN) and "\n" not in first, first
        return first
    papers, warnings = first
    for paper in papers:
        assert type(paper) is Paper
        assert paper.id.strip() and paper.title.strip(), paper
    for warning in warnings:
        assert type(warning) is SourceWarning
        assert warning.origin == ORIGIN and warning.message.strip(), warning
    return first


def test_every_kind_has_a_valid_fixture() -> None:
    assert sorted(VALID) == known_kinds(), "a new kind needs a valid fixture in VALID"


def test_the_named_kinds_are_the_registered_parsers() -> None:
    # known_kinds() names the kinds without importing the parsers; the two must agree.
    assert known_kinds() == sorted(_registry()), "a new parser needs its name in KINDS"
    assert all(parser_for(kind) is not None for kind in known_kinds())


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("kind", known_kinds())
def test_hostile_bytes(kind: str, case: str) -> None:
    assert_contract(kind, HOSTILE[case]())


@pytest.mark.parametrize(("kind", "case"), EDGE_CASES)
def test_edge_values(kind: str, case: str) -> None:
    assert_contract(kind, EDGE[kind][case])


CASES = [(kind, path) for kind in known_kinds() for path in VALID.get(kind, [])]


@pytest.mark.parametrize(("kind", "path"), CASES, ids=[f"{k}-{p.name}" for k, p in CASES])
def test_a_valid_fixture_gives_papers(kind: str, path: Path) -> None:
    result = assert_contract(kind, path.read_bytes())
    assert not isinstance(result, str), result
    papers, _ = result
    assert papers


@pytest.mark.parametrize(("kind", "path"), CASES, ids=[f"{k}-{p.name}" for k, p in CASES])
@pytest.mark.parametrize("damage", ["cut-in-half", "stray-byte", "nul-byte"])
def test_a_damaged_fixture(kind: str, path: Path, damage: str) -> None:
    data = path.read_bytes()
    middle = len(data) // 2
    damaged = {
        "cut-in-half": data[:middle],
        "stray-byte": data[:middle] + b"\xff" + data[middle:],
        "nul-byte": data[:middle] + b"\x00" + data[middle:],
    }[damage]
    assert_contract(kind, damaged)
