"""`make bench`: time the ranker on a synthetic day, beside a loop of bm25s retrievals.

The day: 2,000 papers whose titles and abstracts are stitched from random sentences and
titles of the seed captures (so word frequencies, phrases and acronyms are real), and
100,000 profiles of 2-6 keywords drawn from a realistic keyword vocabulary: the acronym
table (acronyms and expansions), content words of the seeds past the 200 most frequent
(those are "method",
"results", ... which nobody subscribes to) and their frequent two-word phrases;
~15 % quoted, ~10 % weighted, ~20 % of profiles with an exclusion. Seeded RNG.

Each measurement runs in a fresh process (so ru_maxrss is that run's peak) and the median
of several runs is printed:

- core: index the papers + score every (profile, paper) pair + gate + top-k selection
  (`build_index`, `compile_profiles`, `keyword_scores`, `select`): the batched part, in
  one process and with `--workers` processes (`build_index` analyses the papers and
  `select` cuts the profiles' chunks in forked children: `rank.fork`); CPU-seconds
  include the children's;
- stored: core as a send runs it (`send.py`, `window.py`): the papers' terms as ingest kept
  them (`encode_terms`, made before the clock starts, as ingest did on an earlier day) and
  an index of the profiles' features only (`keyword_features`, `prepare(blobs, wanted)`),
  then the same compile + score + select; it also prints the CPU-seconds of each step;
- stored-postings: stored, with the papers' terms of the profiles' features read from
  the postings ingest keeps (`rank.postings`, made before the clock starts);
- stored-bridges: stored-postings with the vocabulary bridges on (`rank.related`: the
  related terms learned from the day's papers before the clock starts, as `digest
  related` would; related_credit 0.7): what looking up and scoring related terms adds;
- full: `rank()`, i.e. core + explanations (DigestItems, matches, snippets) for every
  selected item; run on fewer profiles, since it builds one object per item;
- bm25s: one `get_scores` + top-k per profile over the same papers (bm25s' own index,
  English stopwords, PyStemmer): timed over a sample of profiles and extrapolated to all.

usage: python bench/rank.py [--papers 2000] [--profiles 100000] [--runs 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.model import Paper, Profile  # noqa: E402
from digest.rank import (  # noqa: E402
    RankSettings,
    encode_terms,
    keyword_features,
    make_profile,
    prepare,
    rank,
)
from digest.rank.acronyms import ACRONYMS  # noqa: E402
from digest.rank.analyzer import STOPWORDS, Analyzer  # noqa: E402
from digest.rank.index import build_index  # noqa: E402
from digest.rank.ranker import keyword_evidence  # noqa: E402
from digest.rank.related import RelatedTerms, learn, paper_features  # noqa: E402
from digest.rank.score import compile_profiles, keyword_scores, paper_priors  # noqa: E402
from digest.rank.select import select  # noqa: E402
from digest.text import title_id  # noqa: E402

NOW = datetime(2025, 10, 17, 6, 0)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_WORD = re.compile(r"[A-Za-z][A-Za-z-]{3,}")


def _seed_texts() -> tuple[list[str], list[str]]:
    from digest.sources.listing import parse
    from digest.text import fold_title

    distinct: dict[str, Paper] = {}
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        for paper in parse(
            path.read_bytes(),
            origin=str(path),
            source="seeds",
            captured=NOW.date(),
            warn=lambda w: None,
        ):
            distinct.setdefault(fold_title(paper.title), paper)
    papers = list(distinct.values())
    sentences = [s for p in papers for s in _SENTENCE.split(p.abstract) if len(s) > 30]
    return [p.title for p in papers], sentences


def synthetic_day(
    n_papers: int, n_profiles: int, seed: int = 7
) -> tuple[list[Paper], list[Profile]]:
    """Papers and profiles for one synthetic day (deterministic for a seed)."""
    rng = random.Random(seed)
    titles, sentences = _seed_texts()
    papers = []
    for i in range(n_papers):
        words = rng.choice(titles).split()
        rng.shuffle(words)
        abstract = " ".join(rng.choice(sentences) for _ in range(rng.randint(5, 10)))
        title = " ".join(words)
        papers.append(
            Paper(
                title_id(f"{i} {title}"), title, abstract, upvotes=int(rng.paretovariate(1.2)) - 1
            )
        )
    counts: dict[str, int] = {}
    pairs: dict[str, int] = {}
    for s in sentences:
        ws = [w.lower() for w in _WORD.findall(s)]
        for w in ws:
            counts[w] = counts.get(w, 0) + 1
        for a, b in itertools.pairwise(ws):
            if a not in STOPWORDS and b not in STOPWORDS:
                pairs[f"{a} {b}"] = pairs.get(f"{a} {b}", 0) + 1
    content = [w for w, c in sorted(counts.items(), key=lambda x: -x[1]) if w not in STOPWORDS]
    phrases = [p for p, c in sorted(pairs.items(), key=lambda x: -x[1]) if c >= 2]
    vocab = (
        list(ACRONYMS)
        + [e for es in ACRONYMS.values() for e in es]
        + content[200:3000]
        + phrases[:2000]
    )
    profiles = []
    for i in range(n_profiles):
        kws = []
        for term in rng.sample(vocab, rng.randint(2, 6)):
            if " " in term and rng.random() < 0.15:
                term = f'"{term}"'
            if rng.random() < 0.1:
                term += f"^{rng.choice([0.5, 2, 3])}"
            kws.append(term)
        exclude = [rng.choice(content[200:1500])] if rng.random() < 0.2 else []
        # no min_score: the default reader, cut per profile (rank.cutoff)
        profiles.append(make_profile(f"p{i}", kws, exclude, max_items=10))
    return papers, profiles


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _stored(
    papers: list[Paper],
    profiles: list[Profile],
    settings: RankSettings,
    blobs: dict[str, bytes],
    workers: int,
    postings: tuple[dict, dict] | None = None,
    related: RelatedTerms | None = None,
) -> tuple[int, dict]:
    """The `stored` mode: its items and the CPU-seconds of each step. With `postings`
    (`kept_postings`), the index reads the wanted features' postings, as a send does;
    with `related`, the bridges' related terms are looked up and scored too."""
    cpu: dict[str, float] = {}
    last = [time.process_time()]

    def lap(name: str) -> None:
        now = time.process_time()
        cpu[name] = round(now - last[0], 2)
        last[0] = now

    keywords = [k for p in profiles for k in (*p.keywords, *p.exclude)]
    wanted = keyword_features(keywords, settings, None, related)
    kept = None
    if postings is not None:  # the postings of the wanted features, as the store gives them
        from digest.rank.postings import wanted_terms

        counts, rows = postings
        kept = wanted_terms(
            papers, counts, lambda cells: {c: rows[c] for c in cells if c in rows}, wanted
        )
    prepared = prepare(papers, NOW, settings, None, blobs, wanted, kept=kept, related=related)
    lap("index")
    compiled = compile_profiles(profiles, prepared.analyzer, settings, related)
    lap("compile")
    # the ranker's own evidence (words, bridges, sense), as `rank_prepared` takes it
    evidence = keyword_evidence(prepared, compiled)
    vetoes = evidence.phrase.copy()
    vetoes.data[:] = 1.0
    lap("scores")
    chosen = select(
        compiled,
        evidence.fused,
        vetoes,
        profiles,
        prepared.prior,
        settings,
        workers=workers,
        sense=evidence.sense,
    )
    lap("select")
    return len(chosen.papers), {"cpu_steps": cpu}


