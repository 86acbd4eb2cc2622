"""Publishing speed: a synthetic archive (--days x --per-day papers) in a temporary store.

    python bench/publish.py [--days 365] [--per-day 50] [--runs 3] [--code DIR]
                            [--baseline DIR] [--keep DIR] [--ranker real|stub]

Measures `pipeline.publish` three ways: from scratch, again with nothing changed, and
after one new day was ingested. Each measurement runs in a fresh process so its figures
are its own; per phase it prints (median of --runs, min beside it):

- CPU seconds of the publish, its worker processes included (RUSAGE_CHILDREN), and
  of that the ranker's own CPU (`rank.rank` calls, timed wherever they ran: ranking gets
  cheaper once analysed terms are stored at ingest, so it is reported apart);
- wall seconds and peak RSS (MiB) of the publishing process and of its workers;
- files written / files in the site, days ranked.

Then the site: files, bytes, and the bytes of the search index (search-index.js plus its
per-day shards under search/), and the year figure: CPU seconds of a year (365 days)
from scratch, measured with `--days 365`, else extrapolated per day, with the peak RSS
of one process. `--code DIR` measures another checkout; `--baseline DIR` measures a
second one (say the main branch) in the same run, each on its own copy of the same
store, run by run in turn, and prints the ratios of their CPU seconds.

A year at 2,000 papers a day takes a while to build (the seeds' abstracts are analysed
once, each title once a paper): `--keep DIR` builds it there once and copies it for
every later run. The store keeps each paper's analysed text in the JSON layout every
checkout reads; before its runs, each checkout's copy is brought to the layout its own
ingest writes (`rank.terms.repack` where it has one: packed blobs), unmeasured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__" and not {"--child", "--child-repack"} & set(sys.argv):
    sys.path.insert(0, str(ROOT))

from digest import rank  # noqa: E402
from digest.config import load_config  # noqa: E402
from digest.model import DigestItem, Paper  # noqa: E402
from digest.pipeline import ingest, publish  # noqa: E402
from digest.store import Store  # noqa: E402
from digest.text import title_id  # noqa: E402

FIRST_DAY = date(2025, 1, 1)
#: Where the timed ranker appends the CPU seconds of each call (one line a call).
RANK_LOG_ENV = "BENCH_PUBLISH_RANK_LOG"
_original_rank = rank.rank
#: "stub" replaces the ranker with `stub_rank` in the measured processes.
RANKER_ENV = "BENCH_PUBLISH_RANKER"


def timed_rank(*args: object, **kwargs: object) -> object:
    """`rank.rank`, with the CPU time of each call appended to the rank log. Module-level
    and not `functools.wraps`-ed, so worker processes unpickle this very function."""
    start = time.process_time()
    ranker = stub_rank if os.environ.get(RANKER_ENV) == "stub" else _original_rank
    try:
        return ranker(*args, **kwargs)  # type: ignore[arg-type]
    finally:
        with open(os.environ[RANK_LOG_ENV], "a", encoding="ascii") as log:
            log.write(f"{time.process_time() - start:.6f}\n")


_original_call: Any = None


def timed_call(self: object, *args: object, **kwargs: object) -> object:
    """`KeptTermsRanker.__call__`, timed (and stubbed) as `timed_rank` is."""
    start = time.process_time()
    try:
        if os.environ.get(RANKER_ENV) == "stub":
            return stub_rank(*args, **kwargs)  # type: ignore[arg-type]
        return _original_call(self, *args, **kwargs)
    finally:
        with open(os.environ[RANK_LOG_ENV], "a", encoding="ascii") as log:
            log.write(f"{time.process_time() - start:.6f}\n")


def stub_rank(
    papers: list[Paper], profiles: list[object], now: datetime, *args: object, **kwargs: object
) -> list[tuple[DigestItem, ...]]:
    """A stand-in for `rank.rank` that costs nothing (`--ranker stub`): ten fixed papers a
    profile, no matches. It measures everything a publish does besides ranking, at sizes
    where the real ranking would take an hour here."""
    out = []
    for j in range(len(profiles)):
        chosen = sorted({(j * 37 + k * 101) % len(papers) for k in range(10)}) if papers else []
        out.append(tuple(DigestItem(papers[i], 0.5 - k / 100) for k, i in enumerate(chosen)))
    return out


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
                # A well-formed, unique arXiv id (per_day <= 3,225): a source link, so the
                # paper is listed on its day page and gets no permalink unless picked.
                arxiv_id=f"{day:%y%m}.{(day.day - 1) * per_day + i:05d}",
                sources=("bench",),
                first_seen=seen,
                last_seen=seen,
            )
        )
    return out


def build(work: Path, days: int, per_day: int) -> None:
    """A config (the embedded default, seeds included) and a store holding the archive."""
    shutil.copy(ROOT / "config.toml", work / "config.toml")
    shutil.copytree(ROOT / "seeds", work / "seeds")
    config = load_config(work / "config.toml", required=True)
    with Store(work / "seeds.sqlite3") as seeds:
        ingest(config, seeds, now=datetime(2026, 1, 1, tzinfo=UTC))
        templates = seeds.papers()
    with Store(work / "bench.sqlite3") as store:
        for n in range(days):
            papers = day_papers(templates, FIRST_DAY + timedelta(days=n), per_day, n)
            store.add_papers(papers)
            keep_terms(store, papers)


def prepare_store(work: Path, days: int, per_day: int, keep: Path | None) -> None:
    """`build` in `work`, or when `keep` is given, a copy of the store built there (by
    this very call when it has none of this size yet: a year takes minutes to build)."""
    if keep is None:
        build(work, days, per_day)
        return
    kept = keep / f"{days}x{per_day}"
    if not (kept / "bench.sqlite3").exists():
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir(parents=True)
        build(kept, days, per_day)
    for name in ("config.toml", "seeds.sqlite3", "bench.sqlite3"):
        shutil.copy(kept / name, work / name)
    shutil.copytree(kept / "seeds", work / "seeds")


#: Analysed abstracts by text: the bench's papers share the seeds' abstracts, and a
#: paper's title and abstract are analysed apart, so this gives ingest's very blobs.
_ABSTRACTS: dict[str, tuple[list[str], int]] = {}


def keep_terms(store: Store, papers: list[Paper], *, as_ingest: bool = False) -> None:
    """What ingest does for every new paper: keep its analysed text (stores of code from
    before kept terms have no such table: then nothing). In the JSON layout every
    checkout reads, or `as_ingest` in the layout this checkout's ingest writes."""
    if not hasattr(store, "keep_paper_terms"):
        return
    from collections import Counter

    from digest.rank import terms as kept
    from digest.rank import terms_key
    from digest.rank.analyzer import analyzer_for
    from digest.rank.terms import PaperTerms

    # the layout every checkout reads (`repack_store` brings a copy up to date)
    encode = kept.encode if as_ingest else getattr(kept, "encode_json", kept.encode)

    analyzer = analyzer_for(None)
    blobs = []
    for p in papers:
        title, title_words = analyzer.features(p.title)
        if p.abstract not in _ABSTRACTS:
            _ABSTRACTS[p.abstract] = analyzer.features(p.abstract or "")
        abstract, abstract_words = _ABSTRACTS[p.abstract]
        t, a = Counter(title), Counter(abstract)
        terms = PaperTerms(
            tuple(t), tuple(t.values()), title_words, tuple(a), tuple(a.values()), abstract_words
        )
        blobs.append((p.id, encode(p, terms)))
    store.keep_paper_terms(blobs, terms_key(None))


