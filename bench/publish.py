"""Publishing speed: a synthetic year (365 days x 50 papers) in a temporary store.

    python bench/publish.py [--days 365] [--per-day 50] [--runs 3]

Prints the wall time (median of --runs) and peak RSS of publishing the archive from
scratch, again with nothing changed, and after one new day. Each measurement runs in a
fresh process so its peak RSS is its own (worker processes that rank days are reported
separately). Targets on 2 cores: <= 20 s from scratch, <= 1 s when nothing changed.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.config import load_config  # noqa: E402
from digest.model import Paper  # noqa: E402
from digest.pipeline import ingest, publish  # noqa: E402
from digest.store import Store  # noqa: E402
from digest.text import title_id  # noqa: E402

FIRST_DAY = date(2025, 1, 1)


def day_papers(templates: list[Paper], day: date, per_day: int, salt: int) -> list[Paper]:
    """`per_day` distinct papers for `day`, their text taken from the seed papers."""
    seen = datetime.combine(day, datetime.min.time(), UTC)
    out = []
    for i in range(per_day):
        t = templates[(salt * per_day + i * 7) % len(templates)]
        title = f"{t.title} ({day.isoformat()} #{i})"
        out.append(
            Paper(
                id=title_id(title),
                title=title,
                abstract=t.abstract,
                published=t.published,
                upvotes=(i * 13 + salt) % 40,
                authors_count=t.authors_count,
                organization=t.organization,
                sources=("bench",),
                first_seen=seen,
                last_seen=seen,
            )
        )
    return out


def build(work: Path, days: int, per_day: int) -> None:
    """A config (the embedded default, seeds included) and a store holding the year."""
    shutil.copy(ROOT / "config.toml", work / "config.toml")
    shutil.copytree(ROOT / "seeds", work / "seeds")
    config = load_config(work / "config.toml", required=True)
    with Store(work / "seeds.sqlite3") as seeds:
        ingest(config, seeds)
        templates = seeds.papers()
    with Store(work / "bench.sqlite3") as store:
        batch: list[Paper] = []
        for n in range(days):
            batch += day_papers(templates, FIRST_DAY + timedelta(days=n), per_day, n)
        store.add_papers(batch)


def measure(work: Path, out: Path, add_day: int | None, per_day: int) -> dict[str, float]:
    """One publish in this process: seconds and peak RSS (MB) of it and of its workers."""
    config = load_config(work / "config.toml", required=True)
    with Store(work / "bench.sqlite3") as store:
        if add_day is not None:
            with Store(work / "seeds.sqlite3") as seeds:
                templates = seeds.papers()
            store.add_papers(
                day_papers(templates, FIRST_DAY + timedelta(days=add_day), per_day, add_day)
            )
        now = datetime(2030, 1, 1, tzinfo=UTC)
        start = time.perf_counter()
        report = publish(config, store, now, out_dir=out)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "workers_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "written": report.written,
        "total": report.total,
        "ranked_days": report.ranked_days,
    }


def run_child(work: Path, out: Path, add_day: int | None, per_day: int) -> dict[str, float]:
    args = [sys.executable, __file__, "--child", str(work), "--out", str(out)]
    args += ["--per-day", str(per_day)]
    if add_day is not None:
        args += ["--add-day", str(add_day)]
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(label: str, results: list[dict[str, float]]) -> None:
    times = [r["seconds"] for r in results]
    last = results[-1]
    print(
        f"{label:<16} {statistics.median(times):7.2f} s median of {len(times)}"
        f" (min {min(times):.2f})  peak RSS {max(r['rss_mb'] for r in results):6.0f} MB"
        f" (rank workers {max(r['workers_rss_mb'] for r in results):4.0f} MB)"
        f"  {int(last['written'])}/{int(last['total'])} files written,"
        f" {int(last['ranked_days'])} days ranked"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--add-day", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.out, args.add_day, args.per_day)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        build(work, args.days, args.per_day)
        print(
            f"store: {args.days} days x {args.per_day} papers = {args.days * args.per_day}"
            f" papers, built in {time.perf_counter() - start:.1f} s"
        )
        scratch = []
        for n in range(args.runs):
            out = work / f"site-{n}"
            scratch.append(run_child(work, out, None, args.per_day))
        show("from scratch", scratch)
        site = work / f"site-{args.runs - 1}"
        show(
            "nothing changed", [run_child(work, site, None, args.per_day) for _ in range(args.runs)]
        )
        new_day = [run_child(work, site, args.days + n, args.per_day) for n in range(args.runs)]
        show("one new day", new_day)
        size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
        files = sum(1 for p in site.rglob("*") if p.is_file())
        print(f"site: {files} files, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
