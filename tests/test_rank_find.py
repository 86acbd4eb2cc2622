"""The archive search's yes/no match (`digest.rank.find`): the ranker's word rules."""

from __future__ import annotations

import pytest

from digest.errors import QueryError
from digest.rank.analyzer import analyzer_for
from digest.rank.find import compile_search, search_hashes, search_matches, search_terms

from .factories import make_paper

ANALYZER = analyzer_for(None)


def found(query: str, title: str, abstract: str = "") -> bool:
    have = search_terms(make_paper(title, abstract), ANALYZER)
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


def test_an_abstract_counts_for_the_words_it_uses_twice() -> None:
    once = "We study speech. Results are strong."
    twice = "We study speech. Speech results are strong."
    assert not found("speech", "A model", once)
    assert found("speech", "A model", twice)
    assert found("speech", "A speech model", once)  # a title's words always count
    assert found("fine-tuning", "A model", "Fine-tuning helps; finetuning more helps more.")
    assert not found("speech, -survey", "A speech model", "A survey. Another survey.")


def test_bad_syntax_is_a_query_error() -> None:
    with pytest.raises(QueryError):
        compile_search("lora^-1", ANALYZER)


def test_a_papers_hashes_are_the_same_from_kept_terms_or_its_text() -> None:
    """The index reads the hashes ingest kept (packed, or spelled in the JSON layout) and
    analyses a paper without any: the same set of hashes each way (the title's, and the
    abstract's used twice), exact forms included (a hash does not say what it is), which
    `search_terms` leaves out."""
    from digest.rank import packed, terms

    paper = make_paper("Fine-tuning LoRA models", "We adapt transformers with LoRA. LoRA wins.")
    kept = terms.analyze(paper, ANALYZER)
    blobs = {"packed": terms.encode(paper, kept), "json": terms.encode_json(paper, kept)}
    assert packed.is_packed(blobs["packed"]) and not packed.is_packed(blobs["json"])
    often = [f for f, n in zip(kept.abstract, kept.abstract_counts, strict=True) if n >= 2]
    assert "≡lora" in often and "transform" not in often
    wanted = {packed.feature_hash(f) for f in (*kept.title, *often)}
    for blob in (blobs["packed"], blobs["json"], None, b"damaged"):
        (got,) = search_hashes([paper], ANALYZER, {paper.id: blob} if blob else None)
        assert set(got.tolist()) == wanted
    features = search_terms(make_paper("Fine-tuning LoRA models", ""), ANALYZER)
    assert {"finetun", "≡lora", "model"} <= features
    assert not any(f.startswith("=") for f in features)


def test_a_days_hashes_read_at_once_are_each_papers_own() -> None:
    """`search_hashes` of many papers at once (packed blobs read as one array, with JSON,
    stale and missing blobs between them, counts wider than a byte, a paper without
    features) gives each paper what it gets alone, in order."""
    from digest.rank import terms

    papers = [
        make_paper("Fine-tuning LoRA models", "We adapt transformers with LoRA. LoRA wins."),
        make_paper("Speech at scale", " ".join(["speech"] * 300) + " and TTS, TTS."),
        make_paper("", ""),
        make_paper("Video diffusion", "Diffusion for video. Video diffusion wins."),
        make_paper("Stale blob", "Its text changed after it was kept."),
        make_paper("Quantization", "Quantization of quantization models."),
    ]
    blobs = {p.id: terms.encode(p, terms.analyze(p, ANALYZER)) for p in papers}
    blobs[papers[3].id] = terms.encode_json(papers[3], terms.analyze(papers[3], ANALYZER))
    blobs[papers[4].id] = blobs[papers[0].id]  # made from another text
    del blobs[papers[5].id]
    alone = [search_hashes([p], ANALYZER, blobs)[0].tolist() for p in papers]
    together = [a.tolist() for a in search_hashes(papers, ANALYZER, blobs)]
    assert together == alone
    assert together[2] == [] and len(together[1]) > 2
    assert [a.tolist() for a in search_hashes(papers[:3], ANALYZER, blobs)] == alone[:3]


def test_damaged_packed_blobs_among_sound_ones_are_analysed_instead() -> None:
    """A packed blob whose head does not fit its length (cut short, a count width no blob
    has) is not read among the others' (its hashes would be another paper's bytes): the
    paper gets the hashes of its analysed text, and its neighbours their own."""
    from digest.rank import terms

    papers = [
        make_paper("Fine-tuning LoRA models", "We adapt transformers with LoRA. LoRA wins."),
        make_paper("Speech at scale", "Speech and TTS, TTS and speech."),
        make_paper("Video diffusion", "Diffusion for video. Video diffusion wins."),
        make_paper("Quantization", "Quantization of quantization models."),
    ]
    sound = {p.id: terms.encode(p, terms.analyze(p, ANALYZER)) for p in papers}
    analysed = [set(search_hashes([p], ANALYZER)[0].tolist()) for p in papers]
    cut = dict(sound)
    cut[papers[1].id] = sound[papers[1].id][:-8]  # shorter than its head says
    odd = bytearray(sound[papers[2].id])
    odd[28] = 3  # a count width `pack` never writes
    cut[papers[2].id] = bytes(odd)
    got = search_hashes(papers, ANALYZER, cut)
    assert [set(a.tolist()) for a in got] == analysed
    assert got[0].tolist() == search_hashes(papers[:1], ANALYZER, sound)[0].tolist()
    assert got[3].tolist() == search_hashes(papers[3:], ANALYZER, sound)[0].tolist()
