"""`digest schedule`: APScheduler 3.x wiring only; the work is in `pipeline`.

Jobs live in a SQLAlchemy job store on the same SQLite file as the papers, with stable
ids (`replace_existing=True`), `coalesce=True` (a missed run runs once), a generous
`misfire_grace_time` and `max_instances=1`:

    fetch            on `[schedule] cron`: ingest the sources, then publish the archive
    send:<id>        each confirmed subscriber's local send time: send what is due
    retry-sweep      every minute: deliver pending digests and retries whose backoff
                     (1 min, 2, 4, ... 6 h; `dispatch.py`) has ended; claims nothing
    sync-subscribers every 5 minutes: add/remove the per-subscriber send jobs

A job store cannot be shared by two processes, so a lease in the store (`scheduler`,
renewed every 30 s by a heartbeat kept in memory) makes a second scheduler on the same
store refuse to start, or stand by until the first one stops. Sends are exactly-once in
any case (the deliveries table), so even a second scheduler could not double-send.
"""

from __future__ import annotations

import logging
import signal
import threading
import time as time_module
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest import pipeline
from digest.config import Config, load_config
from digest.deliver import make_backend
from digest.errors import DigestError, SchedulerError
from digest.store import Store
from digest.store.lease import this_owner

log = logging.getLogger("digest.schedule")
LEASE = "scheduler"
LEASE_TTL = timedelta(seconds=120)
HEARTBEAT_SECONDS = 30


# -- job functions: importable by reference, arguments are plain strings ---------------


def _open(config_path: str, db_path: str) -> tuple[Config, Store]:
    return load_config(config_path, required=True), Store(db_path)


def fetch_job(config_path: str, db_path: str) -> None:
    """Ingest every source, then publish the archive (`pipeline.fetch`)."""
    config, store = _open(config_path, db_path)
    with store:
        report = pipeline.fetch(config, store, datetime.now(UTC))
        for error in report.ingest.errors:
            log.error("ingest: %s", error)
        log.info("fetch: %s", report.summary())


#: The per-subscriber send jobs of one scheduler run in a thread pool, many at the same
#: minute; they take turns (each sends whatever is due, so the later ones find little).
_SEND_LOCK = threading.Lock()


def send_job(config_path: str, db_path: str) -> None:
    """Send every digest that is due (idempotent: a second call sends nothing new)."""
    with _SEND_LOCK:
        _send(config_path, db_path)


def _send(config_path: str, db_path: str) -> None:
    config, store = _open(config_path, db_path)
    backend = make_backend(config.delivery)
    try:
        with store:
            report = pipeline.send_due(config, store, backend, datetime.now(UTC))
            log.log(
                logging.ERROR if report.paused_reason else logging.INFO,
                "send: %s",
                report.summary(),
            )
    finally:
        backend.close()


#: How often the retry sweep looks for deliveries whose time has come: the first
#: backoff step (`dispatch.BACKOFF_BASE`), so a retry waits what the docs say, not a day.
RETRY_SWEEP_SECONDS = 60


def retry_job(config_path: str, db_path: str) -> None:
    """Deliver what is pending and every retry whose time has come (`pipeline.retry_due`);
    opens no backend when there is nothing to send."""
    with _SEND_LOCK:
        config, store = _open(config_path, db_path)
        with store:
            now = datetime.now(UTC)
            if not store.due_delivery_ids(now):
                return
            backend = make_backend(config.delivery)
            try:
                report = pipeline.retry_due(config, store, backend, now)
            except DigestError as exc:  # e.g. a `digest send` holds the lease: next minute
                log.warning("retry sweep: %s", exc)
                return
            finally:
                backend.close()
            level = logging.ERROR if report.paused_reason else logging.INFO
            log.log(level, "retry sweep: %s", report.summary())


def sync_job(config_path: str, db_path: str) -> None:
    """Bring the per-subscriber send jobs in line with the subscribers table."""
    scheduler = _RUNNING.get("scheduler")
    if scheduler is not None:
        sync_subscribers(scheduler, config_path, db_path)


_RUNNING: dict[str, BaseScheduler] = {}


