"""`make eval`, learning from ratings: simulated readers on the dev profiles.

For each dev profile, a reader rates what the keyword ranker shows them: going down the
profile's keyword ranking (the digest first, then what `--show-below` lists under the
cut-off), they like the first `LIKES` papers judged relevant (grade >= 1) and dislike the
first `DISLIKES` judged irrelevant (grade 0, i.e. not in the judgements). Then the profile
is ranked again with those ratings (`rank.rank_prepared(..., ratings=...)`, the code a
send runs) and scored on the REST: the rated papers are left out of the run and of the
judgements. The baseline is the keywords alone on the same remaining papers (the rated
papers excluded before the cut, so it too fills its max_items).

The constants of `rank.learn` (TUNED below) are chosen on these profiles from a fixed
grid; leave-one-profile-out figures (each profile scored with the point chosen on the
other 15, by (nDCG@10 + set F1) / 2 as bench/lopo.py) say what to expect on unseen ones.

    python bench/ratings_eval.py DB     (`make eval` runs it on its store of the seeds)
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.lopo import Point, best_point, load_evaluate, lopo, mean, score_run  # noqa: E402
from digest import rank  # noqa: E402
from digest.model import Paper, Profile  # noqa: E402
from digest.rank.dense import DenseDay  # noqa: E402
from digest.rank.learn import Rated  # noqa: E402

LIKES, DISLIKES = 3, 3
#: The constants of `rank.learn` chosen here, and the grid each is chosen from.
TUNED: dict[str, tuple[float, ...]] = {
    "like_weight": (0.5, 0.7),
    "like_background": (0.5, 1.0, 2.0),
    "like_gain": (1.0, 2.0, 4.0),
    "like_max_papers": (5, 10),
    "dislike_weight": (0.0, 0.5, 1.0),
}
#: With the semantic layer, how much meaning counts in "alike", chosen the same way, with
#: the lift's constants beside it (a mixed z has another tail than the words' alone).
TUNED_MEANING: dict[str, tuple[float, ...]] = {
    "like_dense": (0.0, 0.25, 0.5, 0.75, 1.0),
    "like_background": (1.0, 2.0),
    "like_gain": (2.0, 4.0),
}


def simulated_ratings(
    ev: ModuleType, qrels: dict[str, Any], prepared: rank.Prepared, profiles: Sequence[Profile]
) -> list[list[Rated]]:
    """Each profile's ratings: the first LIKES relevant and DISLIKES irrelevant papers of
    its keyword ranking, cut opened (every paper a keyword reaches, in the digest's order)."""
    n = len(prepared.papers)
    opened = [replace(p, min_score=1e-6, max_items=n) for p in profiles]
    out = []
    blobs = prepared.vectors.blobs if prepared.vectors is not None else None
    for spec, ranked in zip(qrels["profiles"], rank.rank_prepared(prepared, opened), strict=True):
        judged = {ev.fold(t): g for t, g in qrels["judgements"].get(spec["name"], {}).items()}
        likes: list[Paper] = []
        dislikes: list[Paper] = []
        for item in ranked.items:
            grade = judged.get(ev.fold(item.paper.title), 0)
            pile = likes if grade >= 1 else dislikes
            if len(pile) < (LIKES if grade >= 1 else DISLIKES):
                pile.append(item.paper)
        out.append(
            [
                Rated(p, vote, blobs.get(p.id) if blobs else None)
                for pile, vote in ((likes, 1), (dislikes, -1))
                for p in pile
            ]
        )
    return out


def _rest(ev: ModuleType, qrels: dict[str, Any], ratings: list[list[Rated]]) -> dict[str, Any]:
    """The judgements without the rated papers."""
    judgements = {}
    for spec, rated in zip(qrels["profiles"], ratings, strict=True):
        gone = {ev.fold(r.paper.title) for r in rated}
        js = qrels["judgements"].get(spec["name"], {})
        judgements[spec["name"]] = {t: g for t, g in js.items() if ev.fold(t) not in gone}
    return {**qrels, "judgements": judgements}


def _run(specs: list[dict], ranked: list[rank.Ranked], ratings: list[list[Rated]]) -> dict:
    run = {}
    for spec, r, rated in zip(specs, ranked, ratings, strict=True):
        gone = {x.paper.id for x in rated}
        run[spec["name"]] = [i.paper.title for i in r.items if i.paper.id not in gone]
    return run


def simulate(
    ev: ModuleType,
    qrels: dict[str, Any],
    profiles: list[Profile],
    prepared: rank.Prepared,
    tuned: dict[str, tuple[float, ...]],
) -> tuple[list[list[Rated]], dict[str, Any], list[dict], list[Point]]:
    """The simulated readers on `prepared`: their ratings, the judgements left, the
    keywords' rows on those, and each grid point of `tuned` (over the prepared settings)
    ranked with the ratings and scored on the rest."""
    specs = qrels["profiles"]
    ratings = simulated_ratings(ev, qrels, prepared, profiles)
    rest = _rest(ev, qrels, ratings)
    gone = [{r.paper.id for r in rs} for rs in ratings]
    keywords = score_run(
        ev, rest, _run(specs, rank.rank_prepared(prepared, profiles, gone), ratings)
    )
    points = []
    for combo in itertools.product(*tuned.values()):
        values = dict(zip(tuned, combo, strict=True))
        at = replace(prepared, settings=replace(prepared.settings, **values))
        ranked = rank.rank_prepared(at, profiles, ratings=ratings)
        points.append(Point(values, score_run(ev, rest, _run(specs, ranked, ratings))))
    return ratings, rest, keywords, points


def report(
    eval_dir: Path,
    papers: Sequence[Paper],
    blobs: dict[str, bytes],
    now: datetime,
    day: DenseDay | None = None,
) -> str:
    """The simulated readers' figures: keywords alone vs with ratings (shipped, dev-tuned,
    leave-one-profile-out), on the papers left once the rated ones are taken out; with
    `day` (the papers' vectors, in `papers` order) the same with the semantic layer on."""
    ev = load_evaluate(eval_dir)
    qrels = json.loads((eval_dir / "dev_qrels.json").read_text(encoding="utf-8"))
    specs = qrels["profiles"]
    profiles = [rank.make_profile(s["name"], s["keywords"]) for s in specs]
    base = rank.RankSettings()
    prepared = rank.prepare(papers, now, base, blobs=blobs)
    ratings, rest, keywords, points = simulate(ev, qrels, profiles, prepared, TUNED)
    shipped_values = {k: getattr(base, k) for k in TUNED}
    ranked = rank.rank_prepared(prepared, profiles, ratings=ratings)
    shipped = Point(shipped_values, score_run(ev, rest, _run(specs, ranked, ratings)))
    n = len(specs)
    best = best_point(points, list(range(n)))
    held, chosen = lopo(points, n)
    counts = [(sum(r.vote > 0 for r in rs), sum(r.vote < 0 for r in rs)) for rs in ratings]
    lines = [
        f"simulated readers: {LIKES} likes + {DISLIKES} dislikes a profile (the first judged"
        " relevant / irrelevant papers down its keyword ranking); scored on the rest",
        f"  ratings given (likes, dislikes) per profile: {counts}",
        f"  tuned on these {n} profiles (grid; by mean (nDCG@10 + set F1) / 2):",
        *(f"    {k:16} grid {list(v)}  shipped {shipped_values[k]}" for k, v in TUNED.items()),
        f"  {'':34} {'nDCG@10':>8} {'P@10':>6} {'R2@20':>7} {'setP':>6} {'setR':>6} {'F1':>6}",
    ]

    def line(label: str, m: dict[str, float]) -> str:
        return (
            f"  {label:34} {m['ndcg']:8.3f} {m['p']:6.2f} {m['recall2']:7.2f}"
            f" {m['set_p']:6.2f} {m['set_r']:6.2f} {m['f1']:6.2f}"
        )

    lines += [
        line("keywords alone (same papers)", mean(keywords)),
        line("with ratings, shipped", mean(shipped.rows)),
        line(f"with ratings, best on all {n}", mean(best.rows)),
        line("with ratings, leave-one-profile-out", held),
        f"  best on all: {best.values}",
        f"  LOPO picked {len({tuple(sorted(p.values.items())) for p in chosen})} distinct point(s)",
        "  per profile nDCG@10 keywords -> ratings (shipped): "
        + ", ".join(
            f"{s['name']} {k['ndcg']:.2f}->{r['ndcg']:.2f}"
            for s, k, r in zip(specs, keywords, shipped.rows, strict=True)
        ),
    ]
    if day is not None:
        lines += meaning_lines(
            ev, qrels, profiles, rank.prepare(papers, now, base, blobs=blobs, dense=day)
        )
    return "\n".join(lines)


def meaning_lines(
    ev: ModuleType, qrels: dict[str, Any], profiles: list[Profile], prepared: rank.Prepared
) -> list[str]:
    """With the semantic layer on: the readers rate what its ranking shows them, and
    `like_dense` with the lift's two constants (TUNED_MEANING) are chosen on the dev
    profiles, dev and leave-one-profile-out; like_dense 0 is the taste of words alone."""
    specs, base = qrels["profiles"], prepared.settings
    _, _, keywords, points = simulate(ev, qrels, profiles, prepared, TUNED_MEANING)

    def at(**values: float) -> Point:
        want = {k: getattr(base, k) for k in TUNED_MEANING} | values
        return next(pt for pt in points if pt.values == want)

    shipped, words = at(), at(like_dense=0.0)
    n = len(specs)
    best = best_point(points, list(range(n)))
    mixed = best_point([pt for pt in points if pt.values["like_dense"] > 0], list(range(n)))
    held, chosen = lopo(points, n)

    def line(label: str, m: dict[str, float]) -> str:
        return (
            f"  {label:34} {m['ndcg']:8.3f} {m['p']:6.2f} {m['recall2']:7.2f}"
            f" {m['set_p']:6.2f} {m['set_r']:6.2f} {m['f1']:6.2f}"
        )

    return [
        "with the semantic layer on (the readers rate what its ranking shows them;"
        " the taste by words and meaning, `rank.alike`):",
        *(
            f"    {k:16} grid {list(v)}  shipped {getattr(base, k)}"
            for k, v in TUNED_MEANING.items()
        ),
        f"  {'':34} {'nDCG@10':>8} {'P@10':>6} {'R2@20':>7} {'setP':>6} {'setR':>6} {'F1':>6}",
        line("semantic keywords alone", mean(keywords)),
        line("ratings, shipped", mean(shipped.rows)),
        line("ratings by words (like_dense 0)", mean(words.rows)),
        line(f"ratings, best on all {n}", mean(best.rows)),
        line("ratings, best with like_dense > 0", mean(mixed.rows)),
        line("ratings, leave-one-profile-out", held),
        f"  best on all: {best.values}; best with meaning: {mixed.values}",
        f"  LOPO picked like_dense {sorted(pt.values['like_dense'] for pt in chosen)}",
        "  per profile nDCG@10 semantic keywords -> words -> best with meaning: "
        + ", ".join(
            f"{s['name']} {k['ndcg']:.2f}->{w['ndcg']:.2f}->{m['ndcg']:.2f}"
            for s, k, w, m in zip(specs, keywords, words.rows, mixed.rows, strict=True)
        ),
    ]


def main() -> int:
    from bench.eval import ratings

    if len(sys.argv) != 2:
        print("usage: python bench/ratings_eval.py DB (a store with the seeds ingested)")
        return 2
    print(ratings(Path(sys.argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
