"""`make eval`: the dev relevance set, scored end to end, with leave-one-profile-out figures.

1. ingests seeds/ into a temporary SQLite store (`digest --db TMP ingest`),
2. ranks each dev profile's `keywords` with `digest rank --json` (no --limit, so the run
   holds exactly what a digest would: what passes the cut-off, up to max_items) and prints
   evaluate.py's table: the dev figures of the shipped defaults, lexical only;
3. tuning, honestly: the constants in TUNED were chosen on these profiles. Each point of a
   fixed grid over them is ranked in process (`rank.rank_prepared`, the same code; a
   self-check asserts the defaults' point equals step 2) and scored per profile; then for
   each held-out profile the point best on the other 15 (by OBJECTIVE, ties to the first in
   grid order) scores the held-out one: the mean of those is the leave-one-profile-out
   (LOPO) figure, what to expect on unseen profiles. Printed twice: with one global
   threshold (cutoff_ratio 0: the rule before the per-profile cut-off) and with it;
3b. vocabulary bridges (`rank.related`: related terms learned from the stored papers by
   `digest related`, run after the ingest): their constants (TUNED_RELATED) tuned the same
   way, dev and LOPO with and without the bridges (each fold picks the lexical constants
   with the bridges off, then the bridges' constants, related_credit 0 among them);
4. the semantic layer (`papers-digest[semantic]`; skipped without it): the papers'
   vectors from a cache on disk (var/bench-vectors, by model and text hash: a rerun embeds
   nothing) kept in the store, `digest rank --json` with the layer on, and its constants
   (TUNED_DENSE) tuned the same way: dev, LOPO of the dense constants alone, and LOPO of
   all six (each fold picks the lexical constants, then the dense ones, on the other 15);
5. learning from ratings (bench/ratings_eval.py): simulated readers rate 3 + 3 papers a
   profile, the rest is scored with and without their ratings (dev and leave-one-out);
6. a bm25s baseline over the same stored papers (title + abstract, English stopwords,
   PyStemmer English stemmer, the keywords joined as one query, top 10).

The judgements live in ../shared/eval (override with DIGEST_EVAL_DIR).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVAL_DIR = Path(
    os.environ.get("DIGEST_EVAL_DIR") or Path(__file__).resolve().parents[2] / "shared" / "eval"
)
#: A fixed "now" keeps the recency tie-breaker, and so the run, reproducible.
NOW = "2025-12-31T08:00:00+00:00"


def digest(db: Path, *args: str, semantic: bool = False) -> str:
    """Run the installed CLI (the same code a user runs) and return its stdout; the
    semantic layer off (DIGEST_SEMANTIC=off) unless `semantic`."""
    cmd = [
        sys.executable,
        "-m",
        "digest",
        "--config",
        str(ROOT / "config.toml"),
        "--db",
        str(db),
        "--now",
        NOW,
        *args,
    ]
    env = os.environ | {"DIGEST_SEMANTIC": "on" if semantic else "off"}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"eval: {' '.join(cmd[3:])} failed: {done.stderr.strip()}")
    return done.stdout


def evaluate(qrels: Path, rows: list[dict]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    try:
        return subprocess.run(
            [sys.executable, str(EVAL_DIR / "evaluate.py"), str(qrels), f.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)


def ours(db: Path, specs: list[dict], semantic: bool = False) -> list[dict]:
    """Each dev profile ranked by `digest rank --json` (with the semantic layer or not)."""
    rows = []
    for spec in specs:
        args = [arg for kw in spec["keywords"] for arg in ("--keywords", kw)]
        for line in digest(db, "rank", *args, "--json", semantic=semantic).splitlines():
            item = json.loads(line)
            rows.append({"profile": spec["name"], "title": item["title"], "score": item["score"]})
    return rows


def bm25s_baseline(papers: list[dict], specs: list[dict], k: int = 10) -> list[dict]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    corpus = [f"{p['title']} {p['abstract']}" for p in papers]
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(corpus, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    rows = []
    for spec in specs:
        query = bm25s.tokenize(
            " ".join(spec["keywords"]),
            stopwords="en",
            stemmer=stemmer,
            return_ids=False,
            show_progress=False,
        )[0]
        scores = retriever.get_scores(query)
        for j in sorted(range(len(papers)), key=lambda j: -scores[j])[:k]:
            if scores[j] > 0:
                rows.append(
                    {
                        "profile": spec["name"],
                        "title": papers[j]["title"],
                        "score": float(scores[j]),
                    }
                )
    return rows


@dataclass
class Tuned:
    """What step 3 found, for step 4 (the semantic layer) to build on."""

    text: str
    ev: Any
    qrels: dict[str, Any]
    papers: list[Any]
    points: list[Any]  #: the lexical grid's points (`bench.lopo.Point`)
    at_defaults: Any  #: the shipped defaults' point
    related: Any = None  #: the store's related-terms table (`rank.related.RelatedTerms`)


def runs_by_profile(rows: list[dict]) -> dict[str, list[str]]:
    """CLI rows as profile -> titles, best first (what `score_run` reads)."""
    run: dict[str, list[str]] = {}
    for row in rows:
        run.setdefault(row["profile"], []).append(row["title"])
    return run


def table_line(label: str, m: dict[str, float]) -> str:
    """One row of the tuning tables."""
    return (
        f"{label:34} {m['ndcg']:8.3f} {m['p']:6.2f} {m['recall2']:7.2f}"
        f" {m['set_p']:6.2f} {m['set_r']:6.2f} {m['f1']:6.2f}"
    )


HEADER = f"{'':34} {'nDCG@10':>8} {'P@10':>6} {'R2@20':>7} {'setP':>6} {'setR':>6} {'F1':>6}"


def tuning(qrels_path: Path, db: Path, cli_rows: list[dict]) -> Tuned:
    """Step 3: which constants are tuned, their values chosen on all profiles, and the dev
    and leave-one-profile-out means with and without the per-profile cut-off."""
    sys.path.insert(0, str(ROOT))
    from bench.lopo import (
        TUNED,
        best_point,
        grid,
        load_evaluate,
        lopo,
        mean,
        oracle_f1,
        score_run,
    )
    from digest.rank import RankSettings, terms_key
    from digest.rank.related import RelatedTerms
    from digest.store import Store

    ev = load_evaluate(EVAL_DIR)
    qrels = json.loads(qrels_path.read_text(encoding="utf-8"))
    with Store(db) as store:
        papers = [p for _, p in store.arrivals(0, store.newest_paper_row())]
        related = RelatedTerms.from_rows(*store.related_terms(terms_key(None), None))
    defaults = RankSettings()
    points = grid(ev, qrels, papers, datetime.fromisoformat(NOW), defaults, related=related)
    shipped = {k: getattr(defaults, k) for k in TUNED}
    at_defaults = next(pt for pt in points if pt.values == shipped)
    if score_run(ev, qrels, runs_by_profile(cli_rows)) != at_defaults.rows:
        raise SystemExit("eval: the in-process ranking of the defaults differs from the CLI's")
    n = len(qrels["profiles"])
    everyone = list(range(n))
    lines = [
        f"tuned on these {n} profiles (grid; chosen by mean (nDCG@10 + set F1) / 2):",
        *(f"  {k:18} grid {list(v)}  shipped {shipped[k]}" for k, v in TUNED.items()),
        HEADER,
    ]

    for label, keep in (
        ("global min_score (cutoff_ratio 0)", lambda pt: pt.values["cutoff_ratio"] == 0),
        ("per-profile cut-off", lambda pt: True),
    ):
        some = [pt for pt in points if keep(pt)]
        best = best_point(some, everyone)
        held, chosen = lopo(some, n)
        lines.append(f"{label}: best on all {n}: {best.values}")
        lines.append(table_line("  dev (tuned on all)", mean(best.rows)))
        lines.append(table_line("  leave-one-profile-out", held))
        picks = sorted({tuple(sorted(pt.values.items())) for pt in chosen})
        lines.append(f"  LOPO picked {len(picks)} distinct point(s): {[dict(p) for p in picks]}")
    lines.append(table_line("shipped defaults (dev)", mean(at_defaults.rows)))
    ceiling = oracle_f1(ev, qrels, papers, datetime.fromisoformat(NOW), defaults)
    lines.append(
        f"ceiling of any cut-off on the shipped order (best prefix of <= max_items per profile,"
        f" chosen with hindsight): set F1 {ceiling:.3f}"
    )
    return Tuned("\n".join(lines), ev, qrels, papers, points, at_defaults, related)


def grid_lines(n: int, tuned: dict[str, tuple[float, ...]], shipped: dict[str, Any]) -> list[str]:
    """The head of a layer's tuning table: its grid, what ships, the column names."""
    return [
        f"tuned on the same {n} profiles, on top of the shipped lexical constants:",
        *(f"  {k:18} grid {list(v)}  shipped {shipped[k]}" for k, v in tuned.items()),
        HEADER,
    ]