def repack_store(work: Path) -> str:
    """Bring the kept terms of `work`'s store to the layout this checkout's ingest writes
    (`rank.terms.repack`; nothing for code without it). The bench's papers share a few
    hundred abstracts, so feature hashes are cached here: a real ingest hashes each
    paper's features once anyway."""
    try:
        from digest.rank import packed, terms
    except ImportError:
        return "no repack"
    import functools

    packed.feature_hash = functools.lru_cache(maxsize=1 << 20)(packed.feature_hash)  # type: ignore[assignment]
    start = time.perf_counter()
    n = 0
    with Store(work / "bench.sqlite3") as store:
        key = terms.terms_key(None)
        for day in store.paper_days():
            papers = store.papers_between(day, day + timedelta(days=1))
            blobs = store.paper_terms([p.id for p in papers], key)
            new = [(p.id, b) for p in papers if (b := terms.repack(p, blobs[p.id])) is not None]
            n += store.keep_paper_terms(new, key)
    return f"repacked {n} blobs in {time.perf_counter() - start:.0f} s"


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def measure(work: Path, out: Path, add_day: int | None, per_day: int) -> dict[str, float]:
    """One publish in this process: CPU, wall, ranking CPU and peak RSS of it and its workers."""
    config = load_config(work / "config.toml", required=True)
    log = work / f"rank-{os.getpid()}.log"
    os.environ[RANK_LOG_ENV] = str(log)
    rank.rank = timed_rank  # type: ignore[assignment]  # pipeline.publish looks it up per call
    try:  # the archive ranks with `window.KeptTermsRanker` (code from before: `rank.rank`)
        from digest.window import KeptTermsRanker

        global _original_call
        _original_call = KeptTermsRanker.__call__
        KeptTermsRanker.__call__ = timed_call  # type: ignore[method-assign]
    except ImportError:
        pass
    with Store(work / "bench.sqlite3") as store:
        if add_day is not None:
            with Store(work / "seeds.sqlite3") as seeds:
                templates = seeds.papers()
            papers = day_papers(templates, FIRST_DAY + timedelta(days=add_day), per_day, add_day)
            store.add_papers(papers)
            keep_terms(store, papers, as_ingest=True)
        now = datetime(2030, 1, 1, tzinfo=UTC)
        cpu0 = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        report = publish(config, store, now, out_dir=out)
        seconds = time.perf_counter() - start
        cpu = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - cpu0
    ranking = sum(float(x) for x in log.read_text().split()) if log.exists() else 0.0
    return {
        "seconds": seconds,
        "cpu": cpu,
        "rank_cpu": ranking,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "workers_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "written": report.written,
        "total": report.total,
        "ranked_days": report.ranked_days,
    }


