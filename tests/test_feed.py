"""RSS/Atom through feedparser: arXiv's listing feed, bozo feeds, replacements in the store.

The fixture follows the structure of rss.arxiv.org/rss/<cat> (guid `oai:arXiv.org:<id>vN`,
`Announce Type:` and `Abstract:` in the description, `arxiv:announce_type`,
`dc:creator`); its ids are placeholders.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from digest.errors import SourceError
from digest.model import Paper, SourceWarning
from digest.sources import feed
from digest.sources.fetch import HostGate, fetch
from digest.store import Store

from .conftest import FIXTURES
from .golden import assert_golden, parser_output
from .http_fixture_server import FixtureServer, Static

LIVE = FIXTURES / "live"
ORIGIN = "https://rss.arxiv.org/rss/cs.CL"
CAPTURED = date(2025, 10, 20)
ANNOUNCED = datetime(2025, 10, 16, tzinfo=UTC)


def parse(data: bytes, origin: str = ORIGIN) -> tuple[list[Paper], list[SourceWarning]]:
    warnings: list[SourceWarning] = []
    papers = list(
        feed.parse(data, origin=origin, source="arxiv", captured=CAPTURED, warn=warnings.append)
    )
    return papers, warnings


def arxiv_feed() -> bytes:
    return (LIVE / "arxiv_rss.xml").read_bytes()


def test_golden() -> None:
    """The fixture beside its expected records and warnings (UPDATE_GOLDEN=1)."""
    assert_golden(LIVE / "arxiv_rss.expected.json", parser_output(*parse(arxiv_feed())))


def test_arxiv_fields() -> None:
    entries = list(
        feed.entries(arxiv_feed(), origin=ORIGIN, source="arxiv", captured=CAPTURED, warn=print)
    )
    assert [(e.paper.id, e.announce_type, e.version) for e in entries] == [
        ("2510.90101", "new", 1),
        ("2510.90102", "cross", 1),
        ("2401.01234", "replace", 3),
        ("2311.04321", "replace-cross", 2),
        ("2510.90106", "new", 2),  # from the link: the guid has no id
    ]
    first = entries[0].paper
    # The abstract is the text after `Abstract:`; arXiv math such as `T<N` survives.
    assert first.abstract.startswith("Multilingual speech recognisers are expensive when $T<N$")
    assert "tokens & more; we merge tokens across layers" in first.abstract
    assert (first.authors_count, first.published) == (3, date(2025, 10, 16))
    assert first.url == "https://arxiv.org/abs/2510.90101"
    assert first.first_seen == first.last_seen == ANNOUNCED  # the feed's day, not `captured`
    assert entries[-1].paper.authors_count == 2  # "Grace Hopper and Alan Turing"


def test_replacements_are_kept_but_not_claimed_as_new() -> None:
    entries = list(
        feed.entries(
            arxiv_feed(), origin=ORIGIN, source="arxiv", captured=CAPTURED, warn=lambda w: None
        )
    )
    revisions = [e for e in entries if e.is_revision]
    assert [e.paper.id for e in revisions] == ["2401.01234", "2311.04321"]
    for entry in revisions:
        assert entry.paper.revision and entry.paper.last_seen == ANNOUNCED
        assert entry.paper.published is None  # the feed's date is the new version's
    assert not any(e.paper.revision for e in entries if not e.is_revision)
    assert all(e.paper.first_seen == ANNOUNCED for e in entries)


def test_a_replaced_paper_updates_the_store_without_becoming_new_again(store: Store) -> None:
    """The store keys papers by id/arXiv id and keeps the earliest first_seen, so a
    replacement of a paper it already has is an update: same id (the send ledger's key),
    same first_seen (the send window's key)."""
    day_one = b"""<?xml version="1.0"?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" version="2.0"><channel><title>cs.CL</title>
<pubDate>Wed, 03 Jan 2024 00:00:00 -0500</pubDate>
<item><title>An Older Paper</title><link>https://arxiv.org/abs/2401.01234</link>
<description>arXiv:2401.01234v1 Announce Type: new
Abstract: The first version.</description>
<guid isPermaLink="false">oai:arXiv.org:2401.01234v1</guid>
<pubDate>Wed, 03 Jan 2024 00:00:00 -0500</pubDate>
<arxiv:announce_type>new</arxiv:announce_type></item></channel></rss>"""
    first, _ = parse(day_one)
    store.add_papers(first)
    (before,) = store.papers()
    counts = store.add_papers(parse(arxiv_feed())[0])
    assert counts.updated == 1  # the replacement of 2401.01234
    after = {p.id: p for p in store.papers()}["2401.01234"]
    assert after.first_seen == before.first_seen == datetime(2024, 1, 3, tzinfo=UTC)
    assert after.last_seen == ANNOUNCED
    assert after.published == date(2024, 1, 3)
    assert after.abstract == "A revised version of an older paper."  # the longer one
    assert "2401.01234" not in {p.id for p in store.papers(since=ANNOUNCED)}


def test_arxiv_refs() -> None:
    assert feed.arxiv_ref("oai:arXiv.org:2401.01234v2") == ("2401.01234", 2)
    assert feed.arxiv_ref("https://arxiv.org/abs/2401.01234") == ("2401.01234", None)
    assert feed.arxiv_ref("http://arxiv.org/pdf/2401.01234v1.pdf") == ("2401.01234", 1)
    assert feed.arxiv_ref("oai:arXiv.org:hep-th/9901001v1") == ("hep-th/9901001", 1)
    assert feed.arxiv_ref("https://example.org/posts/2401.01234") is None
    assert feed.arxiv_ref("item-6") is None


def test_a_bozo_feed_with_entries_warns_and_keeps_them() -> None:
    data = arxiv_feed()
    cut = data[: data.index(b"<title>An Old Cross-List")]  # the document stops mid-item
    papers, warnings = parse(cut)
    assert [p.id for p in papers] == ["2510.90101", "2510.90102", "2401.01234"]
    warning, skipped = warnings
    assert warning.line > 0
    assert "feed is not well-formed (no element found)" in warning.message
    assert "kept the 4 entries" in warning.message
    assert str(skipped) == f"{ORIGIN}:56: entry 4: no title; skipped"  # the entry cut short


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file, expected an RSS/Atom feed"),
        (b"\x00\x01garbage\xff", "not a readable RSS/Atom feed"),
        (b'{"items": []}', "not a readable RSS/Atom feed"),
        (b"<html><body><p>Service unavailable</p></body></html>", "not an RSS/Atom feed"),
    ],
)
def test_unusable_documents_raise_one_clear_source_error(data: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message) as info:
        parse(data, origin="cs.CL.xml")
    assert str(info.value).startswith("cs.CL.xml: ")
    assert "\n" not in str(info.value)