def best_lines(n: int, best: Any, label: str) -> list[str]:
    """The point best on all `n` profiles, and its dev figures."""
    return [f"best on all {n}: {best.values}", table_line(label, mean_of(best.rows))]


def mean_of(rows: list[dict[str, float]]) -> dict[str, float]:
    from bench.lopo import mean

    return mean(rows)


def bridges(tuned: Tuned) -> str:
    """Step 3b: the vocabulary bridges' constants (TUNED_RELATED) on top of the lexical
    ones, dev and leave-one-profile-out, with and without the bridges."""
    from dataclasses import replace

    from bench.lopo import TUNED_RELATED, best_point, grid, lopo, mean, nested_lopo
    from digest.rank import RankSettings

    ev, qrels, papers, related = tuned.ev, tuned.qrels, tuned.papers, tuned.related
    if not related:
        return "skipped: the store has no related terms (`digest related`)"
    now = datetime.fromisoformat(NOW)
    n = len(qrels["profiles"])
    everyone = list(range(n))
    defaults = RankSettings()
    off = replace(defaults, related_credit=0.0)
    lexical = grid(ev, qrels, papers, now, off)  # the lexical grid, bridges off
    on_shipped = grid(ev, qrels, papers, now, defaults, TUNED_RELATED, None, related)
    shipped = {k: getattr(defaults, k) for k in TUNED_RELATED}
    at_shipped = next(pt for pt in on_shipped if pt.values == shipped)
    without = next(
        pt
        for pt in on_shipped
        if pt.values == {**shipped, "related_credit": 0.0, "sense_floor": 1.0}
    )
    best = best_point(on_shipped, everyone)
    held, chosen = lopo(on_shipped, n)
    picks = sorted({tuple(sorted(pt.values.items())) for pt in chosen})
    forced = [
        pt for pt in on_shipped if pt.values["related_credit"] > 0 or pt.values["sense_floor"] < 1
    ]
    forced_held, _ = lopo(forced, n)
    related_only, _ = lopo([pt for pt in on_shipped if pt.values["sense_floor"] == 1], n)
    sense_only, _ = lopo([pt for pt in on_shipped if pt.values["related_credit"] == 0], n)
    lexical_held, _ = lopo(lexical, n)
    all_held, all_chosen = nested_lopo(
        ev, qrels, papers, now, lexical, None, TUNED_RELATED, related
    )
    all_picks = sorted({tuple(sorted(v.items())) for v in all_chosen})
    lines = [
        f"related terms of {len(related.table)} features, learned from {related.papers}"
        " stored papers (`digest related`)",
        *grid_lines(n, TUNED_RELATED, shipped),
        table_line("without bridges, shipped (dev)", mean(without.rows)),
        table_line("with bridges, shipped (dev)", mean(at_shipped.rows)),
        *best_lines(n, best, "bridges, tuned on all (dev)"),
        table_line("bridges, LOPO (bridge constants)", held),
        f"  LOPO picked {len(picks)} distinct point(s): {[dict(p) for p in picks]}",
        table_line("bridges forced on, LOPO", forced_held),
        table_line("related terms only, LOPO", related_only),
        table_line("sense only, LOPO", sense_only),
        table_line("without bridges, LOPO (4 lexical)", lexical_held),
        table_line("with bridges, LOPO (all 7)", all_held),
        f"  LOPO picked {len(all_picks)} distinct point(s) of the seven",
        "  per profile nDCG@10/F1 without -> with (best on all): "
        + ", ".join(
            f"{s['name']} {a['ndcg']:.2f}/{a['f1']:.2f}->{b['ndcg']:.2f}/{b['f1']:.2f}"
            for s, a, b in zip(qrels["profiles"], without.rows, best.rows, strict=True)
        ),
    ]
    return "\n".join(lines)


