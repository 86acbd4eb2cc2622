"""Profile syntax: parse_keywords, make_profile, keyword compilation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import QueryError
from digest.keywords import MAX_KEYWORDS, MAX_WEIGHT
from digest.model import Keyword
from digest.rank import RankSettings, make_profile, parse_keywords
from digest.rank.analyzer import Analyzer
from digest.rank.query import compile_keyword


def test_comma_string_with_phrases_and_weights() -> None:
    got = parse_keywords('LoRA^2, "video diffusion", fine-tuning, "a, b"^1.5')
    assert got == (
        Keyword("LoRA", False, 2.0),
        Keyword("video diffusion", True, 1.0),
        Keyword("fine-tuning", False, 1.0),
        Keyword("a, b", True, 1.5),
    )


def test_sequence_elements_are_one_keyword_each() -> None:
    got = parse_keywords(['"speech synthesis"', "x^1.5", "a, b", "  ", ""])
    assert got == (Keyword("speech synthesis", True), Keyword("x", False, 1.5), Keyword("a, b"))


def test_open_quote_runs_to_the_end() -> None:
    assert parse_keywords('"video diffusion') == (Keyword("video diffusion", True),)
    assert parse_keywords('LoRA, "video, diffusion') == (
        Keyword("LoRA"),
        Keyword("video, diffusion", True),
    )


def test_caret_inside_a_word_is_not_a_weight() -> None:
    assert parse_keywords("Met^2Net") == (Keyword("Met^2Net"),)


def test_make_profile_moves_minus_keywords_to_exclusions() -> None:
    profile = make_profile("p", "LoRA, -diffusion", exclude=['"video generation"'])
    assert [k.text for k in profile.keywords] == ["LoRA"]
    assert {k.text for k in profile.exclude} == {"diffusion", "video generation"}


def test_a_space_after_the_minus_still_excludes() -> None:
    # The archive's search box (rank/find.py) reads `- survey` as an exclusion: so do we,
    # and the stored text carries no stray space.
    assert parse_keywords("- survey") == (Keyword("-survey"),)
    profile = make_profile("p", "LoRA, - survey, -  video  diffusion")
    assert {k.text for k in profile.exclude} == {"survey", "video diffusion"}


def test_limits_left_unset_follow_the_ranking_defaults() -> None:
    profile = make_profile("p", "LoRA")
    assert (profile.max_items, profile.min_score) == (None, None)
    custom = RankSettings(default_max_items=7, default_min_score=0.2)
    assert (custom.max_items_of(profile), custom.min_score_of(profile)) == (7, 0.2)
    own = make_profile("p", "LoRA", max_items=3, min_score=0.0)
    assert (custom.max_items_of(own), custom.min_score_of(own)) == (3, 0.0)


def test_make_profile_drops_unsearchable_keywords_and_repeats() -> None:
    profile = make_profile("p", ["LoRA", "🚀", "lora^2", "!!!"])
    assert profile.keywords == (Keyword("lora", False, 2.0),)


@pytest.mark.parametrize(
    "keywords, exclude",
    [
        ("", ()),
        ([], ()),
        ("-LoRA", ()),
        ("", ["LoRA"]),
        ("!!!, ...", ()),
        ("🚀🔥", ()),
        ('""', ()),
        ("^2", ()),
    ],
)
def test_no_positive_keyword_is_one_clear_error(keywords: object, exclude: object) -> None:
    with pytest.raises(QueryError, match="no keyword to search for"):
        make_profile("p", keywords, exclude)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: parse_keywords("x" * 10_000), "10000 characters"),
        (lambda: parse_keywords("LoRA^0"), "weight"),
        (lambda: parse_keywords(None), "string or a list"),  # type: ignore[arg-type]
        (lambda: parse_keywords([1, 2]), "string or a list"),  # type: ignore[list-item]
        (lambda: make_profile("", "LoRA"), "name"),
        (lambda: make_profile("p", "LoRA", max_items=0), "max_items"),
        (lambda: make_profile("p", "LoRA", min_score=1.5), "min_score"),
    ],
)
def test_bad_input_is_a_query_error(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QueryError, match=message):
        call()


def test_odd_but_valid_keywords_are_accepted() -> None:
    profile = make_profile("p", ["a.*b(", "[x]+?", "量子化", "Привет", "C++"])
    assert len(profile.keywords) == 5


def test_hyphen_and_solid_keywords_compile_alike() -> None:
    analyzer = Analyzer()
    plans = [compile_keyword(Keyword(t), analyzer, 0.3) for t in ("fine-tuning", "finetuning")]
    assert plans[0] == plans[1]


def test_quoted_phrase_has_no_scattered_part() -> None:
    analyzer = Analyzer()
    quoted = compile_keyword(Keyword("mixed precision training", True), analyzer, 0.3)
    loose = compile_keyword(Keyword("mixed precision training"), analyzer, 0.3)
    assert quoted is not None and loose is not None
    assert quoted.bag == () and len(quoted.need_all) == 2
    assert len(loose.bag) == 3


def test_expansion_keyword_compiles_to_the_acronym_group() -> None:
    plan = compile_keyword(Keyword("low-rank adaptation"), Analyzer(), 0.3)
    assert plan is not None and plan.phrase.features == (("≡lora", 1.0),)


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_parse_keywords_raises_only_query_error(text: str) -> None:
    try:
        keywords = parse_keywords(text)
    except QueryError:
        return
    # What it accepts is usable: text without quotes or padding, a weight in range.
    assert len(keywords) <= MAX_KEYWORDS
    for k in keywords:
        assert k.text and k.text == k.text.strip() and '"' not in k.text, k
        assert 0 < k.weight <= MAX_WEIGHT, k


@given(st.lists(st.text(max_size=60), max_size=8), st.lists(st.text(max_size=30), max_size=3))
@settings(max_examples=300, deadline=None)
def test_make_profile_raises_only_query_error(keywords: list[str], exclude: list[str]) -> None:
    try:
        profile = make_profile("p", keywords, exclude)
    except QueryError:
        return
    assert profile.keywords and all(k.weight > 0 for k in profile.keywords)
    analyzer = Analyzer()
    assert all(compile_keyword(k, analyzer, 0.3) is not None for k in profile.keywords)


def test_keywords_of_only_function_words_are_dropped() -> None:
    """`the` would match every paper: dropped, and a profile of nothing else is refused."""
    with pytest.raises(QueryError, match="no keyword to search for"):
        make_profile("x", ["the", "a", "of"])
    profile = make_profile("x", ["the", "LoRA", '"state of the art"'])
    assert [k.text for k in profile.keywords] == ["LoRA", "state of the art"]


def test_parsing_again_gives_the_same_and_refuses_the_same() -> None:
    """The parser remembers keywords it has parsed (bulk lists repeat them): the answer
    is the same the second time, and a refused keyword is refused again."""
    first = make_profile("a", 'LoRA, the, "video diffusion"^2', "-survey")
    assert make_profile("a", 'LoRA, the, "video diffusion"^2', "-survey") == first
    for _ in range(2):
        with pytest.raises(QueryError, match="weight"):
            parse_keywords("LoRA^-1")
