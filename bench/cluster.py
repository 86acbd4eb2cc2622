"""`make cluster-bench`: digests a second with 1, 2 and 4 `digest worker`s on one PostgreSQL.

A throwaway PostgreSQL on 127.0.0.1 (tests/pg_cluster.py), the seed papers and N readers
(1-2 topics each, due now) in one database, copied (CREATE DATABASE ... TEMPLATE) for
each run so every run starts from the same state. Timed: from queueing one sweep to
every delivery `sent`, with W worker processes (`digest worker`, rate limit off) and the
SMTP sink of bench/send.py in its own process. Printed per W: wall seconds, digests a
second, CPU seconds of the workers (user+sys, RUSAGE_CHILDREN), and the scaling ratio
against W=1; and the naive baseline measured the same way: one `digest send` process
(the one-host path, no queue) on its own copy.

The machine has 2 cores, so 4 workers cannot be 4x: the ratio says what the queue,
the leases and the shared bucket cost, not what N hosts would give.

usage: python bench/cluster.py [--readers 100000] [--workers 1,2,4] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from send import TOPICS, project, start_sink  # noqa: E402  (bench/send.py's sink and topics)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fill(url: str, config_path: Path, readers: int) -> None:
    from digest import pipeline
    from digest.bulk import ImportRow
    from digest.config import load_config
    from digest.rank import make_profile
    from digest.store import open_store
    from digest.tasks import install

    config = load_config(config_path, required=True)
    now = datetime.now(UTC)
    rng = random.Random(1)
    rows = []
    for i in range(readers):
        topics = rng.sample(TOPICS, rng.choice((1, 2)))
        profile = make_profile("papers", tuple(k for t in topics for k in t))
        rows.append(ImportRow(i + 1, f"reader{i}@example.org", profile, "UTC", "00:00"))
    install(url)
    with open_store(url) as store:
        pipeline.ingest(config, store, now=now)
        list(store.upsert_subscribers(rows, now, confirmed=True))


def sent(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM deliveries WHERE state = 'sent'").fetchone()
    return int(row[0]) if row else 0


def one_run(
    cluster: object, template: str, config: Path, workers: int, readers: int, n: int
) -> tuple[float, float]:
    """Seconds until all `readers` are sent, and the CPU seconds the processes used."""
    import psycopg

    from digest.store import open_store
    from digest.work import QUEUE, SWEEP

    name = f"run_{workers}_{n}"
    admin = cluster.url()  # type: ignore[attr-defined]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = cluster.url(name)  # type: ignore[attr-defined]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "digest", "--config", str(config), "--db", url]
    base.append("--allow-local-links")
    cpu0, start = _children_cpu(), time.perf_counter()
    if workers == 0:  # the naive baseline: one `digest send`, in one process
        subprocess.run([*base, "send"], env=env, check=False, stdout=subprocess.DEVNULL)
    else:
        procs = [
            subprocess.Popen([*base, "worker"], env=env, stderr=subprocess.DEVNULL)
            for _ in range(workers)
        ]
        with open_store(url) as store:
            store.defer(SWEEP, QUEUE, [{}])  # type: ignore[attr-defined]
        deadline = time.monotonic() + 3600
        while sent(url) < readers and time.monotonic() < deadline:
            time.sleep(0.5)
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=120)
    wall = time.perf_counter() - start
    done = sent(url)
    assert done == readers, f"{done} of {readers} sent"
    return wall, _children_cpu() - cpu0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readers", type=int, default=100_000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    from tests.pg_cluster import missing_reason, start_cluster

    reason = missing_reason()
    if reason:
        print(f"skipped: {reason}")
        return 0
    os.environ.setdefault("DIGEST_SECRET", "bench-secret-of-at-least-32-bytes")
    server, port = start_sink()
    cluster = start_cluster()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = project(Path(tmp), port, 1)
            template = "cluster_template"
            fill(cluster.create_database(template), config, args.readers)
            print(
                f"{args.readers} readers, the seed papers; SMTP sink in another process;"
                f" median of {args.runs} run(s); {os.cpu_count()} cores"
            )
            base_rate = None
            counts = [0] + [int(w) for w in args.workers.split(",")]
            for workers in counts:
                runs = [
                    one_run(cluster, template, config, workers, args.readers, n)
                    for n in range(args.runs)
                ]
                wall = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                rate = args.readers / wall
                label = "digest send (naive, 1 process)" if workers == 0 else f"{workers} workers"
                line = f"{label:32} {wall:7.1f} s  {rate:7.0f} digests/s  {cpu:7.1f} CPU-s"
                if workers == 1:
                    base_rate = rate
                if workers and base_rate:
                    line += f"  x{rate / base_rate:.2f} vs 1 worker"
                print(line, flush=True)
    finally:
        cluster.stop()
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of a child process: {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