def ratings(db: Path, day: Any = None) -> str:
    """Step 5: simulated readers who rate 3 + 3 papers, scored on the rest; with `day`
    (step 4's DenseDay: the vectors are in the store) also with the semantic layer on."""
    sys.path.insert(0, str(ROOT))
    from bench.ratings_eval import report
    from digest import rank
    from digest.rank import dense
    from digest.store import Store

    with Store(db) as store:
        papers = [p for _, p in store.arrivals(0, store.newest_paper_row())]
        blobs = store.paper_terms([p.id for p in papers], rank.terms_key(None))
        ours = None
        if day is not None:  # in this order of the papers
            vectors = store.paper_vectors([p.id for p in papers], day.model)
            ours = dense.DenseDay(*dense.decode_vectors(papers, vectors), day.embed, day.model)
    return report(EVAL_DIR, papers, blobs, datetime.fromisoformat(NOW), ours)


def fill_vectors(db: Path, papers: list[Any]) -> Any:
    """The papers' vectors from the on-disk cache (`bench._vectors`, embedding only the
    texts it lacks), kept in the eval store too: the CLI run and the in-process grid
    read the same vectors, so the self-check can be exact. Returns the DenseDay."""
    from bench._vectors import cached_vectors
    from digest.rank import dense
    from digest.store import Store

    day = cached_vectors(papers)
    with Store(db) as store:
        store.keep_paper_vectors(
            ((p.id, dense.encode_vector(v)) for p, v in zip(papers, day.vectors, strict=True)),
            day.model,
        )
    return day