def run_repack(code: Path, work: Path) -> str:
    """`repack_store` of `work` with the code of `code`, in a child process."""
    args = [sys.executable, __file__, "--child-repack", str(work)]
    done = subprocess.run(
        args, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(code))
    )
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def run_child(
    code: Path, work: Path, out: Path, add_day: int | None, per_day: int, ranker: str
) -> dict[str, float]:
    args = [sys.executable, __file__, "--child", str(work), "--out", str(out)]
    args += ["--per-day", str(per_day)]
    if add_day is not None:
        args += ["--add-day", str(add_day)]
    env = dict(os.environ, PYTHONPATH=str(code), **{RANKER_ENV: ranker})
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(label: str, results: list[dict[str, float]]) -> None:
    def med(key: str) -> str:
        values = [r[key] for r in results]
        return f"{statistics.median(values):7.2f} (min {min(values):.2f})"

    last = results[-1]
    print(
        f"{label:<16} CPU {med('cpu')} s, of it ranking {med('rank_cpu')} s;"
        f" wall {med('seconds')} s; peak RSS {max(r['rss_mb'] for r in results):5.0f} MiB"
        f" (rank workers {max(r['workers_rss_mb'] for r in results):4.0f});"
        f" {int(last['written'])}/{int(last['total'])} files written,"
        f" {int(last['ranked_days'])} days ranked; median of {len(results)}"
    )


