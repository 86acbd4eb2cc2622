"""The `digest` group, its shared options and helpers; commands live beside this module.

Every `DigestError` becomes one line on stderr (`error: what, where, how to fix`) and
exit code 2; a traceback is a bug. Progress bars appear only on a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest.errors import DigestError, QueryError

if TYPE_CHECKING:
    # Imported where used: `--help` and commands that need no config or store start fast.
    from digest.config import Config
    from digest.deliver import Backend
    from digest.ingest import IngestReport
    from digest.model import Profile
    from digest.store import Store


#: The largest --limit: more papers than any digest or listing could show.
MAX_LIMIT = 100_000
#: Years a date or time given on the command line may name: windows and schedules
#: reach weeks either side of it, which must stay inside Python's dates (years 1-9999).
YEARS = (1970, 9000)


class CliError(click.ClickException):
    """A one-line error with exit code 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            raise CliError(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


class _Ctx:
    """Options shared by every command, resolved lazily."""

    def __init__(
        self, config_path: str, db: str | None, now: str | None, allow_local_links: bool = False
    ) -> None:
        self.config_path, self.db, self._now = config_path, db, now
        self.allow_local_links = allow_local_links
        self._config: Config | None = None

    def check_live_links(self) -> None:
        """Refuse (exit 2) a real mail backend whose links or sender work only here."""
        from digest.links import check_live_links

        check_live_links(self.config, allow_local=self.allow_local_links)

    def backend(self) -> Backend:
        """The configured mail backend, once `check_live_links` has passed."""
        from digest.deliver import make_backend

        self.check_live_links()
        return make_backend(self.config.delivery)

    @property
    def config(self) -> Config:
        if self._config is None:
            from digest.config import load_config

            explicit = self.config_path != "config.toml"
            self._config = load_config(self.config_path, required=explicit)
        return self._config

    def store_location(self) -> Path | str:
        """--db (a SQLite file or a postgresql:// URL), else the config's store; the
        config is validated first, even with --db: a typo there is an error before
        anything is opened, not a default used later."""
        from digest.store import is_store_url

        config = self.config
        if self.db:
            return self.db if is_store_url(self.db) else _path(self.db, "--db")
        return config.store_location

    def store(self) -> Store:
        """The store (`store_location`), opened."""
        from digest.store import open_store

        return open_store(self.store_location())

    def existing_store(self) -> Store:
        """The store, for a command that only reads: one that is not there is an error,
        not a new empty file (`digest papers` in the wrong folder must not make one)."""
        path = self.store_location()
        if isinstance(path, Path) and not path.exists():
            raise CliError(
                f"{path}: no store here yet; run `digest ingest` first, or pass --config "
                "or --db to name the project's store"
            )
        return self.store()

    def project_store(self) -> Store:
        """The store for a command that only reads: in a project (a config file or --db)
        it is opened as usual; outside one, a missing store is an error (no project, no
        store), not a new empty file in whatever folder the command ran in."""
        if self.db or self.config.path.exists():
            return self.store()
        return self.existing_store()

    @property
    def now(self) -> datetime:
        if not self._now:
            return datetime.now(UTC)
        try:
            value = datetime.fromisoformat(self._now)
        except ValueError:
            raise CliError(f"--now {self._now!r}: not an ISO date or time") from None
        _check_year(value.year, "--now", self._now)
        return value if value.tzinfo else value.replace(tzinfo=UTC)


pass_ctx = click.make_pass_decorator(_Ctx)


def _json_option(help_text: str = "Print JSON Lines for scripts instead of text.") -> Any:
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def _parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option} {value!r}: not a date; use YYYY-MM-DD") from None
    _check_year(day.year, option, value)
    return day


def _path(value: str, option: str) -> Path:
    """A path given on the command line; one with a NUL byte (which no file system
    takes) is refused in one line instead of failing deep inside with a ValueError."""
    if "\x00" in value:
        raise CliError(f"{option} {value!r}: a path cannot hold a NUL byte")
    return Path(value)


