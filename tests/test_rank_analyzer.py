"""The analyzer: one spelling-insensitive feature set for papers and keywords."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.rank.analyzer import Analyzer, fold, tokenize, words

ANALYZER = Analyzer()


def feats(text: str, analyzer: Analyzer = ANALYZER) -> set[str]:
    return set(analyzer.features(text)[0])


def test_latex_is_stripped_inside_a_word() -> None:
    assert words("Met$^2$Net: forecasting") == ["met2net", "forecasting"]
    assert words("Met^2Net") == ["met2net"]


def test_nfkc_and_case_folding() -> None:
    assert words("ＬｏＲＡ ﬁne") == ["lora", "fine"]
    assert "≡lora" in feats("ＬｏＲＡ")


def test_hyphen_space_and_solid_spellings_meet_in_one_feature() -> None:
    variants = ["fine-tuning", "fine tuning", "finetuning", "Fine‑Tuning"]
    shared = set.intersection(*(feats(v) for v in variants))
    assert {"finetun", "=finetuning"} <= shared
    assert words("fine-tuning") == words("fine tuning")


def test_punctuation_breaks_adjacency() -> None:
    assert "videogener" in feats("video generation")
    assert "videogener" not in feats("video. Generation")
    assert "videogener" not in feats("video, generation")


def test_plural_acronyms_lose_their_s() -> None:
    assert words("LLMs and MLLMs, ViTs") == ["llm", "and", "mllm", "vit"]
    assert "≡mllm" in feats("MLLMs")


def test_acronyms_and_expansions_meet_both_ways() -> None:
    assert "≡llm" in feats("Large Language Models")
    assert "≡llm" in feats("LLMs")
    assert "≡lora" in feats("low-rank adaptation")
    assert "≡lora" in feats("Low Rank Adaptations")
    assert "≡tts" in feats("text to speech")
    assert "≡peft" in feats("Parameter-Efficient Finetuning")


def test_acronyms_are_not_matched_by_stem_cousins() -> None:
    assert "≡clip" in feats("CLIP")
    assert "≡clip" not in feats("gradient clipping")


def test_camelcase_method_names_count_as_their_acronym() -> None:
    assert "≡lora" in feats("QLoRA")
    assert "≡lora" in feats("RandLoRA")
    assert "≡gan" in feats("StyleGAN")
    assert "≡gan" not in feats("ORGAN")  # an all-caps word is not a method name


def test_user_synonyms_join_a_group() -> None:
    analyzer = Analyzer({"unlearning": ["data removal", "forgetting"]})
    group = feats("unlearning", analyzer) & feats("data removal", analyzer)
    assert any(f.startswith("≡") for f in group)
    assert group & feats("Forgetting", analyzer)
    assert not group & feats("forgetting", ANALYZER)


def test_user_synonyms_merge_with_the_builtin_table() -> None:
    analyzer = Analyzer({"LLM": ["foundation model"]})
    assert "≡llm" in feats("foundation models", analyzer)
    assert "≡llm" in feats("large language model", analyzer)


def test_spans_point_at_the_written_words() -> None:
    text = "We use Low-Rank Adaptation (LoRA)."
    spans = {text[s:e] for f, s, e in ANALYZER.feature_spans(text) if f == "≡lora"}
    assert spans == {"Low-Rank Adaptation", "LoRA"}


def test_scripts_without_spaces_are_split_per_character() -> None:
    assert words("量子化 モデル") == ["量", "子", "化", "モ", "デ", "ル"]
    assert words("Привет, мир") == ["привет", "мир"]
    assert words("🚀 !!! ...") == []


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_analysis_never_raises(text: str) -> None:
    found, count = ANALYZER.features(text)
    assert count == len(tokenize(text))
    assert all(isinstance(f, str) and f for f in found)
    ANALYZER.feature_spans(text)


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_analysis_is_idempotent_on_its_own_output(text: str) -> None:
    once = " ".join(words(text))
    assert words(once) == words(text)
    assert fold(fold(text)) == fold(text)


@given(
    st.lists(st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8), min_size=2, max_size=4)
)
@settings(max_examples=200, deadline=None)
def test_hyphen_and_space_variants_give_the_same_words(parts: list[str]) -> None:
    assert words("-".join(parts)) == words(" ".join(parts)) == parts
    solid = feats("".join(parts[:2]))
    assert solid & feats("-".join(parts[:2])) & feats(" ".join(parts[:2]))
