"""`make eval`: rank the dev profiles over the seed papers and score the run.

Loads the distinct seed papers (through `digest.sources.listing` when it exists, else a
small private reader of the same text format), ranks each dev profile from its `keywords`
only with the default settings, and prints evaluate.py's table. In the same run it prints
the table for a bm25s baseline (title + abstract, bm25s' English stopwords and the
PyStemmer English stemmer, the profile's keywords joined as one query, top 10).

The judgements live in ../shared/eval (override with DIGEST_EVAL_DIR).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.model import Paper  # noqa: E402
from digest.rank import make_profile, rank  # noqa: E402
from digest.text import fold_title, title_id  # noqa: E402

EVAL_DIR = Path(
    os.environ.get("DIGEST_EVAL_DIR") or Path(__file__).resolve().parents[2] / "shared" / "eval"
)
SEEDS = ROOT / "seeds"
#: Captures carry no year; this fixed day keeps the run reproducible.
CAPTURED = date(2025, 12, 31)

_CHROME = {
    "new",
    "Get trending papers in your email inbox!",
    "Subscribe",
    "Daily Papers",
    "byAK and the research community",
}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_DATE = re.compile(
    r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{1,2})(?:, (\d{4}))?(?: (\d+))?$"
)
_AUTHORS = re.compile(r"^•\s*(\d+) authors?$")


def _read_capture(path: Path, year: int) -> list[Paper]:
    """Private fallback reader for one seeds/*.txt capture (title, abstract, metadata)."""
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    i = 0
    while i < len(lines) and lines[i] in _CHROME:
        i += 1
    if i < len(lines) and _DATE.match(lines[i]):
        i += 1  # the page header: capture day
    papers = []
    while i + 1 < len(lines):
        title, abstract = lines[i], lines[i + 1]
        i += 2
        published, upvotes, authors, org = None, 0, None, None
        if i + 1 < len(lines) and lines[i + 1] == "·":
            m = _AUTHORS.match(lines[i])
            authors, org = (int(m.group(1)), None) if m else (None, lines[i])
            i += 1
        if i < len(lines) and lines[i] == "·":
            m = _DATE.match(lines[i + 1]) if i + 1 < len(lines) else None
            if m:
                day = date(int(m.group(3) or year), _MONTHS[m.group(1)], int(m.group(2)))
                published, upvotes = day, int(m.group(4) or 0)
            i += 2
        papers.append(
            Paper(
                title_id(title),
                title,
                abstract,
                published,
                upvotes,
                authors,
                org,
                sources=("seeds",),
            )
        )
    return papers


def load_seeds(folder: Path = SEEDS) -> list[Paper]:
    """Distinct seed papers (deduplicated by folded title, keeping the richer record)."""
    warnings: list[str] = []
    try:  # the real parser, once it exists (file- or bytes-level entry point)
        from digest.sources import listing

        if hasattr(listing, "parse_file"):

            def read(path: Path) -> list[Paper]:
                return list(
                    listing.parse_file(
                        path, source="seeds", captured=CAPTURED, warn=warnings.append
                    )
                )
        else:

            def read(path: Path) -> list[Paper]:
                return list(
                    listing.parse(
                        path.read_bytes(),
                        origin=str(path),
                        source="seeds",
                        captured=CAPTURED,
                        warn=warnings.append,
                    )
                )

        how = "digest.sources.listing"
    except ImportError:

        def read(path: Path) -> list[Paper]:
            return _read_capture(path, CAPTURED.year)

        how = "bench/eval.py private reader"
    best: dict[str, Paper] = {}
    for path in sorted(folder.glob("*.txt")):
        for paper in read(path):
            key = fold_title(paper.title)
            old = best.get(key)
            if old is None or (paper.has_metadata, paper.upvotes) > (old.has_metadata, old.upvotes):
                best[key] = paper
    print(f"{len(best)} distinct papers from {folder} (read with {how}, {len(warnings)} warnings)")
    return list(best.values())


def _evaluate(qrels: Path, rows: list[dict]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    try:
        done = subprocess.run(
            [sys.executable, str(EVAL_DIR / "evaluate.py"), str(qrels), f.name],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(f.name)
    return done.stdout


def ours(papers: Sequence[Paper], specs: list[dict], now: datetime) -> list[dict]:
    profiles = [make_profile(s["name"], s["keywords"]) for s in specs]
    rows = []
    for profile, items in zip(profiles, rank(papers, profiles, now), strict=True):
        rows += [
            {"profile": profile.name, "title": it.paper.title, "score": it.score} for it in items
        ]
    return rows


def bm25s_baseline(papers: Sequence[Paper], specs: list[dict], k: int = 10) -> list[dict]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    corpus = [f"{p.title} {p.abstract}" for p in papers]
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
                    {"profile": spec["name"], "title": papers[j].title, "score": float(scores[j])}
                )
    return rows


def main() -> int:
    qrels = EVAL_DIR / "dev_qrels.json"
    specs = json.loads(qrels.read_text(encoding="utf-8"))["profiles"]
    papers = load_seeds()
    days = [p.published for p in papers if p.published]
    now = datetime.combine(max(days) + timedelta(days=1), datetime.min.time())
    print(f"\npapers-digest ranker (default RankSettings, now={now.date()}):")
    print(_evaluate(qrels, ours(papers, specs, now)))
    print("bm25s baseline (title + abstract, PyStemmer English, top 10):")
    print(_evaluate(qrels, bm25s_baseline(papers, specs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
