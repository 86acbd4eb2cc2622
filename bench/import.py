"""`make bench`: import 100,000 subscriber rows from CSV, beside `subscribe` row by row.

The file: readers with 1-4 keywords drawn from common ML topics (a few quoted, a few
weighted, some with an exclusion), time zones from around the world, send times and
frequencies varied; about 5 % of the rows are a second profile of an earlier reader.
Seeded RNG, so every run imports the same file.

Each measurement runs in a fresh process (so ru_maxrss is that run's peak) on a new
store; the median of the runs is printed:

- import: `pipeline.import_subscribers(..., confirmed=True)` on the whole file: read,
  check every row, write in pages (the part `digest subscribers import --confirmed` runs);
- again: the same file imported a second time into that store (nothing changes);
- pending: the file imported without --confirmed on a sample (confirmation emails into
  the outbox, one .eml file each, fsynced), extrapolated to all rows;
- row by row: `subscriptions.subscribe(..., confirmed=True)` for each row of a sample,
  each row parsed as `digest subscribe` would (normalize, make_profile), extrapolated.

usage: python bench/import.py [--rows 100000] [--sample 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOW = datetime(2025, 12, 1, 9, tzinfo=UTC)
TOPICS = [
    "LoRA",
    "parameter-efficient fine-tuning",
    "quantization",
    "distillation",
    "pruning",
    "mixture of experts",
    "RLHF",
    "reinforcement learning",
    "diffusion",
    "video generation",
    "text-to-image",
    "3D reconstruction",
    "Gaussian splatting",
    "NeRF",
    "speech recognition",
    "TTS",
    "ASR",
    "multimodal",
    "vision-language models",
    "LLM",
    "agents",
    "tool use",
    "retrieval-augmented generation",
    "RAG",
    "long context",
    "reasoning",
    "chain-of-thought",
    "code generation",
    "benchmarks",
    "federated learning",
    "graph neural networks",
    "time series",
    "robotics",
    "world models",
    "alignment",
    "interpretability",
    "hallucination",
    "tokenization",
    "state space models",
    "transformers",
]
EXCLUDES = ["survey", "benchmark", "medical", "review"]
ZONES = [
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Paris",
    "America/New_York",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Tokyo",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "Australia/Sydney",
    "Africa/Lagos",
]


def make_csv(rows: int, seed: int = 1) -> bytes:
    """The benchmark file: `rows` data rows after the header."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "keywords", "exclude", "profile", "timezone", "send_at", "frequency"])
    readers = 0
    for _ in range(rows):
        if readers > 100 and rng.random() < 0.05:  # a second profile of an earlier reader
            email, profile = f"Reader{rng.randrange(readers)}@Example.org", "second"
        else:
            email, profile = f"Reader{readers}@Example.org", ""
            readers += 1
        keywords = []
        for topic in rng.sample(TOPICS, rng.randint(1, 4)):
            if " " in topic and rng.random() < 0.15:
                topic = f'"{topic}"'
            if rng.random() < 0.1:
                topic += f"^{rng.choice((2, 0.5, 1.5))}"
            keywords.append(topic)
        writer.writerow(
            [
                email,
                ", ".join(keywords),
                rng.choice(EXCLUDES) if rng.random() < 0.2 else "",
                profile,
                rng.choice(ZONES),
                f"{rng.choice((6, 7, 7, 8, 9)):02d}:{rng.choice((0, 0, 15, 30)):02d}",
                "weekly" if rng.random() < 0.15 else "",
            ]
        )
    return out.getvalue().encode()


def _project(tmp: Path) -> Path:
    """The embedded default config (outbox delivery) with its store under `tmp`."""
    (tmp / "config.toml").write_text((ROOT / "config.toml").read_text())
    return tmp / "config.toml"


def _measure(work: Callable[[], dict[str, float] | None]) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    extra = work()
    return {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **(extra or {}),
    }


def one_run(kind: str, data_path: Path, sample: int) -> dict[str, float]:
    """One measurement in this process (called in a child: see `measure`)."""
    from digest import pipeline
    from digest.config import load_config
    from digest.deliver import make_backend
    from digest.errors import QueryError
    from digest.rank import make_profile
    from digest.store import Store
    from digest.subscriptions import DEFAULT_PROFILE, subscribe

    os.environ.setdefault("DIGEST_SECRET", "bench-secret-of-at-least-32-bytes")
    data = data_path.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(_project(Path(tmp)), required=True)

        def run_import(what: bytes, confirmed: bool = True) -> dict[str, float]:
            with Store(config.store_path) as store:
                report = pipeline.import_subscribers(
                    config,
                    store,
                    what,
                    "bench.csv",
                    NOW,
                    confirmed=confirmed,
                    open_backend=lambda: make_backend(config.delivery),
                )
            assert report.imported and not report.bad, report.summary()
            return {"new": report.new, "changed": report.changed, "sent": report.confirmations}

        if kind == "import":
            return _measure(lambda: run_import(data))
        if kind == "again":
            run_import(data)
            return _measure(lambda: run_import(data))
        head = b"\n".join(data.split(b"\n")[: sample + 1]) + b"\n"
        if kind == "pending":
            return _measure(lambda: run_import(head, confirmed=False))
        assert kind == "row-by-row"
        rows = list(csv.DictReader(io.StringIO(head.decode())))

        def one_by_one() -> None:
            with Store(config.store_path) as store:
                for row in rows:
                    try:
                        profile = make_profile(
                            row["profile"] or DEFAULT_PROFILE, row["keywords"], row["exclude"]
                        )
                    except QueryError:
                        continue
                    subscribe(
                        config,
                        store,
                        row["email"],
                        profile,
                        NOW,
                        timezone=row["timezone"] or None,
                        send_at=row["send_at"] or None,
                        frequency=row["frequency"] or None,
                        confirmed=True,
                    )

        return _measure(one_by_one)


def measure(kind: str, data_path: Path, sample: int) -> dict[str, float]:
    """`one_run` in a fresh process: its own peak RSS, no warm caches."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(data_path), "--sample", str(sample)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, path = args.child
        print(json.dumps(one_run(kind, Path(path), args.sample)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "readers.csv"
        data_path.write_bytes(make_csv(args.rows))
        size = data_path.stat().st_size / 1e6
        print(
            f"{args.rows} CSV rows ({size:.1f} MB), a new store each run, "
            f"median of {args.runs} runs, each in a fresh process"
        )
        scale = args.rows / args.sample
        results = {}
        for kind in ("import", "again", "pending", "row-by-row"):
            runs = [measure(kind, data_path, args.sample) for _ in range(args.runs)]
            results[kind] = runs
            wall = statistics.median(r["wall"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            rss = max(r["rss"] for r in runs)
            sampled = kind in ("pending", "row-by-row")
            label = f"{kind} ({args.sample} rows, x{scale:g})" if sampled else kind
            shown = f"{wall * scale:6.1f} s extrapolated" if sampled else f"{wall:6.1f} s"
            print(
                f"{label:28} wall {shown}  cpu {cpu * (scale if sampled else 1):6.1f} s  "
                f"peak RSS {rss:4.0f} MiB  runs: {[round(r['wall'], 2) for r in runs]}"
            )
        bulk = statistics.median(r["wall"] for r in results["import"])
        slow = statistics.median(r["wall"] for r in results["row-by-row"]) * scale
        print(f"row by row / bulk import: {slow / bulk:.0f}x (target: 100,000 rows < 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
