"""Packed kept terms (`rank.packed`): a day of blobs scanned at once gives each paper the
wanted features it has, with their counts, as the analysis does; whatever the blobs
beside it hold (head and count words are never taken for features), and a damaged,
foreign or unpackable blob is never used."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.rank import packed
from digest.rank.analyzer import analyzer_for
from digest.rank.terms import PaperTerms, encode, encode_json, repack, terms_wanted

from .factories import make_paper

FEATURE = st.text(alphabet=st.sampled_from("ab=≡é1 "), min_size=1, max_size=4)
COUNT = st.one_of(st.integers(1, 3), st.integers(1, 70_000))  # every count width
FIELD = st.dictionaries(FEATURE, COUNT, max_size=8)  # features once each, in order
PAPER = st.tuples(FIELD, FIELD, st.integers(0, 300), st.integers(0, 2**32 - 1))


def terms_of(title: dict[str, int], abstract: dict[str, int], tw: int, aw: int) -> PaperTerms:
    return PaperTerms(
        tuple(title), tuple(title.values()), tw, tuple(abstract), tuple(abstract.values()), aw
    )


def narrowed(terms: PaperTerms, wanted: set[str]) -> tuple:
    """What of `terms` an index of `wanted` reads, in the order of the terms."""
    title = [(f, c) for f, c in zip(terms.title, terms.title_counts, strict=True) if f in wanted]
    abstract = [
        (f, c) for f, c in zip(terms.abstract, terms.abstract_counts, strict=True) if f in wanted
    ]
    return (
        tuple(f for f, _ in title),
        tuple(c for _, c in title),
        terms.title_words,
        tuple(f for f, _ in abstract),
        tuple(c for _, c in abstract),
        terms.abstract_words,
    )


@settings(max_examples=40, deadline=None)
@given(papers=st.lists(PAPER, min_size=1, max_size=6), wanted=st.sets(FEATURE, max_size=6))
def test_a_batch_of_packed_blobs_gives_each_paper_its_wanted_features(
    papers: list, wanted: set[str]
) -> None:
    made = [make_paper(f"Paper {n}", f"Abstract {n}.") for n in range(len(papers))]
    terms = [terms_of(*p) for p in papers]
    blobs = [encode(p, t) for p, t in zip(made, terms, strict=True)]
    assert all(packed.is_packed(b) for b in blobs)
    got = packed.wanted_terms(made, blobs, wanted)
    assert got == [narrowed(t, wanted) for t in terms]


def test_a_wanted_hash_in_a_head_or_count_word_is_not_a_feature() -> None:
    """Make the one count word of a paper spell a wanted feature's hash: still no hit."""
    wanted = next(f"f{n}" for n in range(99) if 0 not in packed.feature_hash(f"f{n}").to_bytes(8))
    value = packed.feature_hash(wanted)
    counts = [(value >> (8 * b)) & 0xFF for b in range(8)]  # its little-endian bytes
    paper = make_paper("A title", "An abstract.")
    title = tuple(f"w{n}" for n in range(8))
    terms = PaperTerms(title, tuple(counts), 8, (), (), 0)
    blob = encode(paper, terms)
    assert packed.is_packed(blob)
    (got,) = packed.wanted_terms([paper], [blob], {wanted, "w3"})
    assert got == (("w3",), (counts[3],), 8, (), (), 0)


@pytest.mark.parametrize("cut", [1, 8, 16])
def test_a_damaged_or_foreign_packed_blob_is_refused(cut: int) -> None:
    analyzer = analyzer_for(None)
    paper = make_paper("LoRA adapters for speech", "We adapt speech models with LoRA.")
    blob = encode(paper, (terms := _analysed(paper)))
    assert packed.is_packed(blob)
    other = replace(paper, abstract="Another abstract about speech.")
    assert packed.wanted_terms([paper, other], [blob[:-cut], blob], {"speech"}) == [None, None]
    # terms_wanted analyses those papers instead: the same terms as the analysis
    (got,) = terms_wanted([other], analyzer, {other.id: blob}, {"speech"})
    assert got == _analysed(other)
    assert terms.abstract_counts  # the blob was a real one


def _analysed(paper) -> PaperTerms:
    from digest.rank.terms import analyze

    return analyze(paper, analyzer_for(None))


def test_features_that_share_a_hash_keep_the_json_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    paper = make_paper("LoRA adapters for speech", "We adapt speech models with LoRA.")
    terms = _analysed(paper)
    monkeypatch.setattr(packed, "feature_hash", lambda feature: 7)
    blob = encode(paper, terms)
    assert not packed.is_packed(blob)
    assert blob == encode_json(paper, terms)


def test_an_older_stores_json_blob_repacks_to_the_same_terms() -> None:
    paper = make_paper("LoRA adapters for speech", "We adapt speech models with LoRA.")
    terms = _analysed(paper)
    old = encode_json(paper, terms)
    new = repack(paper, old)
    assert new is not None and packed.is_packed(new) and repack(paper, new) is None
    wanted = {*terms.title, *terms.abstract}
    assert packed.wanted_terms([paper], [new], wanted) == [narrowed(terms, wanted)]
    assert repack(replace(paper, title="Another title"), old) is None  # stale: not kept