def site_sizes(site: Path) -> str:
    files = [p for p in site.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    search = [p for p in files if p.name == "search-index.js" or "search" in p.parent.parts]
    search_size = sum(p.stat().st_size for p in search)
    return (
        f"site: {len(files)} files, {size / 1e6:.1f} MB;"
        f" search index {search_size / 1e6:.2f} MB in {len(search)} files"
    )


PHASES = ("from scratch", "nothing changed", "one new day")


def measure_all(
    codes: dict[str, Path], work: Path, args: argparse.Namespace
) -> tuple[dict[str, dict[str, list[dict[str, float]]]], dict[str, Path]]:
    """Every phase, --runs times, for each checkout in its own copy of `work` (a store
    opened by another version may be migrated by it); the checkouts take turns run by
    run, so a load that comes and goes hits both alike. Returns the figures and each
    checkout's last site."""
    got: dict[str, dict[str, list[dict[str, float]]]] = {c: {p: [] for p in PHASES} for c in codes}
    dirs = {}
    for label in codes:
        dirs[label] = work if label == "code" else work / label
        if label != "code":
            dirs[label].mkdir()
            for name in ("config.toml", "seeds.sqlite3", "bench.sqlite3"):
                shutil.copy(work / name, dirs[label] / name)
            shutil.copytree(work / "seeds", dirs[label] / "seeds")
    for label in codes:  # each copy made first: a repacked store is of no use to old code
        print(f"{label}: {run_repack(codes[label], dirs[label])}", flush=True)
    site = {label: dirs[label] / f"site-{args.runs - 1}" for label in codes}
    for phase in PHASES:
        for n in range(args.runs):
            for label, code in codes.items():
                out = dirs[label] / f"site-{n}" if phase == "from scratch" else site[label]
                add_day = args.days + n if phase == "one new day" else None
                got[label][phase].append(
                    run_child(code, dirs[label], out, add_day, args.per_day, args.ranker)
                )
    return got, site


def year_line(label: str, scratch: list[dict[str, float]], days: int) -> str:
    """The from-scratch figure for a year (365 days), measured or extrapolated per day."""
    cpu = statistics.median(r["cpu"] for r in scratch)
    rss = max(max(r["rss_mb"], r["workers_rss_mb"]) for r in scratch)
    how = "measured" if days == 365 else f"extrapolated from {days} days, per day"
    return (
        f"{label:<9} a year from scratch: {cpu * 365 / days:7.1f} CPU-s ({how});"
        f" {cpu / days:.3f} CPU-s a day; peak RSS of one process {rss:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (say the main branch) measured in the same run, for ratios",
    )
    parser.add_argument(
        "--ranker",
        choices=("real", "stub"),
        default="real",
        help="stub: ten fixed picks a profile, to measure publishing without ranking",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="build the store in this directory once and copy it for every later run",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--add-day", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-repack", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_repack:
        print(repack_store(args.child_repack))
        return
    if args.child:
        print(json.dumps(measure(args.child, args.out, args.add_day, args.per_day)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        prepare_store(work, args.days, args.per_day, args.keep)
        print(
            f"store: {args.days} days x {args.per_day} papers = {args.days * args.per_day}"
            f" papers, ready in {time.perf_counter() - start:.1f} s; ranker: {args.ranker}"
        )
        codes = {"code": args.code.resolve()}
        if args.baseline:
            codes["baseline"] = args.baseline.resolve()
        got, sites = measure_all(codes, work, args)
        for label, code in codes.items():
            print(f"{label}: {code}")
            for phase in PHASES:
                show(phase, got[label][phase])
            print(site_sizes(sites[label]))
        for label in codes:
            print(year_line(label, got[label]["from scratch"], args.days))
        if args.baseline:
            for phase in PHASES:
                new, old = (statistics.median(r["cpu"] for r in got[c][phase]) for c in codes)
                print(f"baseline/code CPU, {phase:<16} {old / new:5.2f}x ({old:.2f} / {new:.2f} s)")


if __name__ == "__main__":
    main()
