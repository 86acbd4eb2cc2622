"""Commands for the list of subscribers: subscribers (the listing), subscribers import,
subscribers export; and the JSON shape of a subscriber that `subscribe --json` shares."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest.cli.base import CliError, _Ctx, _json_option, _progress, cli, pass_ctx

if TYPE_CHECKING:
    from digest.model import Profile, Subscriber
    from digest.pipeline import ImportReport


def subscriber_json(sub: Subscriber) -> dict[str, Any]:
    return {
        "email": sub.email,
        "status": sub.status,
        "timezone": sub.timezone,
        "send_at": sub.send_at,
        "frequency": sub.frequency,
        "notify_empty": sub.notify_empty,
        "created_at": sub.created_at.isoformat(),
        "confirmed_at": sub.confirmed_at.isoformat() if sub.confirmed_at else None,
        "profiles": [_profile_json(p) for p in sub.profiles],
    }


def _profile_json(profile: Profile) -> dict[str, Any]:
    from digest.rank.query import profile_text

    keywords, exclude = profile_text(profile)
    return {
        "name": profile.name,
        "keywords": keywords,
        "exclude": exclude,
        "max_items": profile.max_items,
        "min_score": profile.min_score,
    }


_STATUSES = click.Choice(["pending", "confirmed", "paused", "unsubscribed"])


@cli.group(invoke_without_command=True)
@click.option("--status", type=_STATUSES, help="Only subscribers with this status.")
@_json_option()
@pass_ctx
def subscribers(obj: _Ctx, status: str | None, as_json: bool) -> None:
    """List subscribers with their status, schedule and profiles; or import and export
    them in bulk (`digest subscribers import FILE`, `digest subscribers export`).

    \b
    Examples:
      digest subscribers --status pending
      digest subscribers import readers.csv --confirmed
      digest subscribers export --format csv > readers.csv
    """
    if click.get_current_context().invoked_subcommand is not None:
        if status or as_json:
            raise CliError("--status and --json of the listing go without a subcommand")
        return
    from digest.rank.query import profile_text

    with obj.project_store() as store:
        found = store.subscribers(status=status)
    for sub in found:
        if as_json:
            click.echo(json.dumps(subscriber_json(sub), ensure_ascii=False))
        else:
            profiles = "; ".join(f"{p.name}: {', '.join(profile_text(p)[0])}" for p in sub.profiles)
            click.echo(
                f"{sub.email:32} {sub.status:12} {sub.frequency:6} {sub.send_at} "
                f"{sub.timezone:16} {profiles}"
            )
    if not as_json:
        click.echo(f"{len(found)} subscriber{'' if len(found) == 1 else 's'}", err=True)


@subscribers.command("import")
@click.argument("file", metavar="FILE")
@click.option(
    "--confirmed",
    is_flag=True,
    help="The list already opted in: new addresses are confirmed and get no email.",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the good rows and list the bad ones (default: a bad row stops it all).",
)
@_json_option("Print the report as one JSON object.")
@pass_ctx
def import_subscribers(
    obj: _Ctx, file: str, confirmed: bool, skip_invalid: bool, as_json: bool
) -> None:
    """Add or update subscribers from FILE: JSON Lines or CSV ("-" reads standard input).

    The format is told by content: JSON Lines (one object a line) when the first
    non-blank character is `{`, else CSV whose first line names the columns. Fields:
    email (required), keywords and exclude (a list of strings in JSON, one
    comma-separated string in CSV, as for `digest subscribe`), profile (default
    "papers"), timezone, send_at, frequency (left empty: a new reader gets the defaults,
    a known one keeps theirs). A later row for the same address and profile name wins;
    several profile names for one address are several profiles of one subscriber.

    Every row is checked first; bad rows are listed as `FILE:LINE: what is wrong` on
    stderr and nothing is imported (exit code 2) unless --skip-invalid is given.
    Without --confirmed each new address is pending and gets the confirmation email of
    `digest subscribe`. Importing the same file again changes nothing, and an address
    that has unsubscribed stays unsubscribed. Prints "imported FILE: N new, M changed,
    K unchanged, B bad (skipped), C confirmations sent" (addresses; bad rows). Exit
    code 1 when confirmations are still to send, 2 when the server refused the sender.

    \b
    Examples:
      digest subscribers import readers.csv
      digest subscribers export --status confirmed | digest subscribers import - --confirmed
    """
    from digest import pipeline

    data, origin = _read_input(file, obj.config.max_file_mb)
    with obj.store() as store, _progress("import") as progress:
        report = pipeline.import_subscribers(
            obj.config,
            store,
            data,
            origin,
            obj.now,
            confirmed=confirmed,
            skip_invalid=skip_invalid,
            open_backend=obj.backend,
            progress=progress,
        )
    for bad in report.bad:
        click.echo(f"{origin}:{bad.line}: {bad.message}", err=True)
    for address, reason in report.unsent:
        click.echo(f"warning: confirmation email to {address} not sent ({reason})", err=True)
    if report.kept_unsubscribed:
        click.echo(
            f"note: {report.kept_unsubscribed} address"
            f"{' has' if report.kept_unsubscribed == 1 else 'es have'} unsubscribed and"
            " stayed so (`digest subscribe` re-subscribes one)",
            err=True,
        )
    if as_json:
        click.echo(json.dumps(_import_json(report), ensure_ascii=False))
    if not report.imported:
        good = report.rows - len(report.bad)
        raise CliError(
            f"{origin}: {len(report.bad)} bad row{'' if len(report.bad) == 1 else 's'}, "
            f"nothing imported; fix {'it' if len(report.bad) == 1 else 'them'}, or give "
            f"--skip-invalid to import the other {good}"
        )
    if not as_json:
        click.echo(report.summary())
    if any(reason.startswith("paused") for _, reason in report.unsent):
        sys.exit(2)  # the server refused the sender or key: a [delivery] setting to fix
    if report.unsent:
        sys.exit(1)  # imported; confirmations still to send


def _read_input(file: str, max_mb: float) -> tuple[bytes, str]:
    """The bytes of FILE ("-": standard input) and its name for messages: a regular file
    (a FIFO or a device is refused, not read for ever) of at most `max_mb` MB, read the
    way `digest ingest` reads captures (`sources.files.read_capture`)."""
    from digest.sources.files import read_capture

    max_bytes = int(max_mb * 1_000_000)
    if file == "-":
        data = sys.stdin.buffer.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise CliError(
                f"<stdin>: more than {max_mb:g} MB; split it or raise [ingest] max_file_mb"
            )
        return data, "<stdin>"
    return read_capture(Path(file), max_bytes), file


def _import_json(report: ImportReport) -> dict[str, Any]:
    return {
        "file": report.origin,
        "format": report.format,
        "imported": report.imported,
        "rows": report.rows,
        "new": report.new,
        "changed": report.changed,
        "unchanged": report.unchanged,
        "kept_unsubscribed": report.kept_unsubscribed,
        "bad": [{"line": b.line, "message": b.message} for b in report.bad],
        "confirmations": report.confirmations,
        "unsent": [{"email": e, "reason": r} for e, r in report.unsent],
    }


@subscribers.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="JSON Lines or CSV (with a header row).",
)
@click.option("--status", type=_STATUSES, help="Only subscribers with this status.")
@pass_ctx
def export_subscribers(obj: _Ctx, fmt: str, status: str | None) -> None:
    """Write subscribers to stdout in the format `digest subscribers import` reads.

    One row per profile: email, profile, keywords, exclude, timezone, send_at,
    frequency. Importing the export into the same store changes nothing; to move a
    confirmed list to another store, export --status confirmed and import --confirmed.
    A subscriber without a profile has no row (a row needs keywords).
    """
    from digest import bulk

    with obj.project_store() as store:
        found = store.subscribers(status=status)
    lines = bulk.export_lines(found, fmt)
    while chunk := "".join(itertools.islice(lines, 1000)):
        click.echo(chunk, nl=False)
    bare = sum(1 for sub in found if not sub.profiles)
    if bare:
        click.echo(
            f"note: {bare} subscriber{'' if bare == 1 else 's'} without a profile left out",
            err=True,
        )