def test_a_bytes_body_naming_a_file_is_not_opened() -> None:
    """feedparser opens a `bytes` argument that names a file; we pass a file object."""
    target = FIXTURES / "live" / "arxiv_rss.xml"
    with pytest.raises(SourceError, match=r"not an RSS/Atom feed|not a readable"):
        parse(str(target).encode())


def test_weekend_feed_is_empty_but_valid() -> None:
    weekend = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>cs.CL</title>
<pubDate>Sat, 18 Oct 2025 00:00:00 -0400</pubDate></channel></rss>"""
    papers, warnings = parse(weekend)
    assert papers == []
    assert [w.message for w in warnings] == [
        "the feed 'cs.CL' has no entries (arXiv announces none at weekends and on holidays)"
    ]
    # weekends are named for arXiv's listing feeds only; a saved file is talked of as one
    papers, warnings = parse(weekend.replace(b"cs.CL", b"Lab blog"), origin="saved/blog.xml")
    assert [str(w) for w in warnings] == ["saved/blog.xml: the feed 'Lab blog' has no entries"]
    with pytest.raises(SourceError, match=r"^saved/blog\.xml: empty file, expected an RSS"):
        parse(b" ", origin="saved/blog.xml")


def test_generic_atom_feed() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Lab blog</title>
<updated>2025-10-15T10:00:00Z</updated><id>urn:x</id>
<entry><title>Our new &lt;em&gt;benchmark&lt;/em&gt;</title><id>urn:1</id>
<link href="https://lab.example.org/posts/bench"/>
<published>2025-10-14T08:00:00Z</published><updated>2025-10-14T08:00:00Z</updated>
<author><name>A. One</name></author><author><name>B. Two</name></author>
<summary type="html">&lt;p&gt;We release a &lt;b&gt;benchmark&lt;/b&gt;
for reasoning.&lt;/p&gt;</summary>
</entry></feed>"""
    (paper,), warnings = parse(atom, origin="lab.atom")
    assert warnings == []
    assert paper.abstract == "We release a benchmark for reasoning."
    assert (paper.authors_count, paper.published) == (2, date(2025, 10, 14))
    assert paper.arxiv_id is None and paper.id.startswith("t")
    assert paper.url == "https://lab.example.org/posts/bench"
    assert paper.first_seen == datetime(2025, 10, 15, tzinfo=UTC)


def test_fetched_from_a_local_server_with_headers(http_server: FixtureServer) -> None:
    url = http_server.route(
        "/rss/cs.CL",
        Static(
            arxiv_feed(),
            "application/rss+xml; charset=utf-8",
            last_modified="Thu, 16 Oct 2025 04:00:00 GMT",
        ),
    )
    result = fetch(url, gate=HostGate(), timeout=5.0)
    again = fetch(url, state=result.state, gate=HostGate(), timeout=5.0)
    entries = list(
        feed.entries(
            result.data,
            origin=result.url,
            source="arxiv",
            captured=CAPTURED,
            warn=lambda w: None,
            response_headers=result.headers,
        )
    )
    assert len(entries) == 5
    assert again.status == "not_modified" and again.data == b""


def test_a_surrogate_character_reference_is_one_clear_source_error() -> None:
    """feedparser itself fails on `&#xD800;` (a lone surrogate cannot be encoded): the
    document is refused in one line that names it; no crash, no title with a surrogate."""
    data = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>Surrogate &#xD800; title</title><link>http://x/1</link></item>"
        b"</channel></rss>"
    )
    with pytest.raises(
        SourceError, match=r"^f\.xml: the feed cannot be parsed \(UnicodeEncodeError: .*surrogate"
    ) as info:
        parse(data, origin="f.xml")
    assert "\n" not in str(info.value)
