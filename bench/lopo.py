"""Leave-one-profile-out tuning for `make eval` (bench/eval.py prints what this returns).

Every point of a fixed grid over the tuned constants is ranked with the real ranker
(`rank.rank_prepared` on one index of the stored papers) and scored per profile with
evaluate.py's own formulas; `lopo` then picks, for each held-out profile, the point best on
the others and scores the held-out profile with it.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from digest import rank
from digest.model import Paper, Profile

#: The constants tuned on the dev profiles, and the grid each is chosen from.
TUNED: dict[str, tuple[float, ...]] = {
    "idf_power": (1.5, 2.0, 2.5),
    "coverage_power": (0.5, 1.0, 1.5),
    "default_min_score": (0.55, 0.5, 0.45, 0.4, 0.35, 0.3),
    "cutoff_ratio": (0.7, 0.6, 0.5, 0.4, 0.0),
}
#: Ties go to the first point in grid order: the cut-off grids run strict to lenient, so
#: a tie never floods a reader.
#: What a point is chosen by: the mean over profiles of (nDCG@10 + set F1) / 2, so the
#: order and the cut-off both count.
METRICS = ("ndcg", "p", "recall2", "set_p", "set_r", "f1")


def objective(row: dict[str, float]) -> float:
    """A profile's score for choosing a grid point."""
    return (row["ndcg"] + row["f1"]) / 2


@dataclass(frozen=True, slots=True)
class Point:
    """One grid point and its per-profile metric rows (in qrels profile order)."""

    values: dict[str, float]
    rows: list[dict[str, float]]


