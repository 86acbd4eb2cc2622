"""rank(): orderings on small hand-made papers, cuts, vetoes, tie-breakers, explanations."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from digest.model import Paper, Profile
from digest.rank import RankSettings, make_profile, match_spans, prepare, rank, rank_prepared

from .factories import make_paper

NOW = datetime(2025, 10, 17, 6, 0)
FILLER = (
    "We study a problem and report results on standard benchmarks with careful "
    "ablations, showing consistent gains over strong baselines in several settings."
)


def paper(pid: str, title: str, abstract: str = "", **kw: object) -> Paper:
    """A parser-fresh paper whose abstract is padded to a realistic length."""
    abstract = f"{abstract} {FILLER}".strip()
    return make_paper(title, abstract, id=pid, seen=None, sources=(), **kw)


def ids(items: tuple) -> list[str]:  # type: ignore[type-arg]
    return [it.paper.id for it in items]


def ranked(papers: list[Paper], keywords: object, **kw: object) -> list[str]:
    kw.setdefault("min_score", 0.0)
    profile = make_profile("p", keywords, **kw)  # type: ignore[arg-type]
    return ids(rank(papers, [profile], NOW)[0])


def test_title_match_beats_abstract_match_and_irrelevant_papers_are_left_out() -> None:
    papers = [
        paper("abs", "A study of models", "We apply quantization to the weights."),
        paper("title", "Quantization of transformers", "We study weights."),
        paper("none", "Graph neural networks", "Message passing."),
    ]
    assert ranked(papers, "quantization") == ["title", "abs"]


def test_phrase_beats_scattered_words_and_quotes_require_the_phrase() -> None:
    papers = [
        paper("apart", "Generation of text", "A video dataset is used for evaluation."),
        paper("together", "Efficient models", "We improve video generation with caching."),
    ]
    assert ranked(papers, "video generation") == ["together", "apart"]
    assert ranked(papers, '"video generation"') == ["together"]


def test_hyphen_space_and_solid_variants_match_each_other() -> None:
    papers = [
        paper("hyphen", "Fine-tuning language models"),
        paper("space", "Fine tuning language models"),
        paper("solid", "Finetuning language models"),
    ]
    for keyword in ("fine-tuning", "finetuning", "fine tuning", '"fine tuning"'):
        assert sorted(ranked(papers, keyword)) == ["hyphen", "solid", "space"], keyword


def test_acronyms_match_expansions_both_ways() -> None:
    papers = [
        paper("acr", "Aligning LLMs with feedback"),
        paper("exp", "Aligning large language models with feedback"),
        paper("lora", "Low-Rank Adaptation of vision transformers"),
        paper("qlora", "QLoRA on a single GPU"),
    ]
    assert sorted(ranked(papers, "LLM")) == ["acr", "exp"]
    assert sorted(ranked(papers, "large language model")) == ["acr", "exp"]
    assert sorted(ranked(papers, "LoRA")) == ["lora", "qlora"]
    assert ranked(papers, "ViT") == ["lora"]


def test_latex_in_titles_matches_plain_keywords() -> None:
    papers = [paper("met", "Met$^2$Net: weather forecasting"), paper("x", "Other work")]
    assert ranked(papers, "Met2Net") == ["met"]


def test_exclusions_veto_however_good_the_match() -> None:
    papers = [
        paper("img", "Diffusion models for image generation"),
        paper("vid", "Diffusion models for video generation", "video diffusion"),
    ]
    assert ranked(papers, "diffusion", exclude=["video"]) == ["img"]
    assert ranked(papers, "diffusion, -video") == ["img"]
    assert ranked(papers, "diffusion", exclude=['"video generation"']) == ["img"]


def test_weights_decide_between_keywords() -> None:
    papers = [paper("a", "Speech recognition"), paper("b", "Image segmentation")]
    assert ranked(papers, "speech^3, segmentation") == ["a", "b"]
    assert ranked(papers, "speech, segmentation^3") == ["b", "a"]


def test_min_score_and_max_items_cut_the_digest() -> None:
    papers = [paper(f"t{i}", f"Quantization method {i}") for i in range(5)]
    papers.append(paper("weak", "Other topic", "Mentions quantization once."))
    assert len(ranked(papers, "quantization", max_items=3)) == 3
    strong = ranked(papers, "quantization", min_score=0.5)
    assert "weak" not in strong and len(strong) == 5
    assert "weak" in ranked(papers, "quantization", min_score=0.1)


def test_popularity_and_recency_only_break_ties() -> None:
    papers = [
        paper("old", "Speech synthesis", published=date(2024, 1, 1)),
        paper("new", "Speech synthesis", published=date(2025, 10, 16)),
        paper("pop", "Speech synthesis", upvotes=300, published=date(2024, 1, 1)),
        paper("viral", "Unrelated topic", upvotes=10_000, published=date(2025, 10, 17)),
    ]
    got = ranked(papers, "speech synthesis")
    assert got[-1] == "old" and "viral" not in got
    assert set(got) == {"old", "new", "pop"}


def test_scores_are_normalised_across_profiles() -> None:
    papers = [paper("a", "LoRA for diffusion models"), paper("b", "Graph learning")]
    one = make_profile("one", "LoRA", min_score=0.0)
    three = make_profile("three", "LoRA, adapters, prompt tuning", min_score=0.0)
    a, b = rank(papers, [one, three], NOW)
    assert 0 < a[0].score <= 1
    assert a[0].score == pytest.approx(b[0].score)


def test_explanations_name_keywords_fields_and_snippets() -> None:
    papers = [
        paper(
            "p",
            "QLoRA: efficient finetuning",
            "We propose a method. It uses low-rank adapters and 4-bit quantization. "
            "Finally, we release code.",
        )
    ]
    profile = make_profile("p", ["LoRA", "quantization", "speech"], min_score=0.0)
    (item,) = rank(papers, [profile], NOW)[0]
    assert [(m.keyword, m.fields) for m in item.matches] == [
        ("LoRA", ("title", "abstract")),
        ("quantization", ("abstract",)),
    ]
    assert item.snippets == ("It uses low-rank adapters and 4-bit quantization.",)
    # The why names the words as the paper writes them, and the keyword they stand for.
    assert [m.words for m in item.matches] == [("QLoRA", "low-rank adapters"), ("quantization",)]
    assert item.why == (
        "matches QLoRA, low-rank adapters (title + abstract) for LoRA; quantization (abstract)"
    )


def test_a_multi_word_keyword_matched_in_part_says_partly() -> None:
    papers = [
        paper("whole", "Video diffusion at scale", "We train video diffusion models."),
        paper("apart", "Diffusion for images", "A video of the results is online."),
    ]
    profile = make_profile("p", ["video diffusion"], min_score=0.0)
    items = {i.paper.id: i for i in rank(papers, [profile], NOW)[0]}
    whole, apart = items["whole"].matches[0], items["apart"].matches[0]
    assert (whole.words, whole.partly) == (("Video diffusion",), False)
    assert (apart.words, apart.partly) == (("Diffusion", "video"), True)
    assert (
        items["apart"].why
        == "matches partly Diffusion, video (title + abstract) for video diffusion"
    )
    # Quoted, the words must stand together: that paper is not matched at all.
    quoted = make_profile("q", ['"video diffusion"'], min_score=0.0)
    assert [i.paper.id for i in rank(papers, [quoted], NOW)[0]] == ["whole"]


def test_match_spans_for_highlighting() -> None:
    text = "We fine-tune with Low-Rank Adaptation (LoRA) and LLMs."
    profile = make_profile("p", "LoRA, large language model")
    assert [text[s:e] for s, e in match_spans(text, profile)] == [
        "Low-Rank Adaptation",
        "LoRA",
        "LLMs",
    ]


def test_user_synonyms() -> None:
    papers = [paper("a", "Removing training data from trained models")]
    profile = make_profile("p", "machine unlearning", min_score=0.0)
    assert rank(papers, [profile], NOW)[0] == ()
    got = rank(
        papers,
        [profile],
        NOW,
        synonyms={"machine unlearning": ["data removal", "removing training data"]},
    )
    assert ids(got[0]) == ["a"]


def test_non_latin_keywords() -> None:
    papers = [paper("zh", "量子化 大模型"), paper("ru", "Квантование моделей"), paper("x", "Other")]
    assert ranked(papers, "量子化") == ["zh"]
    assert ranked(papers, "квантование") == ["ru"]


def test_pure_and_total() -> None:
    papers = [paper("a", "LoRA"), paper("b", "Speech")]
    profiles = [make_profile("x", "LoRA"), make_profile("y", "speech, -LoRA")]
    assert rank(papers, profiles, NOW) == rank(papers, profiles, NOW)
    assert rank([], profiles, NOW) == [(), ()]
    assert rank(papers, [], NOW) == []
    handmade = Profile("raw", (), max_items=5)  # no keyword: nothing matches
    assert rank(papers, [handmade], NOW) == [()]


def test_many_profiles_in_small_chunks_give_the_same_answer() -> None:
    papers = [
        paper(str(i), t)
        for i, t in enumerate(
            ["LoRA adapters", "speech synthesis", "video diffusion", "LoRA for speech"]
        )
    ]
    profiles = [
        make_profile(f"p{i}", kws, min_score=0.0)
        for i, kws in enumerate(
            ["LoRA", "speech", "video diffusion, -LoRA", "adapters, speech^2"] * 5
        )
    ]
    small = RankSettings(profile_chunk=3)
    assert rank(papers, profiles, NOW, small) == rank(papers, profiles, NOW)


def test_one_index_serves_readers_with_different_windows_and_ledgers() -> None:
    """`start` (a reader's window in arrival order) and `exclude_ids` (their ledger) cut
    before max_items, so every reader still gets a full digest from one shared index."""
    papers = [paper(str(i), f"LoRA adapters part {i}") for i in range(6)]
    lora = make_profile("lora", "LoRA", max_items=2, min_score=0.0)
    prepared = prepare(papers, NOW)
    everyone, late, ledger = rank_prepared(
        prepared, [lora, lora, lora], exclude_ids=[(), (), {"0", "1", "4"}], start=[0, 3, 0]
    )
    assert [i.paper.id for i in everyone.items] == [
        i.paper.id for i in rank(papers, [lora], NOW)[0]
    ]
    assert len(late.items) == 2 and all(int(i.paper.id) >= 3 for i in late.items)
    assert len(ledger.items) == 2 and not {i.paper.id for i in ledger.items} & {"0", "1", "4"}
    # what matched in all, before the cut: "N more matched today"
    assert (everyone.matched, late.matched, ledger.matched) == (6, 3, 3)


def test_the_top_k_prefilter_keeps_each_profiles_best_in_order() -> None:
    """`select._contenders` drops only pairs that cannot make their profile's top
    `limit`: sorting what it keeps gives the same first `limit` pairs, ties included
    (scores on and next to bucket edges, limits of 0, 1 and more than a row holds)."""
    import numpy as np

    from digest.rank.select import _contenders

    rng = np.random.default_rng(3)
    n_rows = 40
    rows = np.sort(rng.integers(0, n_rows, 3000))
    edges = np.array([0.25, 0.5, 127 / 256, 1.0], np.float32)
    sc = np.where(
        rng.random(3000) < 0.3, rng.choice(edges, 3000), rng.random(3000).astype(np.float32)
    ).astype(np.float32)
    cols = rng.integers(0, 500, 3000)
    limits = rng.choice(np.array([0, 1, 5, 10, 200]), n_rows)

    def top(r: np.ndarray, c: np.ndarray, s: np.ndarray) -> list[tuple[int, int, float]]:
        order = np.argsort(r + (1.0 - s.astype(np.float64)) * 0.5, kind="stable")
        r, c, s = r[order], c[order], s[order]
        rank_in_row = np.arange(len(r)) - np.searchsorted(r, np.arange(n_rows))[r]
        keep = rank_in_row < limits[r]
        return list(zip(r[keep].tolist(), c[keep].tolist(), s[keep].tolist(), strict=True))

    kept = _contenders(rows, cols, sc, sc, limits)
    assert len(kept[0]) < len(rows) / 2  # it does prune
    assert top(kept[0], kept[1], kept[3]) == top(rows, cols, sc)
