"""Commands for one subscriber and for delivery: subscribe, confirm, unsubscribe, send,
deliveries (the list of subscribers and its import / export: `digest.cli.subscribers`)."""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
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
from digest.cli.subscribers import subscriber_json
from digest.errors import QueryError, SubscriptionError

if TYPE_CHECKING:
    from digest.model import Delivery
    from digest.pipeline import SubscribeReport
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
