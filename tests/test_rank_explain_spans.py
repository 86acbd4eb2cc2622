"""The explanations' span finder gives what `Analyzer.feature_spans` gives (email
why-lines, `rank --explain` and the archive's highlights all read it)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.rank.analyzer import Analyzer
from digest.rank.snippets import span_finder

PLAIN = Analyzer()
WITH_SYNONYMS = Analyzer(
    {"unlearning": ["data removal", "forgetting"], "LLM": ["foundation model"]}
)
TEXTS = [
    "We use Low-Rank Adaptation (LoRA) and QLoRA for parameter-efficient fine-tuning.",
    "Fine tuning, finetuning and fine-tuning; LLMs' and the model's foundation models.",
    "Data removal -- machine unlearning -- is forgetting: data-removal at scale.",
    "Text-to-video diffusion models for video generation; video-diffusion wins.",
    "Met$^2$Net and StyleGANs beat ORGAN; 量子化 モデル and Привет, мир.",
    "Speech (TTS) and ASR: text-to-speech, automatic speech recognition.",
    "",
    "!!! ... 🚀",
]


def _wanted(analyzer: Analyzer, texts: list[str]) -> frozenset[str]:
    return frozenset(f for t in texts for f in analyzer.features(t)[0])


def test_the_finder_gives_the_analyzers_spans_in_its_order() -> None:
    for analyzer in (PLAIN, WITH_SYNONYMS):
        every = _wanted(analyzer, TEXTS)
        some = _wanted(analyzer, ["LoRA video diffusion", "data removal", "speech"])
        for wanted in (every, some, frozenset({"≡lora"})):
            finder = span_finder(analyzer, wanted)
            for _ in range(2):  # the second time from what it remembered
                for text in TEXTS:
                    assert finder.spans(text) == analyzer.feature_spans(text, wanted)


WORDS = st.sampled_from(
    ["LoRA", "low", "rank", "adaptation", "fine", "tuning", "video", "diffusion", "data",
     "removal", "forgetting", "speech", "TTS", "model's", "LLMs", "x$^2$", "量子", "of"]
)  # fmt: skip
GAPS = st.sampled_from([" ", "-", " - ", ", ", ". ", " (", ") ", "--", "\u2011", "  "])


@given(st.lists(st.tuples(WORDS, GAPS), max_size=30))
@settings(max_examples=300, deadline=None)
def test_any_text_of_such_words_gives_the_same_spans(parts: list[tuple[str, str]]) -> None:
    text = "".join(w + g for w, g in parts)
    wanted = _wanted(WITH_SYNONYMS, ["LoRA fine-tuning", "video diffusion", "data removal"])
    assert span_finder(WITH_SYNONYMS, wanted).spans(text) == WITH_SYNONYMS.feature_spans(
        text, wanted
    )
