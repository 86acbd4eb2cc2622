"""`python bench/day_index.py`: what the day's shared paper index saves a ranking shard.

A throwaway PostgreSQL (tests/pg_cluster.py) with one day of `--papers` papers (the
synthetic capture of bench/day.py, ingested: blobs and postings kept) and the readers of
bench/day.py's world (first digests: every shard's window is the day). Measured in this
process, alternating the ways, median of `--runs`; CPU seconds are this process's and its
server backend's (user+sys, from /proc), so what the server spends sending blobs counts:

- index: one shard's index of the window for its readers' features (`send.Indexer`), for
  the features of --readers readers: `stored_index` (each shard reads every blob: as
  before), the day index holding every feature, loaded (`dayindex.shared_index`, what
  every shard after the first does), and one holding only the union of the readers'
  features, loaded (the alternative: someone must collect every due reader's keywords
  to make it); and making the full one (the first shard: blobs read, inverted, kept);
- shard: the whole plan of one shard of those readers (`send._plan`: every page ranked,
  digests made, nothing claimed) with `stored_index` and with the shared index loaded.

usage: python bench/day_index.py [--papers 2000] [--readers 5000,50000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _day_data as world  # noqa: E402

from digest import dayindex, pipeline, rank  # noqa: E402
from digest.bulk import ImportRow  # noqa: E402
from digest.config import Config, load_config  # noqa: E402
from digest.rank.analyzer import analyzer_for  # noqa: E402
from digest.rank.terms import encode, terms_wanted  # noqa: E402
from digest.send import Indexer, Window, _plan, stored_index  # noqa: E402
from digest.store import Store, open_store  # noqa: E402
from digest.work import shard_readers  # noqa: E402

NOW = world.at(world.DAY, world.SEND_AT)
#: Calls of a way in one figure of the index step (their mean).
REPEAT = 5


def backend_cpu(store: Store) -> float:
    """CPU seconds of the store's server backend so far."""
    (pid,) = store._db.execute("SELECT pg_backend_pid()").fetchone()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(store: Store, work: Callable[[], Any]) -> tuple[float, float]:
    """(this process's, the backend's) CPU seconds of `work()`."""
    mine, server = own_cpu(), backend_cpu(store)
    work()
    return own_cpu() - mine, backend_cpu(store) - server


def fill(url: str, config: Config, work: Path, papers: int, readers: int) -> None:
    path = world.capture_path(work, world.DAY)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(world.capture(world.seed_papers(), world.DAY, papers))
    everyone = world.readers(readers)
    joined = NOW - timedelta(days=30)
    with open_store(url) as store:
        pipeline.ingest(config, store, [str(path)], now=world.at(world.DAY, world.INGEST_AT))
        for start in range(0, readers, 10_000):
            rows = [
                ImportRow(i + 1, r.email, rank.make_profile(*r.profiles[0]), "UTC", "00:00")
                for i, r in enumerate(everyone[start : start + 10_000], start)
            ]
            list(store.upsert_subscribers(rows, joined, confirmed=True))


def wanted_of(store: Store, readers: int, config: Config) -> set[str]:
    keys = store.due_keys(NOW, limit=readers)
    found = store.subscribers_by_id([i for _, i in keys])
    keywords = {k for s in found.values() for p in s.profiles for k in (*p.keywords, *p.exclude)}
    return rank.keyword_features(keywords, config.ranking, config.synonyms or None)


