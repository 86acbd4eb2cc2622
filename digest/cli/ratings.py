"""`digest rate` and `digest ratings`: an operator records, withdraws and lists a reader's
ratings (what the email's "more like this" / "not for me" links record)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from digest.cli.base import CliError, _Ctx, _json_option, cli, pass_ctx
from digest.model import VOTES, Subscriber

if TYPE_CHECKING:
    from digest.store import Store


def _reader(store: Store, email: str) -> Subscriber:
    sub = store.subscriber_by_email(email.strip().lower())
    if sub is None:
        raise CliError(f"{email!r}: no such subscriber; `digest subscribers` lists them")
    return sub


@cli.command()
@click.argument("email")
@click.argument("paper_id")
@click.argument("vote", type=click.Choice([*VOTES, "clear"]))
@pass_ctx
def rate(obj: _Ctx, email: str, paper_id: str, vote: str) -> None:
    """Record a reader's rating of a paper: like ("more like this"), dislike ("not for
    me"), or clear (withdraw it). Rating again replaces the rating.

    \b
    Examples:
      digest rate ada@example.org 2510.12345 like
      digest rate ada@example.org 2510.12345 clear
    """
    with obj.project_store() as store:
        sub = _reader(store, email)
        if vote == "clear":
            done = store.unrate(sub.id, paper_id)
            click.echo(
                f"removed {sub.email}'s rating of {paper_id}" if done else "no rating to remove"
            )
            return
        if not store.rate(sub.id, paper_id, VOTES[vote], obj.now, via="cli"):
            raise CliError(f"{paper_id!r}: no such paper; `digest papers --json` lists the ids")
    click.echo(f"{sub.email} rated {paper_id}: {vote}")


@cli.command()
@click.argument("email")
@_json_option("Print JSON Lines: paper id, title, vote (like/dislike), rated_at, via.")
@pass_ctx
def ratings(obj: _Ctx, email: str, as_json: bool) -> None:
    """List a reader's ratings, newest first."""
    from digest.text import clean

    with obj.project_store() as store:
        found = store.ratings(_reader(store, email).id)
    for r in found:
        if as_json:
            row = {
                "id": r.paper_id,
                "title": r.title,
                "vote": r.label,
                "rated_at": r.rated_at.isoformat(),
                "via": r.via,
            }
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            click.echo(f"{r.rated_at:%Y-%m-%d}  {r.label:<7}  {r.via:<6}  {clean(r.title)}")
    if not as_json:
        click.echo(f"{len(found)} rating{'' if len(found) == 1 else 's'}", err=True)
