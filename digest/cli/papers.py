"""Commands over papers: ingest, papers, rank, preview (the daily `run`: `cli.daily`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from digest.cli.base import (
    CliError,
    _Ctx,
    _json_option,
    _parse_date,
    _profile,
    _profile_options,
    _progress,
    _report_warnings,
    cli,
    pass_ctx,
)
from digest.cli.whynot import explain_options
from digest.model import Paper
from digest.sources import known_kinds

if TYPE_CHECKING:
    from digest.pipeline import Window
    from digest.rank.learn import Rated
    from digest.store import Store


def _window_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--since DATE, --all and --frequency: which stored papers rank/preview consider."""
    f = click.option(
        "--frequency",
        type=click.Choice(["daily", "weekly"]),
        help="The default window: papers that arrived in the last day (daily, the default)"
        " or week (weekly) before now, as a reader's first digest would hold.",
    )(f)
    f = click.option("--all", "all_papers", is_flag=True, help="Rank every stored paper.")(f)
    f = click.option(
        "--since",
        metavar="DATE",
        help="Rank the papers that arrived in the store on or after DATE (YYYY-MM-DD, UTC)"
        " instead of the last day's.",
    )(f)
    return f


def _window(obj: _Ctx, since: str | None, all_papers: bool, frequency: str | None) -> Window:
    """The window of --since/--all/--frequency; by default the last day's arrivals."""
    from digest import pipeline

    given = [
        name
        for name, v in (("--since", since), ("--all", all_papers), ("--frequency", frequency))
        if v
    ]
    if len(given) > 1:
        raise CliError(f"give one of --since DATE, --all, --frequency; not {' and '.join(given)}")
    day = _parse_date(since, "--since")
    if day is not None:
        return pipeline.window_since(day)
    if all_papers:
        return pipeline.Window()
    return pipeline.recent_window(obj.now, frequency or "daily")


def _empty_window(store: Store, window: Window) -> str | None:
    """One line when `window` holds no papers though the store does: when the newest
    arrived and how to widen the window. None when the window is not empty."""
    newest = store.newest_arrival()
    if newest is None or window.after is None or newest > window.after:
        return None
    return (
        f"no papers arrived {window.label}; the newest arrived"
        f" {newest:%Y-%m-%d %H:%M} UTC; use --since {newest.date().isoformat()} or --all"
    )


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option(
    "--kind",
    type=click.Choice(known_kinds()),
    help="Read every PATH as this kind (default: auto, told by each file's content).",
)
@_json_option("Print the counts as one JSON object.")
@pass_ctx
def ingest(obj: _Ctx, paths: tuple[str, ...], kind: str | None, as_json: bool) -> None:
    """Read listing pages, feeds and daily papers answers into the store.

    With no PATH, reads the [[sources]] of config.toml; a PATH may be a file, a
    directory or a glob, each file read by its content: JSON as a Hugging Face daily
    papers answer, RSS/Atom/RDF as a feed, HTML as a papers listing page, text as a
    listing capture (--kind forces one). Prints "N new, M updated, K skipped"; entries
    that are malformed are named (file:line) on stderr and the good ones kept. Exits 2
    when a file could not be read at all (nothing of it is stored).
    """
    from digest import pipeline

    if kind and not paths:
        raise CliError("--kind applies to the PATHs named; without them, each source's kind")
    with obj.store() as store, _progress("ingest") as progress:
        report = pipeline.ingest(
            obj.config, store, paths, now=obj.now, kind=kind, progress=progress
        )
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
    """The stable JSON shape of a paper for `digest papers --json` (`codec`)."""
    from digest.codec import paper_public_json

    return paper_public_json(paper)


@cli.command()
@click.option(
    "--since",
    metavar="DATE",
    help="Only papers first seen on or after DATE (YYYY-MM-DD): the source's date, where"
    " rank/preview --since go by arrival in the store.",
)
@_json_option()
@pass_ctx
def papers(obj: _Ctx, since: str | None, as_json: bool) -> None:
    """List the papers in the store, newest first."""
    from digest.text import clean

    day = _parse_date(since, "--since")
    with obj.existing_store() as store:
        found = store.papers(since=day)
    for paper in found:
        if as_json:
            click.echo(json.dumps(paper_json(paper), ensure_ascii=False))
        else:
            when = paper.published.isoformat() if paper.published else "    -     "
            click.echo(f"{when}  ▲{paper.upvotes:<3} {clean(paper.title)}")
    if not as_json:
        click.echo(f"{len(found)} paper{'' if len(found) == 1 else 's'}", err=True)