def _check_year(year: int, option: str, value: str) -> None:
    if not YEARS[0] <= year <= YEARS[1]:
        raise CliError(f"{option} {value!r}: use a year from {YEARS[0]} to {YEARS[1]}")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    default="config.toml",
    show_default=True,
    metavar="PATH",
    help="The configuration file (sources, profiles, store path).",
)
@click.option("--db", metavar="PATH", help="The SQLite store to use, overriding config.toml.")
@click.option("--now", hidden=True, help="Pretend the current time is this ISO time (tests).")
@click.option(
    "--allow-local-links",
    is_flag=True,
    help="Mail through smtp/sendgrid even when links point at this machine (testing).",
)
@click.version_option(package_name="papers-digest")
@click.pass_context
def cli(
    ctx: click.Context, config_path: str, db: str | None, now: str | None, allow_local_links: bool
) -> None:
    """papers-digest: a daily research-paper digest.

    Ingest paper listings into a local store, rank them against keyword profiles,
    email each subscriber the best matches once a day, and publish an archive.

    \b
    Typical use:
      digest ingest                       read the sources in config.toml
      digest preview --keywords "LoRA, quantization"
      digest subscribe you@example.org -k "LoRA, speech"
      digest run                          the daily job: ingest, send, publish
      digest schedule                     the same, on a schedule
    """

    from digest.memory import keep_freed_memory

    keep_freed_memory()  # before any work or worker process: see digest/memory.py
    ctx.obj = _Ctx(config_path, db, now, allow_local_links)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int, str], None] | None]:
    """A rich progress bar on a terminal; nothing when stderr is piped."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{label} {name}")

        yield update


def _report_warnings(report: IngestReport, limit: int = 20) -> None:
    for warning in report.warnings[:limit]:
        click.echo(f"warning: {warning}", err=True)
    if len(report.warnings) > limit:
        click.echo(f"warning: ... and {len(report.warnings) - limit} more", err=True)
    for error in report.errors:
        click.echo(f"error: {error}", err=True)


def _profile_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--exclude", metavar="TERMS", multiple=True, help='Terms or "phrases" that veto a paper.'
    )(f)
    f = click.option("--profile", "profile_name", metavar="NAME", help="A profile of config.toml.")(
        f
    )
    f = click.option(
        "--keywords",
        "-k",
        metavar="TERMS",
        multiple=True,
        help='Comma-separated terms and "quoted phrases"; may be repeated.',
    )(f)
    return f


def _profile(
    obj: _Ctx,
    keywords: tuple[str, ...],
    profile_name: str | None,
    exclude: tuple[str, ...],
    limit: int | None,
) -> Profile:
    """The profile a command ranks for: --keywords, or a named profile of config.toml."""
    from digest.keywords import parse_keywords
    from digest.rank.query import make_profile

    if bool(keywords) == bool(profile_name):
        raise CliError('give either --keywords "a, b" or --profile NAME')
    excluded = tuple(k for text in exclude for k in parse_keywords(text))
    if profile_name:
        for prof in obj.config.profiles:
            if prof.name == profile_name:
                profile = prof
                break
        else:
            names = ", ".join(p.name for p in obj.config.profiles) or "none"
            raise CliError(f"no profile {profile_name!r} in {obj.config.path} (have: {names})")
        profile = replace(profile, exclude=profile.exclude + excluded)
    else:
        typed = tuple(k for text in keywords for k in parse_keywords(text))
        try:
            profile = make_profile("keywords", typed, excluded)
        except QueryError as exc:
            shown = ", ".join(keywords)
            raise CliError(f"--keywords {shown!r}: {exc}") from None
    if limit is not None:
        if not 1 <= limit <= MAX_LIMIT:
            raise CliError(f"--limit {limit}: must be between 1 and {MAX_LIMIT:,}")
        profile = replace(profile, max_items=limit)
    return profile
