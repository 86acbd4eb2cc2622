"""`make bench`: personalised digest rendering, whole-template vs cached fragments.

A synthetic day of papers (titles and abstracts from the seed captures) and N
subscribers, each with 1-2 profiles and 10 items drawn from the day with their own matched
keywords. Renders every digest as HTML email + plain text:

- naive: `EmailRenderer.render_whole` (all templates, then css-inline on the whole page)
  for a sample of digests, extrapolated;
- cached: `EmailRenderer.render` (each paper's fragment rendered and inlined once for the
  day, the page around it once per shape, per reader only string joins).

Prints digests/s (median of several runs) and peak RSS. Target: >= 5,000 digests/s cached.

usage: python bench/render.py [--subscribers 100000] [--papers 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from digest.model import Digest, DigestItem, DigestSection, Keyword, Match, Paper, Profile  # noqa: E402
from digest.render import EmailRenderer, Links, make_environment  # noqa: E402
from digest.sources.listing import parse  # noqa: E402

NOW = datetime(2025, 10, 17, 7, tzinfo=UTC)
WORDS = [
    "LoRA",
    "quantization",
    "speech",
    "TTS",
    "video generation",
    "diffusion",
    "RLHF",
    "agents",
    "retrieval",
    "federated learning",
    "unlearning",
    "3D",
    "robotics",
    "MoE",
]


def day(n_papers: int) -> list[Paper]:
    papers: list[Paper] = []
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        papers += parse(
            path.read_bytes(),
            origin=str(path),
            source="seeds",
            captured=NOW.date(),
            warn=lambda w: None,
        )
    return [papers[i % len(papers)] for i in range(n_papers)]


def digests(papers: list[Paper], n: int, seed: int = 3) -> list[tuple[Digest, Links]]:
    rng = random.Random(seed)
    out = []
    for s in range(n):
        sections = []
        for p in range(rng.choice((1, 1, 2))):
            kws = rng.sample(WORDS, rng.randint(2, 4))
            profile = Profile(f"topic {p + 1}", tuple(Keyword(k) for k in kws))
            items = tuple(
                DigestItem(
                    paper,
                    round(rng.uniform(0.5, 1), 3),
                    (Match(rng.choice(kws), ("title", "abstract")),),
                )
                for paper in rng.sample(papers, 10 // (p + 1) if p == 0 else 5)
            )
            sections.append(DigestSection(profile, items))
        digest = Digest(NOW.date(), "papers-digest", tuple(sections), len(papers))
        out.append(
            (
                digest,
                Links(
                    "https://d.example/",
                    f"https://d.example/m?s={s}",
                    f"https://d.example/u?s={s}",
                    f"https://d.example/rate?token=rate.{s}.x",
                ),
            )
        )
    return out


def timed(fn, work: list) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for d, links in work:
        fn(d, links)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=100_000)
    ap.add_argument("--papers", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--naive-sample", type=int, default=300)
    args = ap.parse_args()
    papers = day(args.papers)
    work = digests(papers, args.subscribers)
    env = make_environment()
    sample = work[: args.naive_sample]
    naive, cached = [], []
    for _ in range(args.runs):
        renderer = EmailRenderer(env, base_url="https://d.example/")
        naive.append(len(sample) / timed(renderer.render_whole, sample))
        renderer = EmailRenderer(env, base_url="https://d.example/")  # a cold cache each run
        cached.append(len(work) / timed(renderer.render, work))
    one = EmailRenderer(env, base_url="https://d.example/").render(*work[0])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.subscribers} personalised digests (10 items, HTML + text) over {args.papers} "
        f"papers; median of {args.runs} runs"
    )
    print(
        f"naive  (whole template + css-inline per digest, {len(sample)} sampled): "
        f"{statistics.median(naive):8.0f} digests/s  {[round(x) for x in naive]}"
    )
    print(
        f"cached (fragments once a day, strings per reader, cold cache): "
        f"{statistics.median(cached):8.0f} digests/s  {[round(x) for x in cached]}"
    )
    print(
        f"one digest: {len(one.html.encode()) / 1024:.1f} KiB HTML, "
        f"{len(one.text.encode()) / 1024:.1f} KiB text; peak RSS {peak:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