def kept_postings(blobs: dict[str, bytes]) -> tuple[dict, dict]:
    """The postings the store keeps of these blobs (`rank.postings.make_blocks`, ingest's
    work): (paper id -> its `KeptCounts`, (block, bucket) -> row)."""
    from digest.rank.postings import KeptCounts, make_blocks

    counts, rows = {}, {}
    for block, made in enumerate(make_blocks(blobs.items())):
        for pid, slot, text, tw, aw in made.papers:
            counts[pid] = KeptCounts(block, slot, made.bits, text, tw, aw)
        for bucket, row in made.rows:
            rows[(block, bucket)] = row
    return counts, rows


def _cpu() -> float:
    """CPU-seconds of this process and of its children that have ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _one(mode: str, n_papers: int, n_profiles: int, workers: int = 1) -> dict:
    papers, profiles = synthetic_day(n_papers, n_profiles)
    base = _peak_mib()
    settings = RankSettings()
    # ingest's work, done on an earlier day: outside the clocks
    blobs = dict(encode_terms(papers, None)) if mode.startswith("stored") else {}
    bridges = mode == "stored-bridges"
    postings = kept_postings(blobs) if mode in ("stored-postings", "stored-bridges") else None
    related = None
    if bridges:  # `digest related`'s work, done before: outside the clocks
        analyzer, memo = Analyzer(), dict[str, bool]()
        related = learn(paper_features(p, analyzer, memo) for p in papers)
        settings = replace(settings, related_credit=0.7)
    t0 = time.perf_counter()
    c0 = _cpu()
    if mode == "core":
        analyzer = Analyzer()
        index = build_index(papers, analyzer, settings, workers=workers)
        compiled = compile_profiles(profiles, analyzer, settings)
        scores, phrase = keyword_scores(compiled.plans, index, settings)
        vetoes = phrase.copy()
        vetoes.data[:] = 1.0
        pop, rec = paper_priors(papers, NOW, settings)
        prior = 1 - settings.popularity_weight - settings.recency_weight
        prior = prior + settings.popularity_weight * pop + settings.recency_weight * rec
        chosen = select(compiled, scores, vetoes, profiles, prior, settings, workers=workers)
        items = len(chosen.papers)
        extra = {
            "plans": len(compiled.plans),
            "features": len(index.vocab),
            "keyword_paper_nnz": int(scores.nnz),
        }
    elif mode.startswith("stored"):
        items, extra = _stored(papers, profiles, settings, blobs, workers, postings, related)
    elif mode == "full":
        result = rank(papers, profiles, NOW, settings)
        items = sum(map(len, result))
        extra = {}
    else:  # bm25s loop over a sample, extrapolated
        import bm25s
        import numpy as np
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
        retriever = bm25s.BM25()
        retriever.index(
            bm25s.tokenize(
                [f"{p.title} {p.abstract}" for p in papers],
                stopwords="en",
                stemmer=stemmer,
                show_progress=False,
            ),
            show_progress=False,
        )
        items = 0
        for profile in profiles:
            query = " ".join(k.text for k in profile.keywords)
            tokens = bm25s.tokenize(
                query, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
            )[0]
            scores = retriever.get_scores(tokens)
            top = np.argpartition(-scores, 10)[:10]
            items += int((scores[top] > 0).sum())
        extra = {}
    seconds = time.perf_counter() - t0
    cpu_seconds = _cpu() - c0
    return {
        "mode": mode,
        "workers": workers,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_mib": _peak_mib(),
        "peak_before_mib": base,
        "items": items,
        **extra,
    }


def _run(mode: str, n_papers: int, n_profiles: int, runs: int, workers: int = 1) -> dict:
    got = []
    for _ in range(runs):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                mode,
                "--papers",
                str(n_papers),
                "--profiles",
                str(n_profiles),
                "--workers",
                str(workers),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        got.append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = statistics.median(g["seconds"] for g in got)
    return {
        **got[0],
        "seconds": med,
        "cpu_seconds": statistics.median(g["cpu_seconds"] for g in got),
        "all": [round(g["seconds"], 2) for g in got],
        "peak_mib": max(g["peak_mib"] for g in got),
    }


def semantic_cost(n_papers: int, n_profiles: int, sample: int = 200, runs: int = 3) -> str:
    """The semantic layer's cost, in this process's CPU time (medians of `runs`):

    - the one-off embedding of new papers (what ingest adds): `sample` seed-like texts
      (a seed title + 6 seed sentences, ~ an abstract), per paper, times n_papers, in CPU
      seconds (one thread) and in wall seconds with ingest's threads (one a core);
    - the naive alternative: embedding the day's papers at every ranking instead of
      reading the stored vectors (decoding n_papers float16 blobs), as a ratio;
    - the profiles' keywords, embedded once and kept in the store, against reading them
      back (what every later ranking process pays: `window.KeptKeywordVectors`);
    - a batch of profiles ranked with the layer on vs off (`rank_prepared` on one index
      of n_papers): what the dense product, z-scores and fusion add per batch."""
    import numpy as np

    from digest.rank import dense, encoder, prepare, rank_prepared

    if not encoder.all_installed():
        return "semantic layer: skipped (pip install -e '.[semantic]')"

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def median_cpu(work: Callable[[], object]) -> float:
        spent = []
        for _ in range(runs):
            t0 = cpu()
            work()
            spent.append(cpu() - t0)
        return statistics.median(spent)

    titles, sentences = _seed_texts()
    texts = [f"{t}. {' '.join(sentences[j : j + 6])}" for j, t in enumerate(titles[:sample])]
    model = encoder.load_encoder()
    vectors = model.encode(texts)
    per_paper = median_cpu(lambda: model.encode(texts)) / len(texts)
    from digest.ingest import available_cores

    cores = available_cores()
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model.encode(texts, workers=cores)
        walls.append(time.perf_counter() - t0)
    wall_per_paper = statistics.median(walls) / len(texts)
    papers, profiles = synthetic_day(n_papers, min(n_profiles, 2_000))
    rng = np.random.default_rng(3)
    rows = vectors[rng.integers(0, len(vectors), n_papers)]
    blobs = {p.id: dense.encode_vector(v) for p, v in zip(papers, rows, strict=True)}
    decode = median_cpu(lambda: dense.decode_vectors(papers, blobs))
    stored, present = dense.decode_vectors(papers, blobs)
    keywords = sorted({kw.text for pr in profiles for kw in pr.keywords})
    t0 = cpu()
    made = model.encode(keywords)
    per_keyword = (cpu() - t0) / len(keywords)
    # what a ranking process pays once they are kept (`window.KeptKeywordVectors`)
    import tempfile

    from digest.store import Store
    from digest.window import KeptKeywordVectors

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "k.sqlite3") as store:
        store.keep_keyword_vectors(
            ((k, dense.encode_keyword(v)) for k, v in zip(keywords, made, strict=True)), model.model
        )
        read_kept = median_cpu(
            lambda: KeptKeywordVectors(store, model.encode, model.model)(keywords)
        )
    lexical = prepare(papers, NOW, RankSettings())
    day = dense.DenseDay(stored, present, model.encode, model.model)
    day.keyword_matrix(keywords)  # embedded above: counted there, not in the batch
    semantic = replace(lexical, dense=day)
    off = median_cpu(lambda: rank_prepared(lexical, profiles))
    on = median_cpu(lambda: rank_prepared(semantic, profiles))
    embed_all = per_paper * n_papers
    first = per_keyword * len(keywords)
    return "\n".join(
        [
            f"semantic layer (all-MiniLM-L6-v2 on numpy, {encoder.MAX_TOKENS} word pieces, one"
            f" BLAS thread; CPU-s, medians of {runs}):",
            f"  embedding new papers: {per_paper * 1000:.0f} ms a paper ({len(texts)} seed-like"
            f" texts): {n_papers} papers {embed_all:.0f} CPU-s, once, at ingest; wall with"
            f" ingest's {cores} thread(s) on {cores} core(s): {wall_per_paper * n_papers:.0f} s"
            f" ({wall_per_paper * 1000:.0f} ms a paper)",
            f"  reading their stored vectors instead: {decode * 1000:.1f} ms for {n_papers}"
            f" (embedding them at each ranking, the naive way, costs {embed_all / decode:,.0f}x)",
            f"  keywords: {per_keyword * 1000:.1f} ms each, once (then kept in the store);"
            f" {len(profiles)} synthetic profiles have {len(keywords)} distinct keywords:"
            f" {first:.1f} CPU-s the first time, {read_kept:.3f} CPU-s for a later process to"
            f" read them back (x{first / read_kept:,.0f})",
            f"  a batch of {len(profiles)} profiles x {n_papers} papers: {off:.2f} CPU-s"
            f" lexical, {on:.2f} with the layer (+{on - off:.2f}: the dense product, z-scores"
            f" and fusion; x{on / off:.2f})",
        ]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--papers", type=int, default=2000)
    ap.add_argument("--profiles", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--full-profiles", type=int, default=10_000)
    ap.add_argument("--bm25s-sample", type=int, default=2_000)
    ap.add_argument("--workers", type=int, default=2, help="processes for core and stored")
    ap.add_argument(
        "--one",
        choices=["core", "stored", "stored-postings", "stored-bridges", "full", "bm25s"],
        help=argparse.SUPPRESS,
    )
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(args.one, args.papers, args.profiles, args.workers)))
        return 0
    n, p = args.papers, args.profiles
    print(
        f"synthetic day: {n} papers, {p} profiles of 2-6 keywords; median of {args.runs} runs,"
        " each in a fresh process; peak = ru_maxrss of that process (includes the inputs)"
    )
    w = args.workers
    for workers in sorted({1, w}):
        core = _run("core", n, p, args.runs, workers)
        print(
            f"core (index + score all {n * p:,} pairs + top-k), {workers} process(es):"
            f" {core['seconds']:.2f} s {core['all']} ({core['cpu_seconds']:.2f} CPU-s),"
            f" peak {core['peak_mib']:.0f} MiB (inputs alone {core['peak_before_mib']:.0f}"
            f" MiB); {core['plans']} distinct keywords, {core['features']} features,"
            f" {core['items']} items selected"
        )
    stored = _run("stored", n, p, args.runs, w)
    print(
        f"core as a send runs it (ingest's kept terms, an index of the profiles' features;"
        f" select in {w} process(es)):"
        f" {stored['seconds']:.2f} s {stored['all']} ({stored['cpu_seconds']:.2f} CPU-s;"
        f" first run's steps {stored['cpu_steps']}), peak {stored['peak_mib']:.0f} MiB,"
        f" {stored['items']} items selected"
    )
    kept = _run("stored-postings", n, p, args.runs, w)
    print(
        f"the same on the kept postings of the profiles' features (as `digest send` reads them"
        f" now): {kept['seconds']:.2f} s {kept['all']} ({kept['cpu_seconds']:.2f} CPU-s;"
        f" first run's steps {kept['cpu_steps']}), peak {kept['peak_mib']:.0f} MiB"
    )
    bridged = _run("stored-bridges", n, p, args.runs, w)
    print(
        f"the same with the vocabulary bridges on (related terms of the day's papers,"
        f" related_credit 0.7): {bridged['seconds']:.2f} s {bridged['all']}"
        f" ({bridged['cpu_seconds']:.2f} CPU-s; first run's steps {bridged['cpu_steps']}),"
        f" peak {bridged['peak_mib']:.0f} MiB, {bridged['items']} items selected"
    )
    full = _run("full", n, args.full_profiles, args.runs)
    print(
        f"full rank() incl. explanations, {args.full_profiles} profiles: {full['seconds']:.2f} s "
        f"{full['all']}, peak {full['peak_mib']:.0f} MiB, {full['items']} DigestItems"
    )
    bm = _run("bm25s", n, args.bm25s_sample, args.runs)
    scale = p / args.bm25s_sample
    print(
        f"bm25s loop, {args.bm25s_sample} profiles: {bm['seconds']:.2f} s {bm['all']} -> "
        f"extrapolated to {p}: {bm['seconds'] * scale:.1f} s (indexing included once)"
    )
    print(semantic_cost(n, p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
