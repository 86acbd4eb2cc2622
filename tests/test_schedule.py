"""The scheduler: jobs fire, a missed run is coalesced into one, one scheduler per store,
and SIGTERM stops it cleanly. Real SQLite job store, real APScheduler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import Config
from digest.errors import SchedulerError
from digest.schedule import LEASE, build_scheduler, hold_lease
from digest.store import Store

COUNTER = Path(os.environ.get("DIGEST_TEST_COUNTER", "/nonexistent"))


def count_job(path: str) -> None:
    """A job for the tests: appends one line per run."""
    with open(path, "a") as f:
        f.write("run\n")


def _wait(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_fetch_job_fires_and_ingests(config: Config) -> None:
    db = str(config.store_path)
    Store(db).close()
    scheduler = build_scheduler(config, str(config.path), db, scheduler_cls=BackgroundScheduler)
    scheduler.start()
    try:
        scheduler.get_job("fetch").modify(next_run_time=datetime.now(UTC))
        assert _wait((config.publish.dir / "index.html").exists)  # ingested, then published
    finally:
        scheduler.shutdown()
    with Store(db) as store:  # the jobs persist in the store's SQLite file
        assert store.count_papers() == 331
    again = build_scheduler(config, str(config.path), db, scheduler_cls=BackgroundScheduler)
    again.start(paused=True)
    try:
        assert {j.id for j in again.get_jobs()} >= {"fetch", "sync-subscribers"}
    finally:
        again.shutdown()


def test_missed_runs_are_coalesced_into_one(config: Config, tmp_path: Path) -> None:
    db = str(config.store_path)
    Store(db).close()
    counter = tmp_path / "count.txt"
    scheduler = build_scheduler(config, str(config.path), db, scheduler_cls=BackgroundScheduler)
    # Due five times over (every minute, first run five minutes ago): runs once.
    scheduler.add_job(
        count_job,
        IntervalTrigger(minutes=1),
        args=[str(counter)],
        id="count",
        replace_existing=True,
        next_run_time=datetime.now(UTC) - timedelta(minutes=5),
    )
    scheduler.start()
    try:
        assert _wait(counter.exists)
        time.sleep(1.0)
        assert counter.read_text() == "run\n"
        job = scheduler.get_job("count")
        assert job.coalesce and job.max_instances == 1
        assert job.next_run_time > datetime.now(UTC)
    finally:
        scheduler.shutdown()


def test_one_scheduler_per_store(config: Config) -> None:
    db = str(config.store_path)
    owner = hold_lease(db, standby=False)
    with Store(db) as store:  # a second process (another owner name) is refused
        holder = store.acquire_lease(
            LEASE, "otherhost:1", datetime.now(UTC), timedelta(seconds=120)
        )
    assert holder == owner
    waits: list[float] = []

    def release_then_sleep(seconds: float) -> None:
        waits.append(seconds)
        with Store(db) as store:
            store.release_lease(LEASE, "elsewhere:1")

    with Store(db) as store:
        store.release_lease(LEASE, owner)
        store.acquire_lease(LEASE, "elsewhere:1", datetime.now(UTC), timedelta(seconds=120))
    with pytest.raises(SchedulerError, match=r"elsewhere:1.*--standby"):
        hold_lease(db, standby=False)
    assert hold_lease(db, standby=True, sleep=release_then_sleep) == owner
    assert waits == [30]


def test_a_killed_schedulers_lease_is_free_again(config: Config) -> None:
    db = str(config.store_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    import socket

    with Store(db) as store:
        store.acquire_lease(
            LEASE, f"{socket.gethostname()}:{dead}", datetime.now(UTC), timedelta(seconds=120)
        )
    assert hold_lease(db, standby=False)  # the holder's process is gone


def test_sigterm_stops_the_scheduler_cleanly(project: Path) -> None:
    digest = str(Path(sys.executable).parent / "digest")
    proc = subprocess.Popen(
        [digest, "schedule"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        db = project / "var" / "digest.sqlite3"

        def lease_held() -> bool:
            if not db.exists():
                return False
            with Store(db) as store:
                return (
                    store.acquire_lease(LEASE, "probe:0", datetime.now(UTC), timedelta(seconds=1))
                    is not None
                )

        assert _wait(lease_held)
        second = subprocess.run(
            [digest, "schedule"], cwd=project, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2 and "another scheduler is running" in second.stderr
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "scheduler stopped" in err and "Traceback" not in err
    with Store(db) as store:  # the lease was released
        assert (
            store.acquire_lease(LEASE, "probe:0", datetime.now(UTC), timedelta(seconds=1)) is None
        )
