"""`make eval`: the dev relevance set, scored end to end through the real CLI and store.

1. ingests seeds/ into a temporary SQLite store (`digest --db TMP ingest`),
2. ranks each dev profile's `keywords` with `digest rank --json` (no --limit, so the run
   holds exactly what a digest would: what passes min_score, up to max_items),
3. prints evaluate.py's table; then the same for a bm25s baseline over the same stored
   papers (title + abstract, English stopwords, PyStemmer English stemmer, the keywords
   joined as one query, top 10).

The judgements live in ../shared/eval (override with DIGEST_EVAL_DIR).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL_DIR = Path(
    os.environ.get("DIGEST_EVAL_DIR") or Path(__file__).resolve().parents[2] / "shared" / "eval"
)
#: A fixed "now" keeps the recency tie-breaker, and so the run, reproducible.
NOW = "2025-12-31T08:00:00+00:00"


def digest(db: Path, *args: str) -> str:
    """Run the installed CLI (the same code a user runs) and return its stdout."""
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
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
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


def ours(db: Path, specs: list[dict]) -> list[dict]:
    rows = []
    for spec in specs:
        args = [arg for kw in spec["keywords"] for arg in ("--keywords", kw)]
        for line in digest(db, "rank", *args, "--json").splitlines():
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
        papers = [json.loads(line) for line in digest(db, "papers", "--json").splitlines()]
        print(f"\npapers-digest ranker (`digest rank --json`, default settings, now={NOW[:10]}):")
        print(evaluate(qrels, ours(db, specs)))
    print("bm25s baseline (title + abstract, PyStemmer English, top 10):")
    print(evaluate(qrels, bm25s_baseline(papers, specs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