def keep(store: Store, key: str, low: int, high: int, data: bytes) -> None:
    store._db.execute("DELETE FROM day_index")
    store.share_day_index(key, low, high, NOW, lambda lo, hi: data)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--papers", type=int, default=2000)
    ap.add_argument("--readers", default="5000,50000")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from tests.pg_cluster import missing_reason, start_cluster

    if reason := missing_reason():
        print(f"skipped: {reason}")
        return 0
    sizes = [int(n) for n in args.readers.split(",")]
    cluster = start_cluster()
    work = Path(tempfile.mkdtemp(prefix="day-index-bench-", dir="/dev/shm"))
    try:
        config = load_config(world.write_project(work), required=True)
        url = cluster.create_database("bench")
        fill(url, config, work, args.papers, max(sizes))
        with open_store(url) as store:
            high = store.newest_paper_row()
            low = store.row_arrived_by(NOW - timedelta(days=1))
            window = Window([p for _, p in store.arrivals(low, high)], low, high)
            key = dayindex.index_key(config.synonyms or None)
            terms_key = rank.terms_key(config.synonyms or None)
            blobs = store.paper_terms([p.id for p in window.papers], terms_key)
            full = dayindex.build(window.papers, blobs)
            print(
                f"{len(window.papers)} papers, {len(blobs)} blobs of"
                f" {sum(map(len, blobs.values())) / 1e6:.1f} MB; day index (every feature)"
                f" {len(full) / 1e6:.2f} MB ({len(full) / len(window.papers):.0f} B a paper);"
                f" load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            for readers in sizes:
                index_step(store, config, window, key, blobs, full, readers, args.runs)
            for readers in sizes:
                runs = args.runs if readers <= 5000 else 1
                shard_step(store, config, window, key, full, readers, runs)
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def index_step(
    store: Store,
    config: Config,
    window: Window,
    key: str,
    blobs: dict[str, bytes],
    full: bytes,
    readers: int,
    runs: int,
) -> None:
    wanted = wanted_of(store, readers, config)
    analyzer = analyzer_for(config.synonyms or None)
    narrowed = terms_wanted(window.papers, analyzer, blobs, wanted)
    union = dayindex.build(
        window.papers, {p.id: encode(p, t) for p, t in zip(window.papers, narrowed, strict=True)}
    )

    def own() -> Any:
        return stored_index(config, store, NOW, window, wanted, None)

    def shared() -> Any:
        return dayindex.shared_index(config, store, NOW, window, wanted, None)

    results: dict[str, list[tuple[float, float]]] = {}

    def kept(data: bytes) -> Callable[[], None]:
        return lambda: keep(store, key, window.low, window.high, data)

    def made() -> None:
        store._db.execute("DELETE FROM day_index")

    ways: list[tuple[str, Callable[[], None], Callable[[], Any]]] = [
        ("own index (before)", lambda: None, own),
        ("day index, every feature", kept(full), shared),
        ("day index, readers' union", kept(union), shared),
        ("first shard: makes it", made, shared),
    ]
    for _ in range(runs):
        for name, setup, way in ways:
            got = []
            for _ in range(REPEAT):  # /proc counts in 10 ms ticks: a few calls a figure
                setup()
                got.append(measured(store, way))
            mean = tuple(sum(g[k] for g in got) / REPEAT for k in (0, 1))
            results.setdefault(name, []).append(mean)  # type: ignore[arg-type]
    print(
        f"\nindex step, {readers} readers' features ({len(wanted)}); union index"
        f" {len(union) / 1e6:.2f} MB; median of {runs}; load {os.getloadavg()[0]:.1f}"
    )
    for name, got in results.items():
        mine = statistics.median(c for c, _ in got)
        server = statistics.median(s for _, s in got)
        print(f"  {name:28} {mine:6.3f} CPU-s + {server:6.3f} server = {mine + server:6.3f}")


def shard_step(
    store: Store, config: Config, window: Window, key: str, full: bytes, readers: int, runs: int
) -> None:
    keys = store.due_keys(NOW, limit=readers)

    def plan(indexer: Indexer) -> Callable[[], int]:
        def run() -> int:
            pages = _plan(
                config, store, NOW, None, (), {}, shard_readers(store, NOW, None, keys[-1]), indexer
            )
            return sum(len(p.planned) for p in pages)

        return run

    keep(store, key, window.low, window.high, full)
    results: dict[str, list[tuple[float, float, float]]] = {}
    for _ in range(runs):
        for name, indexer in (
            ("own index (before)", stored_index),
            ("day index", dayindex.shared_index),
        ):
            started = time.perf_counter()
            mine, server = measured(store, plan(indexer))
            results.setdefault(name, []).append((mine, server, time.perf_counter() - started))
    load = os.getloadavg()[0]
    print(
        f"\nwhole shard of {len(keys)} readers (plan, no claims); median of {runs}; load {load:.1f}"
    )
    for name, got in results.items():
        mine = statistics.median(c for c, _, _ in got)
        server = statistics.median(s for _, s, _ in got)
        wall = statistics.median(w for _, _, w in got)
        total = mine + server
        print(f"  {name:28} {mine:7.2f} CPU-s + {server:5.2f} server = {total:7.2f} ({wall:.1f} s)")


if __name__ == "__main__":
    raise SystemExit(main())
