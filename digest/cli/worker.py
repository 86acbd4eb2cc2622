"""`digest worker`: run the Procrastinate tasks of a PostgreSQL store (`digest/tasks.py`)."""

from __future__ import annotations

import click

from digest.cli.base import CliError, _Ctx, cli, pass_ctx


def pg_url(obj: _Ctx, command: str) -> str:
    """The store's PostgreSQL URL, or a one-line error saying how to get one."""
    location = obj.store_location()
    if not isinstance(location, str):
        raise CliError(
            f'digest {command} needs a PostgreSQL store ([store] url = "postgresql://..." '
            f"or --db postgresql://...); the store is the SQLite file {location}"
        )
    return location


def _procrastinate_missing() -> CliError:
    return CliError(
        "digest worker needs procrastinate; install it with pip install 'papers-digest[postgres]'"
    )


@cli.command()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Jobs this worker runs at once (each in a thread with its own connection).",
)
@click.option("--name", default=None, help="The worker's name in the logs (default: worker).")
@pass_ctx
def worker(obj: _Ctx, concurrency: int, name: str | None) -> None:
    """Run the tasks of a PostgreSQL store: ranking shards, send batches, fetch, publish.

    Start one on each host (any number); one `digest schedule` queues the periodic jobs.
    Every task is idempotent: a job run twice, or run again after its worker was killed
    (its heartbeat stops; after [workers] stalled_after_seconds another worker takes it),
    sends each digest once. SIGTERM or Ctrl-C lets the running job finish, then stops.
    """
    import logging

    url = pg_url(obj, "worker")
    if obj._now:
        raise CliError("--now does not apply to `digest worker` (it runs on the real clock)")
    obj.check_live_links()
    try:
        from digest.tasks import run_worker
    except ImportError:
        raise _procrastinate_missing() from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    click.echo(f"worker on {_where(url)}; Ctrl-C stops", err=True)
    run_worker(obj.config, url, concurrency=concurrency, name=name)
    click.echo("worker stopped", err=True)


def _where(url: str) -> str:
    from digest.store.pg.connection import redacted

    return redacted(url)


def queue_periodic_jobs(obj: _Ctx, url: str, tick: float, sweep_every: float) -> None:
    """`digest schedule` on a PostgreSQL store: queue the periodic jobs for the workers."""
    import logging

    try:
        from digest.tasks import run_scheduler
    except ImportError:
        raise _procrastinate_missing() from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    click.echo(
        f"scheduler on {_where(url)}: queues a sweep every {sweep_every:g} s and a fetch at "
        f"'{obj.config.schedule.cron}' ({obj.config.schedule.timezone}) for `digest worker`s;"
        " Ctrl-C stops",
        err=True,
    )
    ticks = run_scheduler(obj.config, url, tick=tick, sweep_every=sweep_every)
    click.echo(f"scheduler stopped after {ticks} ticks", err=True)
