"""`make cluster-bench`: digests a second with 1, 2 and 4 `digest worker`s on one PostgreSQL.

A throwaway PostgreSQL on 127.0.0.1 (tests/pg_cluster.py), the seed papers and N readers
(1-2 topics each, due now) in one database, copied (CREATE DATABASE ... TEMPLATE) for
each run so every run starts from the same state. Timed: from queueing one sweep to
every delivery `sent`, with W worker processes (`digest worker`, rate limit off) and the
SMTP sink of bench/send.py in its own process. Printed per W: wall seconds, digests a
second, CPU seconds of the workers (user+sys, RUSAGE_CHILDREN) and of the PostgreSQL
server (its postmaster's own and its exited backends'), CPU ms a digest, and the
scaling ratio against W=1; and the naive baseline measured the same way: one `digest
send` process (the one-host path, no queue) on its own copy.

The world is built a page of readers at a time (memory does not grow with N) and kept
as a pg_dump under `--cache` (default /dev/shm/papers-digest-cluster-bench), named by
the readers, the schema version and the seeds: a second run restores it in seconds
instead of importing 100,000 readers again. Delete the directory when done.

The machine has 2 cores, so 4 workers cannot be 4x: the ratio says what the queue,
the leases and the shared bucket cost, not what N hosts would give.

usage: python bench/cluster.py [--readers 100000] [--workers 1,2,4] [--runs 1] [--cache DIR]
"""

from __future__ import annotations

import argparse
import hashlib
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


#: Readers imported per call (each call is its own transactions): bounds the fill's memory.
FILL_PAGE = 10_000


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
    install(url)
    with open_store(url) as store:
        pipeline.ingest(config, store, now=now)
        for start in range(0, readers, FILL_PAGE):
            rows = []
            for i in range(start, min(readers, start + FILL_PAGE)):
                topics = rng.sample(TOPICS, rng.choice((1, 2)))
                profile = make_profile("papers", tuple(k for t in topics for k in t))
                rows.append(ImportRow(i + 1, f"reader{i}@example.org", profile, "UTC", "00:00"))
            list(store.upsert_subscribers(rows, now, confirmed=True))


def world(cluster: object, template: str, config: Path, readers: int, cache: Path) -> str:
    """Make the template database: restored from the cached dump of this world, or
    filled (and dumped for next time). How it was made."""
    from digest.store import SCHEMA_VERSION

    seeds = hashlib.sha256()
    for path in sorted((config.parent / "seeds").glob("*")):
        seeds.update(path.read_bytes())
    name = f"world-{readers}-v{SCHEMA_VERSION}-{seeds.hexdigest()[:12]}.dump"
    dump = cache / name
    url = cluster.create_database(template)  # type: ignore[attr-defined]
    bindir = cluster.bindir  # type: ignore[attr-defined]
    if dump.exists():
        subprocess.run([str(bindir / "pg_restore"), "-d", url, str(dump)], check=True)
        return f"restored from {dump}"
    started = time.perf_counter()
    fill(url, config, readers)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = dump.with_suffix(".tmp")
    subprocess.run([str(bindir / "pg_dump"), "-Fc", "-f", str(tmp), url], check=True)
    tmp.rename(dump)
    return f"built in {time.perf_counter() - started:.0f} s, kept as {dump}"


def server_cpu(cluster: object) -> float:
    """CPU seconds of the PostgreSQL server so far: the postmaster's own and its exited
    children's (each backend ends with its connection)."""
    pid = (cluster.data / "postmaster.pid").read_text().split()[0]  # type: ignore[attr-defined]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def sent(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM deliveries WHERE state = 'sent'").fetchone()
    return int(row[0]) if row else 0


def one_run(
    cluster: object, template: str, config: Path, workers: int, readers: int, n: int
) -> tuple[float, float, float]:
    """Seconds until all `readers` are sent, the CPU seconds the processes used, and the
    CPU seconds of the server."""
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
    cpu0, server0, start = _children_cpu(), server_cpu(cluster), time.perf_counter()
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
    cpu, server = _children_cpu() - cpu0, server_cpu(cluster) - server0
    with psycopg.connect(admin, autocommit=True) as conn:  # a 100,000-reader copy is big
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    return wall, cpu, server


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readers", type=int, default=100_000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=Path("/dev/shm/papers-digest-cluster-bench"))
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
            made = world(cluster, template, config, args.readers, args.cache)
            print(
                f"{args.readers} readers, the seed papers (world {made}); SMTP sink in"
                f" another process; median of {args.runs} run(s); {os.cpu_count()} cores;"
                f" load {os.getloadavg()[0]:.1f}",
                flush=True,
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
                db_cpu = statistics.median(r[2] for r in runs)
                rate = args.readers / wall
                label = "digest send (naive, 1 process)" if workers == 0 else f"{workers} workers"
                line = (
                    f"{label:32} {wall:7.1f} s  {rate:7.0f} digests/s  {cpu:7.1f} CPU-s"
                    f" + {db_cpu:6.1f} server  {1000 * (cpu + db_cpu) / args.readers:5.2f}"
                    f" CPU-ms/digest  load {os.getloadavg()[0]:.1f}"
                )
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
