"""Learning from ratings (`rank.learn`): a like admits papers like the liked one, bounded;
a dislike does not hijack a strong keyword match; no ratings change nothing; the send, the
CLI and `rank --explain` use the stored ratings and say so in the why-line."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest import pipeline, rank
from digest.config import Config, load_config
from digest.deliver.memory import MemoryBackend
from digest.model import Paper
from digest.rank.learn import Rated
from digest.store import Store
from digest.subscriptions import subscribe

from .factories import make_paper
from .test_cli import invoke

NOW = datetime(2025, 10, 16, 9, tzinfo=UTC)
FILLER = [
    ("Sparse attention for long documents", "We sparsify attention over long documents."),
    ("Robot grasping from tactile sensing", "Tactile sensors guide a robot arm to grasp."),
    ("Weather forecasting with transformers", "Transformers forecast weather from radar."),
    ("Graph coloring heuristics", "Heuristics colour the vertices of large graphs quickly."),
    ("Compilers for tensor programs", "A compiler schedules tensor programs on accelerators."),
    ("Federated optimisation with drift", "Clients drift; a server corrects the aggregate."),
    ("Image segmentation of satellites", "Satellite images are segmented into land use."),
    ("Music generation with tokens", "Discrete tokens of audio make music generation easy."),
    ("Retrieval of legal cases", "Legal cases are retrieved by citation and by text."),
    ("Medical report summarisation", "Radiology reports are summarised for clinicians."),
    ("Chess engines and search", "Tree search with learned values plays chess."),
    ("Traffic prediction on road graphs", "Road sensors feed a traffic predictor."),
]
# a day of a realistic size: the like's lift is measured against the day's background,
# and in a dozen papers no paper can stand far above it
_TOPICS = [
    "volcano",
    "glacier",
    "harbour",
    "orchard",
    "canyon",
    "meadow",
    "lagoon",
    "prairie",
    "tundra",
    "savanna",
    "desert",
    "reef",
    "delta",
    "fjord",
    "marsh",
    "steppe",
    "plateau",
    "estuary",
    "jungle",
    "atoll",
]
FILLER += [
    (f"{a.capitalize()} and {b} surveys", f"Surveys of the {a} near the {b} are compiled.")
    for a, b in zip(_TOPICS, _TOPICS[7:] + _TOPICS[:7], strict=True)
]
LIKED = make_paper(
    "Protein folding with residue contact maps",
    "Residue contact maps predict protein folding; contacts between residues constrain the"
    " folded protein structure.",
)
SIMILAR = make_paper(
    "Contact maps of residues guide protein structure",
    "We predict residue contacts and fold the protein structure from contact maps.",
)
SPEECH = [
    make_paper(f"Speech recognition study {n}", f"Speech recognition of accent {n}.")
    for n in range(4)
]
STRONG = make_paper(
    "Speech speech: a speech recognition benchmark", "Speech recognition of read speech."
)


def _papers() -> list[Paper]:
    return [make_paper(t, a) for t, a in FILLER] + [SIMILAR, *SPEECH, STRONG]


def _rank(papers: list[Paper], ratings: list[Rated] | None = None) -> rank.Ranked:
    prepared = rank.prepare(papers, NOW)
    profile = rank.make_profile("speech", "speech")
    (ranked,) = rank.rank_prepared(prepared, [profile], ratings=[ratings] if ratings else None)
    return ranked


def test_a_like_admits_a_paper_like_it_and_says_so() -> None:
    before = [i.paper.id for i in _rank(_papers()).items]
    assert SIMILAR.id not in before  # no keyword reaches it
    after = _rank(_papers(), [Rated(LIKED, 1)]).items
    lifted = {i.paper.id: i for i in after}
    assert SIMILAR.id in lifted
    why = lifted[SIMILAR.id].why
    assert why == "by your ratings (like: Protein folding with residue contact maps)"
    assert lifted[SIMILAR.id].matched == []  # no keyword matched it
    # the keyword matches are all still there, above the admitted paper
    assert [i.paper.id for i in after if i.paper.id != SIMILAR.id] == before


def test_likes_admit_a_bounded_number_of_papers() -> None:
    clones = [replace(SIMILAR, id=f"clone-{n}", title=f"{SIMILAR.title} {n}") for n in range(6)]
    papers = _papers() + clones
    # every clone stands well above the day's background, yet two come in
    settings = replace(rank.RankSettings(), like_max_papers=2, like_background=0.0, like_gain=0.1)
    prepared = rank.prepare(papers, NOW, settings)
    profile = rank.make_profile("speech", "speech")
    (ranked,) = rank.rank_prepared(prepared, [profile], ratings=[[Rated(LIKED, 1)]])
    by_ratings = [i for i in ranked.items if not i.matched]
    assert len(by_ratings) == 2
    opened = replace(settings, like_max_papers=10)
    (ranked,) = rank.rank_prepared(
        replace(prepared, settings=opened), [profile], ratings=[[Rated(LIKED, 1)]]
    )
    assert len([i for i in ranked.items if not i.matched]) > 2


def test_a_dislike_does_not_drop_a_strong_keyword_match_and_never_comes_back() -> None:
    papers = _papers()
    disliked = SPEECH[0]
    ranked = _rank(papers, [Rated(disliked, -1)])
    ids = [i.paper.id for i in ranked.items]
    assert STRONG.id in ids and disliked.id not in ids
    # a dislike of a paper unlike the keyword matches moves none of them
    unrelated = _rank(papers, [Rated(make_paper(*FILLER[0]), -1)])
    assert [i.paper.id for i in unrelated.items] == [i.paper.id for i in _rank(papers).items]


def test_a_liked_paper_in_the_window_is_not_sent_again() -> None:
    papers = [*_papers(), LIKED]
    ranked = _rank(papers, [Rated(LIKED, 1)])
    assert LIKED.id not in {i.paper.id for i in ranked.items}
    assert SIMILAR.id in {i.paper.id for i in ranked.items}


def test_no_ratings_rank_the_seeds_exactly_as_before(seeded_store: Store) -> None:
    papers = seeded_store.papers()
    prepared = rank.prepare(papers, NOW)
    profiles = [rank.make_profile("a", "speech, TTS"), rank.make_profile("b", "LoRA, adapters")]
    plain = rank.rank_prepared(prepared, profiles)
    assert rank.rank_prepared(prepared, profiles, ratings=[(), ()]) == plain
    assert prepared.vectors is not None and prepared.vectors.built is None  # nothing built
    assert any(r.items for r in plain)


def test_a_rating_counts_for_the_profile_it_is_about() -> None:
    speech = rank.make_profile("speech", "speech")
    protein = rank.make_profile("protein", "protein folding")
    analyzer = rank.prepare([], NOW).analyzer
    settings = rank.RankSettings()
    got = rank.assign_ratings([speech, protein], [Rated(LIKED, 1)], analyzer, settings)
    assert [len(g) for g in got] == [0, 1]
    nowhere = Rated(make_paper(*FILLER[1]), 1)  # none of either's keywords: both
    got = rank.assign_ratings([speech, protein], [nowhere], analyzer, settings)
    assert [len(g) for g in got] == [1, 1]


# -- the store, the send and the CLI -----------------------------------------------------


def _reader_store(config: Config) -> int:
    """The synthetic papers in the project's store, the liked one a week older (it was
    sent before), and a reader of "speech" who liked it: their id."""
    with Store(config.store_path) as store:
        store.add_papers([LIKED], arrived_at=NOW - timedelta(days=7))
        store.add_papers(_papers(), arrived_at=NOW - timedelta(hours=2))
        speech = rank.make_profile("speech", "speech")
        sub = subscribe(config, store, "ada@example.org", speech, NOW, confirmed=True).subscriber
        assert store.rate(sub.id, LIKED.id, 1, NOW - timedelta(days=1))
        return sub.id


@pytest.fixture
def rated_project(project: Path) -> tuple[Path, Config]:
    config = load_config(project / "config.toml", required=True)
    _reader_store(config)
    return project, config


def test_the_send_ranks_each_reader_with_their_ratings(rated_project: tuple[Path, Config]) -> None:
    _, config = rated_project
    with Store(config.store_path) as store:
        speech = rank.make_profile("speech", "speech")
        subscribe(config, store, "bob@example.org", speech, NOW, confirmed=True)
        found = store.rated_papers([1, 2, 99], rank.terms_key(None))
        assert [(p.id, v) for p, v, _ in found[1]] == [(LIKED.id, 1)] and set(found) == {1}
        backend = MemoryBackend()
        pipeline.send_due(config, store, backend, NOW + timedelta(hours=1))
    by_reader = {m.to: m for m in backend.sent}
    ada, bob = by_reader["ada@example.org"], by_reader["bob@example.org"]
    assert SIMILAR.title in ada.text and SIMILAR.title not in bob.text
    assert "by your ratings (like: Protein folding with residue contact maps)" in ada.text
    assert "by your ratings" in ada.html and "by your ratings" not in bob.text


def test_rank_subscriber_and_explain_use_the_ratings(rated_project: tuple[Path, Config]) -> None:
    project, _ = rated_project
    code, out, _ = invoke(project, "rank", "--subscriber", "ada@example.org", "--all")
    assert code == 0 and SIMILAR.title in out
    assert "by your ratings (like: Protein folding with residue contact maps)" in out
    code, out, _ = invoke(project, "rank", "--profile", "speech", "--all")
    assert code == 0 and SIMILAR.title not in out  # the profile alone: keywords only
    code, out, _ = invoke(
        project, "rank", "--subscriber", "ada@example.org", "--all", "--explain", SIMILAR.id
    )
    assert code == 0 and "IN the digest" in out, out
    assert "by your ratings (like: Protein folding with residue contact maps)" in out
    assert "your ratings (1 liked, 0 disliked)" in out
    code, out, _ = invoke(
        project, "rank", "--subscriber", "ada@example.org", "--all", "--explain", LIKED.id
    )
    assert code == 0 and "OUT" in out  # what the reader rated never comes back


def test_preview_subscriber_uses_the_ratings(rated_project: tuple[Path, Config]) -> None:
    project, _ = rated_project
    code, out, _ = invoke(project, "preview", "--subscriber", "ada@example.org", "--all")
    assert code == 0 and SIMILAR.title in out and "by your ratings" in out
    code, out, err = invoke(project, "preview", "--subscriber", "ada@example.org", "-k", "x")
    assert code == 2 and "--subscriber previews a reader's profile as stored" in err
    code, out, err = invoke(project, "preview", "--subscriber", "nobody@example.org")
    assert code == 2 and "no such subscriber" in err
