"""Commands for subscribers and delivery: subscribe, confirm, unsubscribe, subscribers
(with subscribers import / export), send, deliveries."""

from __future__ import annotations

import itertools
import json
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest.cli.base import (
    CliError,
    _Ctx,
    _json_option,
    _parse_date,
    _progress,
    cli,
    pass_ctx,
)
from digest.errors import QueryError, SubscriptionError

if TYPE_CHECKING:
    from digest.model import Delivery, Profile, Subscriber
    from digest.pipeline import ImportReport, SubscribeReport
    from digest.send import SendReport


@cli.command()
@click.argument("email")
@click.option(
    "--keywords",
    "-k",
    metavar="TERMS",
    multiple=True,
    help='Comma-separated terms and "quoted phrases" for this profile.',
)
@click.option("--exclude", metavar="TERMS", multiple=True, help="Terms that veto a paper.")
@click.option(
    "--profile",
    "profile_name",
    default="papers",
    show_default=True,
    help="The profile's name; subscribing again with the same name replaces it.",
)
@click.option("--timezone", help="IANA time zone for the send time, e.g. Europe/Berlin.")
@click.option("--send-at", metavar="HH:MM", help="Local time of the daily email (default 07:00).")
@click.option("--frequency", type=click.Choice(["daily", "weekly"]), help="How often.")
@click.option(
    "--notify-empty/--no-notify-empty",
    default=None,
    help='Send a "nothing today" note when nothing matched.',
)
@click.option(
    "--confirmed",
    is_flag=True,
    help="The address is already confirmed (an operator importing a list).",
)
@_json_option("Print the subscriber as JSON.")
@pass_ctx
def subscribe(
    obj: _Ctx,
    email: str,
    keywords: tuple[str, ...],
    exclude: tuple[str, ...],
    profile_name: str,
    timezone: str | None,
    send_at: str | None,
    frequency: str | None,
    notify_empty: bool | None,
    confirmed: bool,
    as_json: bool,
) -> None:
    """Subscribe EMAIL with a keyword profile (double opt-in), or edit a subscriber.

    A new address gets a confirmation email with a signed link that works for 7 days;
    `digest confirm TOKEN` does the same as clicking it. Subscribing an existing address
    again adds a profile (or replaces the one with the same --profile name) and updates
    the settings given.

    \b
    Examples:
      digest subscribe ada@example.org -k 'LoRA, "parameter-efficient fine-tuning"'
      digest subscribe ada@example.org --profile speech -k TTS,ASR --timezone Europe/Berlin
    """
    from digest import pipeline
    from digest.keywords import parse_keywords
    from digest.rank.query import make_profile

    profile = None
    if keywords:
        try:
            profile = make_profile(
                profile_name,
                tuple(k for text in keywords for k in parse_keywords(text)),
                tuple(k for text in exclude for k in parse_keywords(text)),
            )
        except QueryError as exc:
            raise SubscriptionError(str(exc)) from None
    if not confirmed:
        obj.check_live_links()  # before the store changes: the confirmation must work
    with obj.store() as store:
        report = pipeline.subscribe(
            obj.config,
            store,
            email,
            profile,
            obj.now,
            open_backend=obj.backend,
            timezone=timezone,
            send_at=send_at,
            frequency=frequency,
            notify_empty=notify_empty,
            confirmed=confirmed,
        )
    result, sent = report.result, report.confirmation
    sub = result.subscriber
    # 0: done; 1: the confirmation is still to send (or could not be); 2: the server
    # refused our sender or key (a [delivery] setting to fix).
    code = {"": 0, "sent": 0, "retry": 1, "failed": 1, "paused": 2}.get(sent, 1)
    if as_json:
        body = {**subscriber_json(sub), "created": result.created, "confirmation": sent or None}
        click.echo(json.dumps({**body, "exit_code": code}))
        sys.exit(code)
    verb = "subscribed" if result.created else "updated"
    click.echo(
        f"{verb} {sub.email} ({sub.status}; profiles: "
        f"{', '.join(p.name for p in sub.profiles)}){_confirmation_note(obj, report)}"
    )
    if sent == "sent" and obj.config.delivery.backend == "outbox":
        token = result.confirm_link.rpartition("token=")[2]
        click.echo(f"to confirm now, run: digest confirm {token}")
    sys.exit(code)


def _confirmation_note(obj: _Ctx, report: SubscribeReport) -> str:
    """Where the confirmation email went, and what its link needs."""
    from digest.links import public_url

    delivery, result, sent = obj.config.delivery, report.result, report.confirmation
    if sent == "sent" and delivery.backend == "outbox":
        path = delivery.outbox_dir / f"{report.confirmation_id}.eml"
        return (
            f"; confirmation email written to {path} (the outbox: nothing was mailed); "
            f"its link needs `digest serve` at {public_url(obj.config)}"
        )
    return {
        "": "",
        "sent": f"; confirmation email sent to {result.subscriber.email} by {delivery.backend}",
        "retry": "; confirmation email NOT sent yet (the mail server said later): run again",
        "failed": "; confirmation email could not be sent",
        "paused": "; confirmation email NOT sent: the mail server refused the sender or key; "
        "fix [delivery] and run again",
    }.get(sent, f"; confirmation email: {sent}")