def semantic(db: Path, specs: list[dict], qrels_path: Path, tuned: Tuned) -> tuple[str, Any]:
    """Step 4: the semantic layer (`papers-digest[semantic]`): `digest rank --json` with
    it on (evaluate.py's table), then its two constants (TUNED_DENSE) tuned on the dev
    profiles on top of the shipped lexical ones, dev and leave-one-profile-out; the LOPO
    over all six constants picks the lexical ones, then the dense ones, on the other 15.
    Returns the text and the papers' DenseDay (None when skipped), for step 5."""
    from bench.lopo import TUNED_DENSE, best_point, grid, lopo, mean, nested_lopo, score_run
    from digest.rank import RankSettings, encoder

    if not encoder.all_installed():
        return "skipped: pip install -e '.[semantic]' to measure it", None
    ev, qrels, papers = tuned.ev, tuned.qrels, tuned.papers
    day = fill_vectors(db, papers)
    cli_rows = ours(db, specs, semantic=True)
    now = datetime.fromisoformat(NOW)
    defaults = RankSettings()
    points = grid(ev, qrels, papers, now, defaults, TUNED_DENSE, day)
    shipped = {k: getattr(defaults, k) for k in TUNED_DENSE}
    at_shipped = next(pt for pt in points if pt.values == shipped)
    if score_run(ev, qrels, runs_by_profile(cli_rows)) != at_shipped.rows:
        raise SystemExit("eval: the in-process semantic ranking differs from the CLI's")
    n = len(qrels["profiles"])
    best = best_point(points, list(range(n)))
    held, chosen = lopo(points, n)
    picks = sorted({tuple(sorted(pt.values.items())) for pt in chosen})
    all_held, all_chosen = nested_lopo(ev, qrels, papers, now, tuned.points, day)
    all_picks = sorted({tuple(sorted(v.items())) for v in all_chosen})
    lexical_held, _ = lopo(tuned.points, n)
    lines = [
        evaluate(qrels_path, cli_rows).rstrip(),
        *grid_lines(n, TUNED_DENSE, shipped),
        table_line("lexical only, shipped (dev)", mean(tuned.at_defaults.rows)),
        table_line("semantic, shipped (dev)", mean(at_shipped.rows)),
        *best_lines(n, best, "semantic, tuned on all (dev)"),
        table_line("semantic, LOPO (dense constants)", held),
        f"  LOPO picked {len(picks)} distinct point(s): {[dict(p) for p in picks]}",
        table_line("lexical only, LOPO (4 lexical)", lexical_held),
        table_line("semantic, LOPO (all 6 constants)", all_held),
        f"  LOPO picked {len(all_picks)} distinct point(s) of the six",
    ]
    return "\n".join(lines), day


def main() -> int:
    qrels = EVAL_DIR / "dev_qrels.json"
    if not qrels.exists():
        print(
            f"eval: {qrels} not found; set DIGEST_EVAL_DIR to the folder of dev_qrels.json",
            file=sys.stderr,
        )
        return 2
    specs = json.loads(qrels.read_text(encoding="utf-8"))["profiles"]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "eval.sqlite3"
        print("ingest:", digest(db, "ingest").strip())
        print("related:", digest(db, "related").strip())
        papers = [json.loads(line) for line in digest(db, "papers", "--json").splitlines()]
        print(
            f"\npapers-digest ranker (`digest rank --json`, default settings, lexical only,"
            f" now={NOW[:10]}):"
        )
        cli_rows = ours(db, specs)
        print(evaluate(qrels, cli_rows))
        tuned = tuning(qrels, db, cli_rows)
        print(tuned.text)
        print("\nvocabulary bridges (related terms from the stored papers, `rank.related`):")
        print(bridges(tuned))
        print("\nthe semantic layer (all-MiniLM-L6-v2 vectors, `digest rank --json` with it on):")
        text, day = semantic(db, specs, qrels, tuned)
        print(text)
        print("\nlearning from ratings (bench/ratings_eval.py):")
        print(ratings(db, day))
    print("\nbm25s baseline (title + abstract, PyStemmer English, top 10):")
    print(evaluate(qrels, bm25s_baseline(papers, specs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
