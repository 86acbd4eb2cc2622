"""Procrastinate tasks, for a PostgreSQL store: `digest worker` runs them, `digest
schedule` queues the periodic ones. The work itself is `digest/work.py`.

    digest.sweep          (each tick; one waiting at a time) due readers (an index of
                          their next send times) -> rank_shard jobs, retries due ->
                          send_batch jobs
    digest.rank_shard     plan + claim a range of due readers; send_batch jobs in the
                          same transaction as the claims
    digest.send_batch     lease, send, record (idempotent)
    digest.retry_stalled  (each tick) jobs of workers whose heartbeat stopped run again
    digest.fetch          (on [schedule] cron) ingest every source, then queue publish
    digest.publish        the static archive

Procrastinate's schema lives in the store's database, made by the first worker (or
scheduler) to start (`PgWorkQueue.install_work_queue`). Jobs are deferred by the store's
own SQL, so a shard's claims and its send jobs commit together; procrastinate's
`Task.defer` is not used. Imported only by `digest worker` and `digest schedule` on a
PostgreSQL store: procrastinate is the `[postgres]` extra.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import procrastinate
from procrastinate.schema import SchemaManager

from digest import pipeline, work
from digest.config import Config
from digest.deliver import make_backend
from digest.errors import DigestError
from digest.store import open_store

log = logging.getLogger("digest.worker")
RETRY_STALLED = "digest.retry_stalled"


@dataclass(frozen=True)
class _Context:
    config: Config
    url: str
    clock: Callable[[], datetime]


_CONTEXT: dict[str, _Context] = {}


def _ctx() -> _Context:
    return _CONTEXT["worker"]


def install(url: str) -> bool:
    """Make the job queue's tables in the store's database unless there (True: made)."""
    with open_store(url) as store:
        return bool(store.install_work_queue(SchemaManager.get_schema()))  # type: ignore[attr-defined]


def make_app(config: Config, url: str, clock: Callable[[], datetime] | None = None) -> Any:
    """The Procrastinate app on the store's database with digest's tasks registered."""
    _CONTEXT["worker"] = _Context(config, url, clock or (lambda: datetime.now(UTC)))
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=url, min_size=1, max_size=4)
    )
    for name, func in (
        (work.SWEEP, sweep_task),
        (work.RANK_SHARD, rank_shard_task),
        (work.SEND_BATCH, send_batch_task),
        (work.FETCH, fetch_task),
        (work.PUBLISH, publish_task),
    ):
        app.task(name=name, queue=work.QUEUE)(func)
    app.task(name=RETRY_STALLED, queue=work.QUEUE, pass_context=True)(retry_stalled_task)
    return app


def sweep_task() -> None:
    ctx = _ctx()
    with open_store(ctx.url) as store:
        log.info("sweep: %s", work.sweep(ctx.config, store, ctx.clock()).summary())


def rank_shard_task(after: list[Any] | None, upto: list[Any], now: str) -> None:
    ctx = _ctx()
    if not isinstance(upto, list):  # ids: a job an older version queued
        log.warning("rank shard %r: of an older version; the next sweep plans it", upto)
        return
    first = (str(after[0]), int(after[1])) if after else None
    last = (str(upto[0]), int(upto[1]))
    with open_store(ctx.url) as store:
        report = work.rank_shard(ctx.config, store, datetime.fromisoformat(now), first, last)
        log.info("rank shard (%s, %s]: %s", first, last, report.summary())


def send_batch_task(ids: list[str]) -> None:
    ctx = _ctx()
    with open_store(ctx.url) as store:
        cfg = ctx.config.workers
        backend = work.SharedRateLimit(
            make_backend(ctx.config.delivery),
            store,  # type: ignore[arg-type]
            work.account_of(ctx.config),
            cfg.rate,
            cfg.burst,
            pause=cfg.throttle_pause_seconds,
        )
        try:
            report = work.send_batch(ctx.config, store, backend, ctx.clock(), ids)
        finally:
            backend.close()
        level = logging.ERROR if report.paused_reason else logging.INFO
        log.log(level, "send batch: %s", report.summary())


def fetch_task() -> None:
    ctx = _ctx()
    from digest.ingest import ingest

    with open_store(ctx.url) as store:
        report = ingest(ctx.config, store, now=ctx.clock())
        for error in report.errors:
            log.error("ingest: %s", error)
        log.info("fetch: %s", report.summary())
        store.defer(work.PUBLISH, work.QUEUE, [{}], queueing_lock=work.PUBLISH)  # type: ignore[attr-defined]


def publish_task() -> None:
    ctx = _ctx()
    with open_store(ctx.url) as store:
        log.info("publish: %s", pipeline.publish(ctx.config, store, ctx.clock()).summary())


async def retry_stalled_task(context: Any) -> None:
    """Run again the jobs of workers that stopped sending heartbeats (killed, lost)."""
    seconds = _ctx().config.workers.stalled_after_seconds
    manager = context.app.job_manager
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=seconds):
        log.warning("retrying stalled job %s (%s)", job.id, job.task_name)
        await manager.retry_job(job)


def run_worker(config: Config, url: str, *, concurrency: int = 1, name: str | None = None) -> None:
    """Run a worker until SIGTERM or SIGINT (a running job is finished first)."""
    install(url)
    app = make_app(config, url)
    stalled = config.workers.stalled_after_seconds
    app.run_worker(
        queues=[work.QUEUE],
        concurrency=concurrency,
        name=name,
        update_heartbeat_interval=max(0.2, stalled / 4),
        stalled_worker_timeout=stalled,
        install_signal_handlers=True,
    )


def run_scheduler(
    config: Config,
    url: str,
    *,
    tick: float = 60.0,
    sweep_every: float = 60.0,
    clock: Callable[[], datetime] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Queue the periodic jobs until SIGTERM/SIGINT (or `stop`): a stalled-job retry
    every `tick` seconds, a sweep every `sweep_every` (each at most one waiting), and a
    fetch at each `[schedule] cron` time. Returns the number of ticks."""
    from apscheduler.triggers.cron import CronTrigger

    install(url)
    clock = clock or (lambda: datetime.now(UTC))
    stop = stop or _stop_on_signals()
    trigger = CronTrigger.from_crontab(config.schedule.cron, timezone=config.schedule.timezone)
    next_fetch = trigger.get_next_fire_time(None, clock())
    ticks, last_sweep = 0, float("-inf")
    with open_store(url) as store:
        defer: Callable[..., list[int]] = store.defer  # type: ignore[attr-defined]
        while not stop.is_set():
            try:
                if time.monotonic() - last_sweep >= sweep_every:
                    defer(work.SWEEP, work.QUEUE, [{}], queueing_lock=work.SWEEP)
                    last_sweep = time.monotonic()
                defer(RETRY_STALLED, work.QUEUE, [{}], queueing_lock=RETRY_STALLED)
                if next_fetch is not None and clock() >= next_fetch:
                    defer(work.FETCH, work.QUEUE, [{}], queueing_lock=work.FETCH)
                    next_fetch = trigger.get_next_fire_time(next_fetch, clock())
            except DigestError as exc:  # the server restarting: the next tick tries again
                log.error("schedule: %s", exc)
            ticks += 1
            stop.wait(tick)
    return ticks


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
