"""Ratings with the semantic layer on (`rank.alike`): a like also lifts papers that say
the same thing in other words, when `like_dense` mixes meaning in; a rated paper outside
the day brings its stored vector; without vectors, or at like_dense 0, the taste is the
words' alone. Made-up vectors (numpy only); the send's path with the real encoder is in
test_semantic.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from digest import rank
from digest.config import Config
from digest.model import Paper
from digest.rank import dense
from digest.rank.learn import Rated
from digest.store import Store
from digest.window import reader_ratings

from .factories import make_paper
from .test_learn import LIKED, NOW, SPEECH, STRONG, _papers

#: No word of it is a word of LIKED's, nor of "speech": only meaning can bring it in.
MEANT = make_paper(
    "Polypeptide chains adopt their native shape",
    "Amino acid sequences settle into three-dimensional conformations.",
)


def _vectors(papers: list[Paper]) -> tuple[dense.DenseDay, bytes]:
    """Random unit vectors for the day (all but orthogonal in 384 dimensions), MEANT's
    next to LIKED's; and LIKED's vector as the store keeps it."""
    rng = np.random.default_rng(11)
    liked = rng.normal(size=dense.DIM).astype(np.float32)
    rows = rng.normal(size=(len(papers), dense.DIM)).astype(np.float32)
    for j, p in enumerate(papers):
        if p.id == MEANT.id:
            rows[j] = liked + 0.3 * rows[j] / np.sqrt(dense.DIM)
        if p.id == LIKED.id:
            rows[j] = liked
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    liked /= np.linalg.norm(liked)

    def no_keywords(texts: list[str]) -> np.ndarray:  # the keywords' meaning stays out
        return np.zeros((len(texts), dense.DIM), np.float32)

    day = dense.DenseDay(rows, np.ones(len(papers), bool), no_keywords, "made-up")
    return day, dense.encode_vector(liked)


def _ids(papers: list[Paper], ratings: list[Rated], like_dense: float, day: object) -> list[str]:
    settings = replace(rank.RankSettings(), like_dense=like_dense)
    prepared = rank.prepare(papers, NOW, settings, dense=day)  # type: ignore[arg-type]
    profile = rank.make_profile("speech", "speech")
    (ranked,) = rank.rank_prepared(prepared, [profile], ratings=[ratings])
    return [i.paper.id for i in ranked.items]


def test_a_like_lifts_a_paper_in_other_words_when_meaning_counts() -> None:
    papers = [*_papers(), MEANT]
    day, blob = _vectors(papers)
    liked = Rated(LIKED, 1, vector=blob)  # not one of the day's: its stored vector
    assert MEANT.id not in _ids(papers, [liked], 0.0, day)  # words alone
    assert MEANT.id not in _ids(papers, [liked], 0.75, None)  # no layer: words alone
    got = _ids(papers, [liked], 0.75, day)
    assert MEANT.id in got
    assert {s.id for s in (*SPEECH, STRONG)} <= set(got)  # the keyword matches stay
    prepared = rank.prepare(papers, NOW, replace(rank.RankSettings(), like_dense=0.75), dense=day)
    (ranked,) = rank.rank_prepared(
        prepared, [rank.make_profile("speech", "speech")], ratings=[[liked]]
    )
    (item,) = [i for i in ranked.items if i.paper.id == MEANT.id]
    assert item.why == f"by your ratings (like: {LIKED.title})" and not item.matched


def test_a_liked_paper_without_a_vector_is_read_by_its_words() -> None:
    papers = [*_papers(), MEANT]
    day, _ = _vectors(papers)
    words = _ids(papers, [Rated(LIKED, 1)], 0.0, day)
    assert _ids(papers, [Rated(LIKED, 1)], 0.75, day) == words  # nothing to mix in
    assert MEANT.id not in words


def test_a_liked_paper_of_the_day_brings_its_row_and_does_not_come_back() -> None:
    papers = [*_papers(), MEANT, LIKED]
    day, _ = _vectors(papers)
    got = _ids(papers, [Rated(LIKED, 1)], 0.75, day)
    assert MEANT.id in got and LIKED.id not in got


def test_a_dislike_by_meaning_lowers_a_keyword_match_near_it() -> None:
    papers = _papers()
    day, _ = _vectors(papers)
    near, disliked = SPEECH[1], papers[0]  # a paper on sparse attention: no word shared
    # the disliked paper's vector is the near one's: by meaning they are one paper
    rows = day.vectors.copy()
    rows[[p.id for p in papers].index(disliked.id)] = rows[[p.id for p in papers].index(near.id)]
    day = replace(day, vectors=rows)

    def score(like_dense: float) -> float:
        settings = replace(rank.RankSettings(), like_dense=like_dense, like_gain=1.0)
        prepared = rank.prepare(papers, NOW, settings, dense=day)
        opened = replace(rank.make_profile("speech", "speech"), min_score=1e-6)
        (ranked,) = rank.rank_prepared(prepared, [opened], ratings=[[Rated(disliked, -1)]])
        return next(i.score for i in ranked.items if i.paper.id == near.id)

    assert score(1.0) < score(0.0)


def test_reader_ratings_bring_the_stored_vectors_of_the_model_asked_for(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3") as store:
        store.add_papers([LIKED, MEANT], arrived_at=NOW)
        profile = rank.make_profile("s", "speech")
        sub, _ = store.upsert_subscriber("ada@example.org", profile, now=NOW, confirmed=True)
        assert store.rate(sub.id, LIKED.id, 1, NOW)
        store.keep_paper_vectors([(LIKED.id, b"\x00\x3c" * dense.DIM)], "m@128")
        (words,) = reader_ratings(store, [sub.id], None)[sub.id]
        (meant,) = reader_ratings(store, [sub.id], None, "m@128")[sub.id]
        (other,) = reader_ratings(store, [sub.id], None, "another@128")[sub.id]
    assert words.vector is None and other.vector is None
    assert meant.vector == b"\x00\x3c" * dense.DIM and meant.paper.id == LIKED.id


def test_the_archive_cache_keys_ignore_what_only_ratings_read() -> None:
    """The archive ranks the config's profiles, which have no ratings: a ratings constant
    changed (or added, as like_dense was) must not re-rank a year of days."""
    from digest.publish.picks import ranking_basis
    from digest.rank.settings import RATINGS_ONLY

    profiles = [rank.make_profile("speech", "speech")]
    base = rank.RankSettings()
    key = ranking_basis(profiles, base, None)
    for name in RATINGS_ONLY:
        assert ranking_basis(profiles, replace(base, **{name: 3}), None) == key, name
    assert ranking_basis(profiles, replace(base, default_max_items=3), None) != key
    assert ranking_basis(profiles, replace(base, dense_credit=0.1), None) != key


def test_keyword_vectors_are_embedded_once_and_kept(tmp_path: Path) -> None:
    """`window.KeptKeywordVectors`: a keyword is embedded the first time a process ranks
    it and kept; the next process reads it back bit for bit and embeds nothing."""
    from digest.window import KeptKeywordVectors

    asked: list[list[str]] = []

    def embed(texts: Sequence[str]) -> np.ndarray:  # a stand-in model: a vector per text
        asked.append(list(texts))
        rng = np.random.default_rng([ord(c) for t in texts for c in t])
        rows = rng.normal(size=(len(texts), dense.DIM)).astype(np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    with Store(tmp_path / "s.sqlite3") as store:
        first = KeptKeywordVectors(store, embed, "m@128")(["tts", "lora", "tts"])
        assert asked == [["lora", "tts"]] and first.shape == (3, dense.DIM)
        assert np.array_equal(first[0], first[2])
        again = KeptKeywordVectors(store, embed, "m@128")(["lora", "tts", "vit"])
        assert asked[1:] == [["vit"]]  # only the new one
        assert np.array_equal(again[0], first[1]) and np.array_equal(again[1], first[0])
        other = KeptKeywordVectors(store, embed, "other@128")(["lora"])
        assert asked[2:] == [["lora"]] and other.shape == (1, dense.DIM)  # per model
        # a store that cannot be written still ranks: embedded, for this process only
        store._db.execute("PRAGMA query_only = 1")
        KeptKeywordVectors(store, embed, "m@128")(["sam"])
        assert asked[3:] == [["sam"]]
        store._db.execute("PRAGMA query_only = 0")
        assert store.keyword_vectors(["sam", "vit"], "m@128").keys() == {"vit"}
        # what an anonymous visitor types in a web preview is not kept (keep=False)
        KeptKeywordVectors(store, embed, "m@128", keep=False)(["anon", "vit"])
        assert asked[4:] == [["anon"]] and not store.keyword_vectors(["anon"], "m@128")


def test_ratings_read_stored_vectors_only_when_meaning_counts(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`window.ratings_model`: which model's vectors a reader's rated papers are read with
    (`rank --subscriber`, `preview --subscriber`): none while like_dense is 0 (shipped),
    the layer is switched off, or its keyword part is."""
    from digest.rank import encoder
    from digest.window import ratings_model

    def at(**values: float) -> Config:
        return replace(config, ranking=replace(config.ranking, **values))

    monkeypatch.delenv("DIGEST_SEMANTIC", raising=False)
    assert ratings_model(config) is None  # like_dense 0
    on = ratings_model(at(like_dense=0.5))
    assert on == (encoder.model_id() if encoder.all_installed() else None)
    assert ratings_model(at(like_dense=0.5, dense_credit=0.0)) is None
    monkeypatch.setenv("DIGEST_SEMANTIC", "off")
    assert ratings_model(at(like_dense=0.5)) is None


def test_a_readers_taste_does_not_depend_on_who_else_is_in_the_batch() -> None:
    """A profile whose liked paper has no vector is read by its words, whether or not
    another rated profile in the same ranking call brings vectors; on a day whose newest
    papers are not embedded yet, as while ingest catches up."""
    papers = [*_papers(), MEANT]
    day, blob = _vectors(papers)
    present = day.present.copy()
    present[::3] = False  # a third of the day has no vector yet
    day = replace(day, present=present)
    settings = replace(rank.RankSettings(), like_dense=0.75)
    prepared = rank.prepare(papers, NOW, settings, dense=day)
    speech = rank.make_profile("speech", "speech")
    alone = rank.rank_prepared(prepared, [speech], ratings=[[Rated(LIKED, 1)]])
    both = rank.rank_prepared(
        prepared, [speech, speech], ratings=[[Rated(LIKED, 1)], [Rated(LIKED, 1, vector=blob)]]
    )
    assert both[0] == alone[0]
    words = replace(prepared, settings=replace(settings, like_dense=0.0))
    assert alone == rank.rank_prepared(words, [speech], ratings=[[Rated(LIKED, 1)]])