@cli.command(name="rank")
@_profile_options
@click.option(
    "--limit",
    "-n",
    type=int,
    metavar="N",
    help="At most N papers (default: the profile's max_items).",
)
@_window_options
@explain_options
@_json_option("Print JSON Lines: id, title, score, matched (best first).")
@pass_ctx
def rank_command(
    obj: _Ctx,
    keywords: tuple[str, ...],
    profile_name: str | None,
    exclude: tuple[str, ...],
    limit: int | None,
    since: str | None,
    all_papers: bool,
    frequency: str | None,
    explain_id: str | None,
    show_below: int | None,
    subscriber: str | None,
    as_json: bool,
) -> None:
    """Rank the papers new to the store for keywords or a profile: what a digest would hold.

    By default it ranks what a new reader's first digest would: the papers that
    arrived in the store (by ingest, whatever date the source printed) in the last day
    before now, or week with --frequency weekly. --since DATE widens that to the papers
    that arrived on or after DATE; --all ranks every stored paper.

    Without --limit the list is exactly the digest: papers whose score passes the
    profile's min_score, at most max_items of them. Scores lie in 0..1 and mean the
    same for every profile.

    \b
    Examples:
      digest rank --keywords 'LoRA^2, "parameter-efficient fine-tuning", adapters'
      digest rank --profile speech --exclude survey --json
      digest rank -k 'LoRA' --since 2025-10-01
      digest rank -k 'LoRA' --explain 2510.12345      (why it is, or is not, in)
      digest rank --profile speech --show-below 5     (just under the cut)
      digest rank --subscriber ada@example.org --explain 2510.12345
    """
    from digest import pipeline
    from digest.cli import whynot
    from digest.text import clean

    window = _window(obj, since, all_papers, frequency)
    sent: set[str] = set()
    rated: list[Rated] = []
    if subscriber and (keywords or exclude or limit):
        raise CliError(
            "--subscriber ranks a reader's profile as stored: give --profile NAME,"
            " not --keywords, --exclude or --limit"
        )
    if not subscriber:
        profile = _profile(obj, keywords, profile_name, exclude, limit)
    with obj.project_store() as store:
        if subscriber:
            profile, sent, rated = whynot.reader_profile(obj, store, subscriber, profile_name)
        if explain_id is not None or show_below is not None:
            whynot.run(obj, store, profile, window, sent, rated, explain_id, show_below, as_json)
            return
        items = pipeline.rank_stored(obj.config, store, profile, obj.now, window, sent, rated)
        empty = _empty_window(store, window) if not items else None
    if empty:
        click.echo(empty, err=True)
        return
    for item in items:
        if as_json:
            row = {
                "id": item.paper.id,
                "title": item.paper.title,
                "score": round(item.score, 6),
                "matched": item.matched,
                "liked": [m.keyword for m in item.matches if m.by_ratings],
            }
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            click.echo(f"{item.score:.3f}  {clean(item.paper.title)}")
            click.echo(f"       {clean(item.why)}")
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
@_window_options
@click.option(
    "--open",
    "open_browser",
    is_flag=True,
    help="Write the digest to a file under the preview directory and open it in the browser.",
)
@click.option(
    "--subscriber",
    metavar="EMAIL",
    help="Preview for this reader: their profile (--profile NAME names one of theirs), without"
    " the papers they were sent before, reordered and widened by their ratings.",
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
    all_papers: bool,
    frequency: str | None,
    open_browser: bool,
    subscriber: str | None,
) -> None:
    """Render the digest a reader would get of the papers new to the store, and print it.

    By default it holds what a new reader's first digest would: the best matches among
    the papers that arrived in the store (by ingest, whatever date the source printed)
    in the last day before now, or week with --frequency weekly. --since DATE widens
    that to the papers that arrived on or after DATE; --all takes every stored paper.

    \b
    Examples:
      digest preview --keywords 'LoRA, "parameter-efficient fine-tuning"'
      digest preview --profile speech --format html > speech.html
      digest preview -k 'TTS, ASR' --all
      digest preview --subscriber ada@example.org --format html
    """
    from digest import pipeline
    from digest.cli import whynot

    if subscriber and (keywords or exclude or limit):
        raise CliError(
            "--subscriber previews a reader's profile as stored: give --profile NAME,"
            " not --keywords, --exclude or --limit"
        )
    profile = None if subscriber else _profile(obj, keywords, profile_name, exclude, limit)
    window = _window(obj, since, all_papers, frequency)
    sent: set[str] = set()
    rated: list[Rated] = []
    with obj.project_store() as store:
        if subscriber:
            profile, sent, rated = whynot.reader_profile(obj, store, subscriber, profile_name)
        assert profile is not None
        digest, text = pipeline.preview(
            obj.config, store, profile, obj.now, fmt, window, sent, rated
        )
        empty = _empty_window(store, window) if not digest.papers_considered else None
    if empty:
        click.echo(empty, err=True)
        return
    if not open_browser:
        click.echo(text, nl=False)
        return
    ext = {"html": "html", "markdown": "md", "text": "txt"}[fmt]
    target = obj.config.preview_dir / f"preview-{obj.now.strftime('%Y%m%d-%H%M%S')}.{ext}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {target}")
    click.launch(str(target))
