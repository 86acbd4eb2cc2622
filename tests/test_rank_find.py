"""The archive search's yes/no match (`digest.rank.find`): the ranker's word rules."""

from __future__ import annotations

import pytest

from digest.errors import QueryError
from digest.rank.analyzer import analyzer_for
from digest.rank.find import compile_search, search_matches, search_terms, spelling_entry

ANALYZER = analyzer_for(None)


def found(query: str, text: str) -> bool:
    have = search_terms(text, ANALYZER)[0]
    return search_matches(compile_search(query, ANALYZER), have)


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("lora", "Better exploration for agents.", False),  # a word, not a substring
        ("lora", "We fine-tune with LoRA adapters.", True),
        ("lora", "A low-rank adaptation of large models.", True),  # the acronym's expansion
        ("fine-tuning", "Finetuning small models.", True),
        ("finetuning", "Fine tuning small models.", True),
        ("fine tuning", "Fine-tuned small models.", True),
        ("transformers", "A transformer for speech.", True),  # plural and singular
        ("video diffusion", "Diffusion models for video.", True),  # every word, apart
        ('"video diffusion"', "Diffusion models for video.", False),  # a phrase: together
        ('"video diffusion"', "A video-diffusion model.", True),
        ("speech, vision", "A vision model.", True),  # commas: alternatives
        ("vision, -survey", "A survey of vision models.", False),  # an exclusion vetoes
        ("the", "The model.", False),  # only function words: nothing to search for
    ],
)
def test_the_search_uses_the_rankers_word_rules(query: str, text: str, expected: bool) -> None:
    assert found(query, text) is expected


def test_bad_syntax_is_a_query_error() -> None:
    with pytest.raises(QueryError):
        compile_search("lora^-1", ANALYZER)


def test_spellings_carry_what_a_query_needs() -> None:
    features, spellings = search_terms("Fine-tuning LoRA models", ANALYZER)
    assert {"finetuning", "fine", "tuning", "lora", "models"} <= spellings
    assert not any(f.startswith("=") for f in features)  # no exact forms
    assert spelling_entry("finetuning", ANALYZER.synonyms) == ["finetun"]
    assert spelling_entry("lora", ANALYZER.synonyms)[-1] == "≡lora"
