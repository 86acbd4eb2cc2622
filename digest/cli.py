"""The `digest` command: thin commands that call one function each and format its result.

Every `DigestError` becomes one line on stderr (`error: what, where, how to fix`) and
exit code 2; a traceback is a bug. Progress bars appear only on a terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from digest import pipeline, rank
from digest.config import Config, load_config
from digest.errors import DigestError, QueryError
from digest.model import Paper, Profile
from digest.store import Store


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

    def __init__(self, config_path: str, db: str | None, now: str | None) -> None:
        self.config_path, self.db, self._now = config_path, db, now
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            explicit = self.config_path != "config.toml"
            self._config = load_config(self.config_path, required=explicit)
        return self._config

    def store(self) -> Store:
        return Store(Path(self.db) if self.db else self.config.store_path)

    @property
    def now(self) -> datetime:
        if not self._now:
            return datetime.now(UTC)
        try:
            value = datetime.fromisoformat(self._now)
        except ValueError:
            raise CliError(f"--now {self._now!r}: not an ISO date or time") from None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


pass_ctx = click.make_pass_decorator(_Ctx)


def _json_option(help_text: str = "Print JSON Lines for scripts instead of text.") -> Any:
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def _parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option} {value!r}: not a date; use YYYY-MM-DD") from None


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
@click.version_option(package_name="papers-digest")
@click.pass_context
def cli(ctx: click.Context, config_path: str, db: str | None, now: str | None) -> None:
    """papers-digest: a daily research-paper digest.

    Ingest paper listings into a local store, rank them against keyword profiles and
    render the best matches as Markdown, text or HTML.

    \b
    Typical use:
      digest ingest                       read the sources in config.toml
      digest preview --keywords "LoRA, quantization"
      digest run                          the daily job (ingest, then digests)
    """
    ctx.obj = _Ctx(config_path, db, now)


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


def _report_warnings(report: pipeline.IngestReport, limit: int = 20) -> None:
    for warning in report.warnings[:limit]:
        click.echo(f"warning: {warning}", err=True)
    if len(report.warnings) > limit:
        click.echo(f"warning: ... and {len(report.warnings) - limit} more", err=True)
    for error in report.errors:
        click.echo(f"error: {error}", err=True)


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@_json_option("Print the counts as one JSON object.")
@pass_ctx
def ingest(obj: _Ctx, paths: tuple[str, ...], as_json: bool) -> None:
    """Read listing captures into the store.

    With no PATH, reads the [[sources]] of config.toml; a PATH may be a file, a
    directory or a glob. Prints "N new, M updated, K skipped"; entries that are
    malformed are named (file:line) on stderr and the good ones kept. Exits 2 when a
    file could not be read at all.
    """
    with obj.store() as store, _progress("ingest") as progress:
        report = pipeline.ingest(obj.config, store, paths, progress=progress)
    _report_warnings(report)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "files": report.files,
                    "entries": report.entries,
                    "new": report.counts.new,
                    "updated": report.counts.updated,
                    "unchanged": report.counts.unchanged,
                    "malformed": report.malformed,
                    "skipped": report.skipped,
                    "warnings": len(report.warnings),
                    "errors": list(report.errors),
                }
            )
        )
    else:
        click.echo(report.summary())
    if report.errors:
        sys.exit(2)


def paper_json(paper: Paper) -> dict[str, Any]:
    """The stable JSON shape of a paper for `digest papers --json`."""
    return {
        "id": paper.id,
        "title": paper.title,
        "abstract": paper.abstract,
        "published": paper.published.isoformat() if paper.published else None,
        "upvotes": paper.upvotes,
        "authors_count": paper.authors_count,
        "organization": paper.organization,
        "sources": list(paper.sources),
        "first_seen": paper.first_seen.isoformat() if paper.first_seen else None,
    }


@cli.command()
@click.option(
    "--since", metavar="DATE", help="Only papers first seen on or after DATE (YYYY-MM-DD)."
)
@_json_option()
@pass_ctx
def papers(obj: _Ctx, since: str | None, as_json: bool) -> None:
    """List the papers in the store, newest first."""
    day = _parse_date(since, "--since")
    with obj.store() as store:
        found = store.papers(since=day)
    for paper in found:
        if as_json:
            click.echo(json.dumps(paper_json(paper), ensure_ascii=False))
        else:
            when = paper.published.isoformat() if paper.published else "    -     "
            click.echo(f"{when}  ▲{paper.upvotes:<3} {paper.title}")
    if not as_json:
        click.echo(f"{len(found)} paper{'' if len(found) == 1 else 's'}", err=True)


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
    if bool(keywords) == bool(profile_name):
        raise CliError('give either --keywords "a, b" or --profile NAME')
    excluded = tuple(k for text in exclude for k in rank.parse_keywords(text))
    if profile_name:
        for prof in obj.config.profiles:
            if prof.name == profile_name:
                profile = pipeline.profile_from_config(obj.config, prof)
                break
        else:
            names = ", ".join(p.name for p in obj.config.profiles) or "none"
            raise CliError(f"no profile {profile_name!r} in {obj.config.path} (have: {names})")
        profile = replace(profile, exclude=profile.exclude + excluded)
    else:
        typed = tuple(k for text in keywords for k in rank.parse_keywords(text))
        try:
            profile = rank.make_profile(
                "keywords", typed, excluded, defaults=pipeline.rank_settings(obj.config)
            )
        except QueryError as exc:
            shown = ", ".join(keywords)
            raise CliError(f"--keywords {shown!r}: {exc}") from None
    if limit is not None:
        if limit < 1:
            raise CliError(f"--limit {limit}: must be at least 1")
        profile = replace(profile, max_items=limit)
    return profile


@cli.command(name="rank")
@_profile_options
@click.option(
    "--limit",
    "-n",
    type=int,
    metavar="N",
    help="At most N papers (default: the profile's max_items).",
)
@click.option("--since", metavar="DATE", help="Only papers first seen on or after DATE.")
@_json_option("Print JSON Lines: id, title, score, matched (best first).")
@pass_ctx
def rank_command(
    obj: _Ctx,
    keywords: tuple[str, ...],
    profile_name: str | None,
    exclude: tuple[str, ...],
    limit: int | None,
    since: str | None,
    as_json: bool,
) -> None:
    """Rank the stored papers for keywords or a profile and list what a digest would hold.

    Without --limit the list is exactly the digest: papers whose score passes the
    profile's min_score, at most max_items of them. Scores lie in 0..1 and mean the
    same for every profile.

    \b
    Examples:
      digest rank --keywords 'LoRA^2, "parameter-efficient fine-tuning", adapters'
      digest rank --profile speech --exclude survey --json
    """
    profile = _profile(obj, keywords, profile_name, exclude, limit)
    with obj.store() as store:
        items = pipeline.rank_stored(
            obj.config, store, profile, obj.now, _parse_date(since, "--since")
        )
    for item in items:
        if as_json:
            row = {
                "id": item.paper.id,
                "title": item.paper.title,
                "score": round(item.score, 6),
                "matched": item.matched,
            }
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            click.echo(f"{item.score:.3f}  {item.paper.title}")
            click.echo(f"       {item.why}")
    if not as_json:
        click.echo(
            f"{len(items)} paper{'' if len(items) == 1 else 's'} for {profile.name}", err=True
        )


@cli.command()
@_profile_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "html", "text"]),
    default="markdown",
    show_default=True,
    help="Output format.",
)
@click.option("--limit", "-n", type=int, metavar="N", help="At most N papers.")
@click.option("--since", metavar="DATE", help="Only papers first seen on or after DATE.")
@click.option(
    "--open",
    "open_browser",
    is_flag=True,
    help="Write the digest to a file under the preview directory and open it in the browser.",
)
@pass_ctx
def preview(
    obj: _Ctx,
    keywords: tuple[str, ...],
    profile_name: str | None,
    exclude: tuple[str, ...],
    fmt: str,
    limit: int | None,
    since: str | None,
    open_browser: bool,
) -> None:
    """Render a digest of the best-matching stored papers and print it.

    \b
    Examples:
      digest preview --keywords 'LoRA, "parameter-efficient fine-tuning"'
      digest preview --profile speech --format html > speech.html
    """
    profile = _profile(obj, keywords, profile_name, exclude, limit)
    with obj.store() as store:
        _, text = pipeline.preview(
            obj.config, store, profile, obj.now, fmt, _parse_date(since, "--since")
        )
    if not open_browser:
        click.echo(text, nl=False)
        return
    ext = {"html": "html", "markdown": "md", "text": "txt"}[fmt]
    target = obj.config.preview_dir / f"preview-{obj.now.strftime('%Y%m%d-%H%M%S')}.{ext}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {target}")
    click.launch(str(target))


@cli.command()
@click.option(
    "--port",
    "-p",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; the default keeps the server on this machine.",
)
@click.option(
    "--site", "site_dir", metavar="DIR", help="Archive to serve (default: [publish] dir)."
)
@pass_ctx
def serve(obj: _Ctx, port: int, host: str, site_dir: str | None) -> None:
    """Serve the published archive and live previews on http://127.0.0.1:PORT/.

    \b
    GET /                            the archive (run `digest publish` first)
    GET /preview?keywords=LoRA,TTS  a live digest preview (format=html|markdown|text)
    Stop with Ctrl-C.
    """
    from digest.serve import make_server

    store_path = Path(obj.db) if obj.db else obj.config.store_path
    now = obj._now
    clock = (lambda: obj.now) if now else (lambda: datetime.now(UTC))
    try:
        server = make_server(
            obj.config,
            store_path,
            clock,
            host=host,
            port=port,
            site_dir=Path(site_dir) if site_dir else None,
            verbose=True,
        )
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port} ({exc.strerror}); try --port 0") from None
    bound_host, bound_port = server.server_address[:2]
    click.echo(
        f"serving http://{bound_host}:{bound_port}/ (archive) and /preview?keywords=... "
        "; Ctrl-C stops",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()


@cli.command()
@_json_option("Print a JSON summary instead of text.")
@pass_ctx
def run(obj: _Ctx, as_json: bool) -> None:
    """The daily job: ingest the sources, then write a digest for the profiles.

    The digest goes to the preview directory (default var/preview/) as Markdown and
    HTML; a summary line ends the run.
    """
    with obj.store() as store, _progress("ingest") as progress:
        report = pipeline.run(obj.config, store, obj.now, progress=progress)
        total = store.count_papers()
    _report_warnings(report.ingest)
    sections = {s.profile.name: len(s.items) for s in report.digest.sections}
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ingest": {
                        "new": report.ingest.counts.new,
                        "updated": report.ingest.counts.updated,
                        "skipped": report.ingest.skipped,
                        "errors": list(report.ingest.errors),
                    },
                    "papers": total,
                    "sections": sections,
                    "written": [str(p) for p in report.written],
                }
            )
        )
    else:
        for path in report.written:
            click.echo(f"wrote {path}")
        picked = ", ".join(f"{n} {name}" for name, n in sections.items()) or "no profiles"
        click.echo(f"ingest: {report.ingest.summary()}; {total} papers in store; digest: {picked}")
    if report.ingest.errors:
        sys.exit(2)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="digest")
