"""The archive's ranking reads only the features its profiles look up: what
`decode_wanted` gives, narrowed to the wanted features as an index narrows it, is what
decoding the whole blob gives narrowed, on every seed paper and on blobs built to trip a
shortcut (the whole decode is its fallback)."""

from __future__ import annotations

import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config import Config
from digest.rank import keyword_features, terms_key
from digest.rank.analyzer import analyzer_for
from digest.rank.terms import (
    PaperTerms,
    WantedFeatures,
    analyze,
    decode,
    decode_wanted,
    encode_json,
)
from digest.store import Store

from .factories import make_paper


def only(terms: PaperTerms | None, wanted: set[str]) -> tuple[dict, dict, int, int] | None:
    """What an index of the wanted features takes of `terms`: their counts per field and
    the fields' word counts (the order of features within a field is the index's)."""
    if terms is None:
        return None
    title = dict(zip(terms.title, terms.title_counts, strict=True))
    abstract = dict(zip(terms.abstract, terms.abstract_counts, strict=True))
    return (
        {f: c for f, c in title.items() if f in wanted},
        {f: c for f, c in abstract.items() if f in wanted},
        terms.title_words,
        terms.abstract_words,
    )


def narrowed(paper, blob: bytes, wanted: set[str]) -> tuple[dict, dict, int, int] | None:
    return only(decode(paper, blob), wanted)


def test_every_seed_paper_decodes_to_its_narrowed_terms(
    seeded_config: Config, seeded_store: Store
) -> None:
    papers = seeded_store.papers()
    blobs = seeded_store.paper_terms([p.id for p in papers], terms_key(None))
    keywords = [k for p in seeded_config.profiles for k in (*p.keywords, *p.exclude)]
    wanted = keyword_features(keywords, seeded_config.ranking, None)
    spelled = WantedFeatures.of(wanted)
    assert spelled.spelled is not None  # the fast path is the one tested
    analyzer = analyzer_for(None)
    hits = 0
    for paper in papers:
        terms = analyze(paper, analyzer)
        # what ingest keeps now (packed), and the JSON layout of older stores
        for blob in (blobs[paper.id], encode_json(paper, terms)):
            got = decode_wanted(paper, blob, spelled)
            assert got is not None
            assert only(got, wanted) == only(terms, wanted), paper.id
            assert set(got.title) | set(got.abstract) <= wanted  # and nothing else decoded
        hits += bool(got.title or got.abstract)
    assert 0 < hits < len(papers)


def blob_of(head: list, title: list[str], tc: list[int], abstract: list[str], ac: list[int]):
    return zlib.compress(
        json.dumps([*head, title, tc, abstract, ac], separators=(",", ":")).encode()
    )


FEATURE = st.text(alphabet=st.sampled_from('ab=≡,"[]\\ é'), min_size=1, max_size=5)


@settings(deadline=None)  # a loaded machine's first example exceeds 200 ms
@given(
    title=st.lists(FEATURE, unique=True, max_size=6),  # as `encode` writes them: once each
    abstract=st.lists(FEATURE, unique=True, max_size=8),
    wanted=st.sets(FEATURE, max_size=5),
)
def test_any_features_decode_as_the_whole_blob_narrowed(
    title: list[str], abstract: list[str], wanted: set[str]
) -> None:
    paper = make_paper("A title", "An abstract.")
    real = encode_head(paper)
    blob = blob_of(real, title, [len(f) for f in title], abstract, [2] * len(abstract))
    got = decode_wanted(paper, blob, WantedFeatures.of(wanted))
    assert only(got, wanted) == narrowed(paper, blob, wanted)


def encode_head(paper) -> list:
    """The head `encode` writes for `paper` (its text hash and word counts)."""
    terms = analyze(paper, analyzer_for(None))
    return json.loads(zlib.decompress(encode_json(paper, terms)))[:3]


@pytest.mark.parametrize(
    "blob",
    [
        b"not zlib",
        zlib.compress(b"[1, 2"),
        zlib.compress(b'["0000000000000000",1,2,["a"],[1],["b"],[1]]'),  # another text
        zlib.compress(b'["x",1,2,["a"],[1,2],["b"],[1]]'),
    ],
)
def test_a_damaged_or_foreign_blob_is_refused(blob: bytes) -> None:
    paper = make_paper("A title", "An abstract.")
    spelled = WantedFeatures.of({"a", "b"})
    assert decode_wanted(paper, blob, spelled) is None
    assert decode(paper, blob) is None


def test_mismatched_lists_are_refused_like_the_whole_decode() -> None:
    paper = make_paper("A title", "An abstract.")
    head = encode_head(paper)
    for title, tc in ((["a", "b"], [1]), (["a"], [1, 2]), ([], [1]), (["a"], [])):
        blob = blob_of(head, title, tc, ["b"], [1])
        assert decode_wanted(paper, blob, WantedFeatures.of({"a", "b"})) is None
