"""The scheduler: jobs fire, a missed run is coalesced into one, one scheduler per store,
and SIGTERM stops it cleanly. Real SQLite job store, real APScheduler.

Nothing here sleeps or polls: a test waits on APScheduler's own job events, or on a line
the scheduler process writes once it runs.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
)
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import Config
from digest.errors import SchedulerError
from digest.schedule import LEASE, build_scheduler, hold_lease
from digest.store import Store

from .http_fixture_server import HANG_GUARD


def count_job(path: str) -> None:
    """A job for the tests: appends one line per run."""
    with open(path, "a") as f:
        f.write("run\n")


class JobEvents:
    """APScheduler's events for one job, recorded as the scheduler dispatches them."""

    def __init__(self, scheduler: BaseScheduler, job_id: str) -> None:
        self.job_id = job_id
        self.events: list[JobEvent] = []
        self._finished = threading.Event()
        mask = EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
        scheduler.add_listener(self._record, mask)

    def _record(self, event: JobEvent) -> None:
        if event.job_id == self.job_id:
            self.events.append(event)
            if event.code != EVENT_JOB_SUBMITTED:
                self._finished.set()

    def first_finished(self) -> JobEvent:
        """The first run's outcome (executed, error or missed), once there is one.

        APScheduler dispatches these after every run time it was given for that
        submission, so the runs a coalescing bug would add have happened by then.
        """
        assert self._finished.wait(HANG_GUARD), f"job {self.job_id!r} never finished"
        return next(e for e in self.events if e.code != EVENT_JOB_SUBMITTED)

    def codes(self) -> list[int]:
        return [e.code for e in self.events]


def test_fetch_job_fires_and_ingests(config: Config) -> None:
    db = str(config.store_path)
    Store(db).close()
    scheduler = build_scheduler(config, str(config.path), db, scheduler_cls=BackgroundScheduler)
    fetch = JobEvents(scheduler, "fetch")
    scheduler.start()
    try:
        scheduler.get_job("fetch").modify(next_run_time=datetime.now(UTC))
        done = fetch.first_finished()
    finally:
        scheduler.shutdown()
    assert done.code == EVENT_JOB_EXECUTED, getattr(done, "traceback", done)
    assert (config.publish.dir / "index.html").exists()  # ingested, then published
    with Store(db) as store:
        assert store.count_papers() == 331
    # The jobs persist in the store's SQLite file: a bare scheduler on it finds them.
    jobstore = SQLAlchemyJobStore(url=f"sqlite:///{db}", tablename="apscheduler_jobs")
    again = BackgroundScheduler(jobstores={"default": jobstore})
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
    count = JobEvents(scheduler, "count")
    scheduler.start()
    try:
        done = count.first_finished()
        job = scheduler.get_job("count")
        assert job.coalesce and job.max_instances == 1
        # The next run is a minute away, so nothing else is due while we look.
        assert job.next_run_time > datetime.now(UTC)
    finally:
        scheduler.shutdown()
    assert done.code == EVENT_JOB_EXECUTED
    [submitted] = [e for e in count.events if e.code == EVENT_JOB_SUBMITTED]
    assert len(submitted.scheduled_run_times) == 1  # five missed runs handed over as one
    assert sorted(count.codes()) == sorted([EVENT_JOB_SUBMITTED, EVENT_JOB_EXECUTED])
    assert counter.read_text() == "run\n"


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


#: Runs `digest schedule` as the console script does, and writes READY on stderr once the
#: scheduler is running (lease held, signal handlers installed): the moment to test it.
RUN_SCHEDULER = """
import functools, sys
from apscheduler.events import EVENT_SCHEDULER_STARTED
import digest.schedule
from digest.cli import main

def announce(scheduler):
    scheduler.add_listener(
        lambda event: print("READY", file=sys.stderr, flush=True), EVENT_SCHEDULER_STARTED
    )

digest.schedule.run_scheduler = functools.partial(digest.schedule.run_scheduler, on_start=announce)
sys.argv = ["digest", "schedule"]
main()
"""


def test_sigterm_stops_the_scheduler_cleanly(project: Path) -> None:
    digest = str(Path(sys.executable).parent / "digest")
    lines: list[str] = []
    running = threading.Event()

    def read_stderr(stream: IO[str]) -> None:
        for line in stream:
            lines.append(line)
            if line.strip() == "READY":
                running.set()
        running.set()  # the process ended without saying so: the assertion below tells

    with subprocess.Popen(
        [sys.executable, "-c", RUN_SCHEDULER],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        reader = threading.Thread(target=read_stderr, args=(proc.stderr,), daemon=True)
        reader.start()
        try:
            assert running.wait(HANG_GUARD) and "READY\n" in lines, "".join(lines)
            second = subprocess.run(
                [digest, "schedule"],
                cwd=project,
                capture_output=True,
                text=True,
                timeout=HANG_GUARD,
            )
            assert second.returncode == 2 and "another scheduler is running" in second.stderr
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=HANG_GUARD)
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.join(HANG_GUARD)
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert "scheduler stopped" in err and "Traceback" not in err
    with Store(project / "var" / "digest.sqlite3") as store:  # the lease was released
        assert (
            store.acquire_lease(LEASE, "probe:0", datetime.now(UTC), timedelta(seconds=1)) is None
        )


def test_the_retry_sweep_is_a_job_and_delivers_due_retries(
    seeded_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retries go out when their backoff ends (a job every minute), not at the next send."""
    from digest.deliver import SendResult
    from digest.deliver.memory import MemoryBackend
    from digest.schedule import RETRY_SWEEP_SECONDS, retry_job
    from digest.send import send
    from digest.subscriptions import subscribe

    from .test_send import DAY1, PEFT

    monkeypatch.setenv("DIGEST_SECRET", "test-secret-0123456789abcdef-0123")
    config, db = seeded_config, str(seeded_config.store_path)
    scheduler = build_scheduler(config, str(config.path), db, scheduler_cls=BackgroundScheduler)
    job = scheduler.get_job("retry-sweep")
    assert isinstance(job.trigger, IntervalTrigger)
    assert job.trigger.interval == timedelta(seconds=RETRY_SWEEP_SECONDS)
    with Store(db) as store:
        subscribe(config, store, "ada@example.org", PEFT, DAY1 - timedelta(days=1), confirmed=True)
        later = MemoryBackend(lambda e: SendResult(e.delivery_id, "retry", "451 later"))
        assert send(config, store, later, DAY1).retry == 1
    retry_job(str(config.path), db)  # the backoff (1 minute after DAY1) ended long ago
    with Store(db) as store:
        assert [(d.state, d.attempts) for d in store.deliveries()] == [("sent", 2)]
    assert len(list(config.delivery.outbox_dir.glob("*.eml"))) == 1
    retry_job(str(config.path), db)  # nothing due: no backend opened, nothing sent
