"""The per-profile cut-off (`rank.cutoff`): synthetic score vectors, then wired into rank()."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from digest.model import Paper
from digest.rank import RankSettings, make_profile, prepare, rank, rank_prepared
from digest.rank.cutoff import RULES, cut

from .factories import make_paper

NOW = datetime(2025, 10, 17, 6, 0)
SETTINGS = RankSettings(default_min_score=0.3, cutoff_ratio=0.5, default_max_items=10)

#: A clear gap: three strong matches, then a tail of passing mentions.
CLEAR_GAP = np.array([0.9, 0.85, 0.8, 0.42, 0.4, 0.38, 0.36, 0.35, 0.0, 0.0])
#: Few and modest: a profile whose words are rare today; its best is only 0.5.
FEW_MODEST = np.array([0.5, 0.45, 0.4, 0.0, 0.0, 0.0])
#: Flat background: a vague profile whose every match is a trace under the floor.
FLAT_BACKGROUND = np.full(300, 0.25)
#: Many strong: more good matches than one email holds.
MANY_STRONG = np.linspace(0.9, 0.7, 40)


def test_a_clear_gap_keeps_the_strong_matches_and_drops_the_tail() -> None:
    got = cut(CLEAR_GAP, SETTINGS)
    assert (got.keep, got.rule) == (3, "relative")
    assert got.threshold == pytest.approx(0.45)
    assert "0.5 x the day's best match (0.90)" in got.reason


def test_a_profile_whose_best_is_modest_still_gets_its_matches() -> None:
    got = cut(FEW_MODEST, SETTINGS)
    assert (got.keep, got.rule) == (3, "none")


def test_a_vague_profile_does_not_flood_the_reader() -> None:
    got = cut(FLAT_BACKGROUND, SETTINGS)
    assert (got.keep, got.rule) == (0, "floor")
    assert "floor 0.30" in got.reason


def test_max_items_still_caps() -> None:
    got = cut(MANY_STRONG, SETTINGS)
    assert (got.keep, got.rule, got.reason) == (10, "max_items", "past max_items 10")
    assert cut(MANY_STRONG, SETTINGS, max_items=3).keep == 3


def test_no_single_global_threshold_gives_the_same_cuts() -> None:
    """The rule reads each profile's day: replaced by any one global number, at least one
    of these vectors would be cut elsewhere."""
    cases = [CLEAR_GAP, FEW_MODEST, FLAT_BACKGROUND, MANY_STRONG]
    want = [cut(v, SETTINGS).keep for v in cases]
    for t in np.linspace(0.01, 1.0, 100):
        global_only = RankSettings(default_min_score=float(t), cutoff_ratio=0.0)
        assert [cut(v, global_only).keep for v in cases] != want, t


def test_the_readers_min_score_wins() -> None:
    low = cut(CLEAR_GAP, SETTINGS, min_score=0.37)
    assert (low.keep, low.rule, low.threshold) == (6, "min_score", pytest.approx(0.37))
    assert "min_score 0.37" in low.reason
    assert cut(FLAT_BACKGROUND, SETTINGS, min_score=0.2).keep == 10  # below the floor: kept
    assert cut(CLEAR_GAP, SETTINGS, min_score=0.95).keep == 0


def test_order_does_not_matter_and_nothing_matching_keeps_nothing() -> None:
    assert cut(CLEAR_GAP[::-1].copy(), SETTINGS) == cut(CLEAR_GAP, SETTINGS)
    empty = cut(np.zeros(5), SETTINGS)
    assert (empty.keep, empty.rule) == (0, "none")
    assert cut(np.zeros(0), SETTINGS).keep == 0
    assert {cut(v, SETTINGS).rule for v in (CLEAR_GAP, FLAT_BACKGROUND)} <= set(RULES)


FILLER = (
    "We study a problem and report results on standard benchmarks with careful "
    "ablations, showing consistent gains over strong baselines in several settings."
)


#: A stricter ratio than SETTINGS: a title match plus three mentions reaches ~0.8 on six
#: papers, a single mention in an abstract ~0.43.
STRICT = RankSettings(default_min_score=0.3, cutoff_ratio=0.6)


def _papers() -> list[Paper]:
    """One paper about quantization (the title), then five that mention it in passing."""
    strong = make_paper(
        "Quantization of transformers",
        f"Quantization of weights, quantization of activations, quantization of caches. {FILLER}",
        id="strong",
        seen=None,
        sources=(),
    )
    weak = [
        make_paper(
            f"Graph models {i}",
            f"We also try quantization once. {FILLER}",
            id=f"w{i}",
            seen=None,
            sources=(),
        )
        for i in range(5)
    ]
    return [strong, *weak]


def test_rank_cuts_each_profile_on_its_own_day() -> None:
    """In rank(): the strong paper alone passes max(floor, ratio * best); with the same
    floor and no ratio (one global threshold) the passing mentions come in too; a window
    that starts after the strong paper reads a day whose best is a passing mention."""
    papers = _papers()
    prepared = prepare(papers, NOW, STRICT)
    profile = make_profile("q", "quantization")
    (day,) = rank_prepared(prepared, [profile])
    assert [i.paper.id for i in day.items] == ["strong"]
    assert day.matched == 1
    flat = RankSettings(default_min_score=STRICT.default_min_score, cutoff_ratio=0.0)
    (everything,) = rank(papers, [profile], NOW, flat)
    assert len(everything) == 6, "the passing mentions are above the floor"
    (later,) = rank_prepared(prepared, [profile], start=[1])
    assert {i.paper.id for i in later.items} == {f"w{i}" for i in range(5)}
    # the reader's own min_score overrides the day's rule
    (own,) = rank_prepared(prepared, [make_profile("q", "quantization", min_score=0.3)])
    assert len(own.items) == 6


def test_a_sent_paper_still_sets_the_days_bar() -> None:
    """The ledger removes what the reader had, not the day's best: the weak tail stays out."""
    prepared = prepare(_papers(), NOW, STRICT)
    (again,) = rank_prepared(prepared, [make_profile("q", "quantization")], [{"strong"}])
    assert again.items == ()