@cli.command()
@click.argument("token")
@pass_ctx
def confirm(obj: _Ctx, token: str) -> None:
    """Confirm a subscription with the TOKEN from the confirmation email."""
    from digest import subscriptions

    with obj.store() as store:
        sub = subscriptions.confirm(obj.config, store, token, obj.now)
    click.echo(f"confirmed {sub.email}")


@cli.command()
@click.argument("email_or_token")
@click.option("--profile", help="Remove only this profile; the subscription stays.")
@pass_ctx
def unsubscribe(obj: _Ctx, email_or_token: str, profile: str | None) -> None:
    """Unsubscribe an address (operator) or the holder of an unsubscribe TOKEN.

    Takes effect at once; unsubscribing twice is not an error. Deliveries already sent
    stay in the record.
    """
    from digest import subscriptions

    with obj.store() as store:
        sub, changed = subscriptions.unsubscribe(
            obj.config, store, email_or_token, obj.now, profile=profile
        )
    if profile:
        click.echo(f"removed profile {profile!r} of {sub.email}")
    else:
        click.echo(f"unsubscribed {sub.email}" if changed else f"{sub.email} was not subscribed")


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


#: The earliest time zone (UTC+14): past its today, a date is to come for every reader.
EARLIEST_ZONE = timedelta(hours=14)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Show who would get what; claim and send nothing.")
@click.option(
    "--date",
    "day",
    metavar="DATE",
    help="Send the digest of this day (YYYY-MM-DD) regardless of send times.",
)
@_json_option("Print the counts as one JSON object.")
@pass_ctx
def send(obj: _Ctx, dry_run: bool, day: str | None, as_json: bool) -> None:
    """Send each confirmed subscriber who is due their digest, exactly once.

    Ranks the papers that arrived since each subscriber's last digest, drops any paper
    already sent to them, claims the digest in the store, then hands it to the backend of
    [delivery] (outbox by default: .eml files under var/outbox/). Failed sends stay
    claimed and are retried by the next run with backoff; a resend never duplicates.
    --date DAY sends the digest of a past day (or today), never one still to come.

    Exit code 0: done; 1: done, with deliveries to retry or failed, or subscribers
    skipped; 2: bad input, or the run paused because the server refused the sender,
    the login or the API key (nothing burnt: fix [delivery] and send again).
    """
    from digest import pipeline

    digest_date: date | None = _parse_date(day, "--date")
    if digest_date is not None and digest_date > (obj.now + EARLIEST_ZONE).date():
        raise CliError(
            f"--date {digest_date}: a day still to come everywhere; a digest for it would "
            "take that day's send away (use a past day, or today)"
        )
    backend = None if dry_run else obj.backend()
    try:
        with obj.store() as store, _progress("send") as progress:
            report = pipeline.send_due(
                obj.config,
                store,
                backend,
                obj.now,
                dry_run=dry_run,
                digest_date=digest_date,
                progress=progress,
            )
    finally:
        if backend is not None:
            backend.close()
    if as_json:
        click.echo(json.dumps(_report_json(report)))
    else:
        for email, items in report.planned:
            click.echo(f"would send {email}: {items} paper{'' if items == 1 else 's'}")
        for subscriber_id, why in report.skipped:
            click.echo(f"warning: subscriber {subscriber_id} skipped: {why}", err=True)
        click.echo(report.summary())
    if report.paused_reason:
        click.echo(f"error: send paused: {report.paused_reason}", err=True)
    sys.exit(report.exit_code)


def _report_json(report: SendReport) -> dict[str, Any]:
    return {
        "due": report.due,
        "claimed": report.claimed,
        "empty": report.empty,
        "sent": report.sent,
        "retry": report.retry,
        "failed": report.failed,
        "cancelled": report.cancelled,
        "paused": report.paused,
        "paused_reason": report.paused_reason or None,
        "skipped": [{"subscriber": i, "reason": why} for i, why in report.skipped],
        "exit_code": report.exit_code,
        "dry_run": report.dry_run,
        "planned": [list(p) for p in report.planned],
    }


def delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "email": d.email,
        "date": d.digest_date.isoformat(),
        "state": d.state,
        "attempts": d.attempts,
        "reason": d.reason,
        "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
        "sent_at": d.sent_at.isoformat() if d.sent_at else None,
    }


@cli.command()
@click.option("--state", type=click.Choice(["pending", "sent", "failed", "retry"]))
@_json_option()
@pass_ctx
def deliveries(obj: _Ctx, state: str | None, as_json: bool) -> None:
    """List digest deliveries: pending, sent, retry (with the next attempt) or failed (why)."""
    with obj.project_store() as store:
        found = store.deliveries(state=state)
    for d in found:
        if as_json:
            click.echo(json.dumps(delivery_json(d)))
        else:
            extra = d.reason or (
                f"next {d.next_attempt_at:%Y-%m-%d %H:%M}" if d.next_attempt_at else ""
            )
            click.echo(f"{d.digest_date}  {d.state:8} {d.attempts}x  {d.email:32} {extra}")
    if not as_json:
        click.echo(f"{len(found)} deliver{'y' if len(found) == 1 else 'ies'}", err=True)