def sync_subscribers(scheduler: BaseScheduler, config_path: str, db_path: str) -> int:
    """One `send:<id>` cron job per confirmed subscriber at their local time."""
    with Store(db_path) as store:
        subs = store.subscribers(status="confirmed")
    wanted = set()
    for sub in subs:
        job_id = f"send:{sub.id}"
        wanted.add(job_id)
        try:
            hour, minute = (int(x) for x in sub.send_at.split(":"))
            trigger = CronTrigger(
                hour=hour,
                minute=minute,
                timezone=sub.timezone,
                day_of_week="*" if sub.frequency == "daily" else "mon",
            )
        except (ValueError, LookupError) as exc:  # one bad row must not stop the others
            log.error("subscriber %s skipped: bad timezone or send_at (%s)", sub.id, exc)
            continue
        scheduler.add_job(
            send_job,
            trigger,
            id=job_id,
            args=[config_path, db_path],
            replace_existing=True,
            name=f"send to subscriber {sub.id}",
        )
    for job in scheduler.get_jobs(jobstore="default"):
        if job.id.startswith("send:") and job.id not in wanted:
            job.remove()
    return len(wanted)


def build_scheduler(
    config: Config,
    config_path: str,
    db_path: str,
    *,
    scheduler_cls: type[BaseScheduler] = BlockingScheduler,
) -> BaseScheduler:
    """A scheduler with the fetch, retry-sweep, sync and per-subscriber send jobs (not
    started)."""
    scheduler = scheduler_cls(
        jobstores={
            "default": SQLAlchemyJobStore(url=f"sqlite:///{db_path}", tablename="apscheduler_jobs"),
            "local": MemoryJobStore(),
        },
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": config.schedule.misfire_grace_seconds,
        },
        timezone=config.schedule.timezone,
    )
    scheduler.add_job(
        fetch_job,
        CronTrigger.from_crontab(config.schedule.cron, timezone=config.schedule.timezone),
        id="fetch",
        args=[config_path, db_path],
        replace_existing=True,
        name="fetch sources and publish",
    )
    scheduler.add_job(
        retry_job,
        IntervalTrigger(seconds=RETRY_SWEEP_SECONDS),
        id="retry-sweep",
        args=[config_path, db_path],
        replace_existing=True,
        name="deliver retries whose backoff has ended",
    )
    scheduler.add_job(
        sync_job,
        IntervalTrigger(minutes=5),
        id="sync-subscribers",
        args=[config_path, db_path],
        replace_existing=True,
        next_run_time=datetime.now(UTC),  # and once at start
        name="sync subscriber send jobs",
    )
    return scheduler


def hold_lease(
    store_path: str,
    *,
    standby: bool,
    sleep: Callable[[float], None] = time_module.sleep,
    poll_seconds: float = HEARTBEAT_SECONDS,
) -> str:
    """Take the scheduler lease, or wait for it with `standby`; returns the owner name."""
    owner = this_owner()
    while True:
        with Store(store_path) as store:
            holder = store.acquire_lease(LEASE, owner, datetime.now(UTC), LEASE_TTL)
        if holder is None:
            return owner
        if not standby:
            raise SchedulerError(
                f"another scheduler is running on {store_path} ({holder}); stop it first, "
                "or start this one with --standby to take over when it stops"
            )
        log.info("standing by: %s holds the scheduler lease", holder)
        sleep(poll_seconds)


def heartbeat(store_path: str, owner: str) -> None:
    with Store(store_path) as store:
        holder = store.acquire_lease(LEASE, owner, datetime.now(UTC), LEASE_TTL)
    if holder is not None:  # lost the lease (e.g. the machine slept): stop rather than race
        log.error("lost the scheduler lease to %s; stopping", holder)
        scheduler = _RUNNING.get("scheduler")
        if scheduler is not None:
            scheduler.shutdown(wait=False)


def run_scheduler(
    config: Config,
    config_path: Path,
    db_path: Path,
    *,
    standby: bool = False,
    on_start: Callable[[BaseScheduler], None] | None = None,
) -> None:
    """Hold the lease, start the blocking scheduler, stop cleanly on SIGTERM/SIGINT."""
    owner = hold_lease(str(db_path), standby=standby)
    scheduler = build_scheduler(config, str(config_path), str(db_path))
    _RUNNING["scheduler"] = scheduler
    scheduler.add_job(
        heartbeat,
        IntervalTrigger(seconds=HEARTBEAT_SECONDS),
        id="heartbeat",
        jobstore="local",
        args=[str(db_path), owner],
        replace_existing=True,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping the scheduler", signum)
        scheduler.shutdown(wait=False)

    previous: dict[int, Any] = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if on_start:
            on_start(scheduler)
        scheduler.start()  # blocks until shutdown
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _RUNNING.pop("scheduler", None)
        with Store(db_path) as store:
            store.release_lease(LEASE, owner)
