"""`digest schedule`: the long-running scheduler."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.base import CliError, _Ctx, cli, pass_ctx


@cli.command()
@click.option(
    "--standby",
    is_flag=True,
    help="If another scheduler holds this store, wait and take over when it stops.",
)
@click.option(
    "--tick",
    type=click.FloatRange(0.1, 3600),
    default=60.0,
    show_default=True,
    help="PostgreSQL store: seconds between looks for stalled jobs (to run again).",
)
@click.option(
    "--sweep-every",
    type=click.FloatRange(0.1, 3600),
    default=60.0,
    show_default=True,
    help="PostgreSQL store: seconds between sweeps for due readers and retries.",
)
@pass_ctx
def schedule(obj: _Ctx, standby: bool, tick: float, sweep_every: float) -> None:
    """Run the scheduler: fetch on [schedule] cron, send at each subscriber's local time.

    Jobs are kept in the store's SQLite file, so a restart resumes them; a run missed
    while the scheduler was down runs once when it comes back (within
    misfire_grace_seconds). Only one scheduler may run per store. SIGTERM or Ctrl-C
    stops it cleanly. `digest run` stays the one-shot daily job.

    On a PostgreSQL store it runs nothing itself: it queues jobs for `digest worker`s
    (a sweep for due readers every --sweep-every seconds, a look for stalled jobs every
    --tick, a fetch on [schedule] cron).
    """
    import logging

    from digest.schedule import run_scheduler

    if obj._now:  # the scheduler's jobs fire on the real clock; a fixed one would never move
        raise CliError("--now does not apply to `digest schedule` (it runs on the real clock)")
    obj.check_live_links()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    db_path = obj.store_location()
    if not isinstance(db_path, Path):
        from digest.cli.worker import queue_periodic_jobs

        queue_periodic_jobs(obj, db_path, tick, sweep_every)
        return
    click.echo(
        f"scheduler on {db_path}: fetch at '{obj.config.schedule.cron}' "
        f"({obj.config.schedule.timezone}); Ctrl-C stops",
        err=True,
    )
    run_scheduler(obj.config, obj.config.path, db_path, standby=standby)
    click.echo("scheduler stopped", err=True)