def load_evaluate(eval_dir: Path) -> ModuleType:
    """evaluate.py as a module, so the figures here use its `fold` and `ndcg`."""
    spec = importlib.util.spec_from_file_location("evaluate", eval_dir / "evaluate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def score_run(ev: ModuleType, qrels: dict[str, Any], run: dict[str, list[str]]) -> list[dict]:
    """evaluate.py's per-profile rows for `run` (profile -> titles, best first)."""
    rows = []
    for prof in qrels["profiles"]:
        js = {ev.fold(t): g for t, g in qrels["judgements"].get(prof["name"], {}).items()}
        uniq = list(dict.fromkeys(ev.fold(t) for t in run.get(prof["name"], [])))
        grades = [js.get(t, 0) for t in uniq]
        top2 = {t for t, g in js.items() if g == 2}
        rel = {t for t, g in js.items() if g >= 1}
        hit = len(rel & set(uniq))
        prec = hit / len(uniq) if uniq else 0.0
        rec = hit / len(rel) if rel else 1.0
        rows.append(
            {
                "ndcg": ev.ndcg(grades, list(js.values()), 10),
                "p": sum(1 for g in grades[:10] if g >= 1) / 10,
                "recall2": (len(top2 & set(uniq[:20])) / len(top2)) if top2 else 1.0,
                "set_p": prec,
                "set_r": rec,
                "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
            }
        )
    return rows


def grid(
    ev: ModuleType,
    qrels: dict[str, Any],
    papers: Sequence[Paper],
    now: datetime,
    base: rank.RankSettings,
    tuned: dict[str, tuple[float, ...]] | None = None,
    day: Any = None,
    related: Any = None,
) -> list[Point]:
    """Every point of `tuned` (default TUNED) over `base`, ranked and scored on one index
    of the papers; `day`: their vectors (a `rank.dense.DenseDay`) for the semantic layer;
    `related`: the related-terms table (`rank.related.RelatedTerms`) for the bridges."""
    tuned = TUNED if tuned is None else tuned
    specs = qrels["profiles"]
    profiles: list[Profile] = [rank.make_profile(s["name"], s["keywords"]) for s in specs]
    prepared = rank.prepare(papers, now, base, dense=day, related=related)
    points = []
    for combo in itertools.product(*tuned.values()):
        values = dict(zip(tuned, combo, strict=True))
        # the index depends on none of the tuned constants, so it is shared
        ranked = rank.rank_prepared(replace(prepared, settings=replace(base, **values)), profiles)
        run = {
            s["name"]: [i.paper.title for i in r.items] for s, r in zip(specs, ranked, strict=True)
        }
        points.append(Point(values, score_run(ev, qrels, run)))
    return points


#: The semantic layer's constants (`rank.dense`), tuned on top of the lexical ones.
TUNED_DENSE: dict[str, tuple[float, ...]] = {
    "dense_z": (4.0, 3.5, 3.0, 2.5),
    "dense_credit": (0.3, 0.4, 0.5, 0.6, 0.7),
}


#: The vocabulary bridges' constants (`rank.related`), tuned on top of the lexical ones;
#: related_credit 0 is the ranker without them.
TUNED_RELATED: dict[str, tuple[float, ...]] = {
    "related_credit": (0.0, 0.5, 0.6, 0.7, 0.8, 0.9),
    "related_terms": (5.0, 10.0, 20.0),
    "sense_floor": (1.0, 0.8, 0.6, 0.4, 0.2),
}


def nested_lopo(
    ev: ModuleType,
    qrels: dict[str, Any],
    papers: Sequence[Paper],
    now: datetime,
    lexical: Sequence[Point],
    day: Any,
    tuned: dict[str, tuple[float, ...]] | None = None,
    related: Any = None,
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Leave-one-profile-out over all the tuned constants, lexical and `tuned` (default
    TUNED_DENSE): for each held-out profile, the lexical point best on the other
    profiles, then on top of it the `tuned` point best on them, scores the held-out
    profile. Returns the mean of those rows and each fold's chosen values."""
    tuned = TUNED_DENSE if tuned is None else tuned
    n = len(qrels["profiles"])
    dense_points: dict[tuple[tuple[str, float], ...], list[Point]] = {}
    held, chosen = [], []
    for out in range(n):
        others = [i for i in range(n) if i != out]
        lex = best_point(lexical, others)
        key = tuple(sorted(lex.values.items()))
        if key not in dense_points:  # a handful of distinct lexical picks: grid each once
            base = replace(rank.RankSettings(), **lex.values)
            dense_points[key] = grid(ev, qrels, papers, now, base, tuned, day, related)
        pick = best_point(dense_points[key], others)
        held.append(pick.rows[out])
        chosen.append(lex.values | pick.values)
    return mean(held), chosen


def mean(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """The mean of each metric over rows."""
    return {m: sum(r[m] for r in rows) / len(rows) for m in METRICS}


def best_point(points: Sequence[Point], profiles: Sequence[int]) -> Point:
    """The point with the best mean objective over `profiles` (the first on ties)."""
    return max(points, key=lambda pt: sum(objective(pt.rows[i]) for i in profiles))


def lopo(points: Sequence[Point], n_profiles: int) -> tuple[dict[str, float], list[Point]]:
    """Leave-one-profile-out: the mean metrics of each held-out profile under the point
    chosen on the others, and the chosen point of each fold."""
    held, chosen = [], []
    for out in range(n_profiles):
        pick = best_point(points, [i for i in range(n_profiles) if i != out])
        held.append(pick.rows[out])
        chosen.append(pick)
    return mean(held), chosen


def oracle_f1(
    ev: ModuleType,
    qrels: dict[str, Any],
    papers: Sequence[Paper],
    now: datetime,
    settings: rank.RankSettings,
) -> float:
    """The best set F1 any cut could reach with hindsight (per profile, the best prefix of
    at most max_items of the ranked list): the ceiling of a cut-off on this ordering."""
    specs = qrels["profiles"]
    profiles = [rank.make_profile(s["name"], s["keywords"], min_score=1e-6) for s in specs]
    ranked = rank.rank(papers, profiles, now, settings)
    best = []
    for at, (spec, items) in enumerate(zip(specs, ranked, strict=True)):
        titles = [i.paper.title for i in items]
        runs = ({spec["name"]: titles[:k]} for k in range(len(titles) + 1))
        best.append(max(score_run(ev, qrels, run)[at]["f1"] for run in runs))
    return sum(best) / len(best)
