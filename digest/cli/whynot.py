"""`digest rank --explain PAPER_ID` and `--show-below N`: why a paper is (not) in a digest,
and what came just under the cut-off; `--subscriber EMAIL` adds that reader's ledger."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from digest.cli.base import CliError, _Ctx
from digest.model import Profile
from digest.text import clean

if TYPE_CHECKING:
    from digest.rank.learn import Rated
    from digest.rank.whynot import Audit, Verdict
    from digest.store import Store
    from digest.window import Window


def explain_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--explain PAPER_ID, --show-below N, --subscriber EMAIL for `digest rank`."""
    f = click.option(
        "--subscriber",
        metavar="EMAIL",
        help="Rank for this reader: their profile (--profile NAME names one of theirs) and"
        " the papers they were sent before (never sent twice).",
    )(f)
    f = click.option(
        "--show-below",
        type=click.IntRange(1, 1000),
        metavar="N",
        help="List the next N papers under the cut-off (below the day's cut-off or past max_items)"
        " with their scores, instead of the digest.",
    )(f)
    f = click.option(
        "--explain",
        "explain_id",
        metavar="PAPER_ID",
        help="Say how this paper scored against each keyword and which rule kept it out of"
        " the digest (an exclusion, already sent, below the day's cut-off, past max_items),"
        " or that it is in.",
    )(f)
    return f


def reader_profile(
    obj: _Ctx, store: Store, email: str, profile_name: str | None
) -> tuple[Profile, set[str], list[Rated]]:
    """The reader's profile (the named one, or their only one), their sent-ledger and the
    papers they rated that count for that profile (`rank.learn.assign`)."""
    sub = store.subscriber_by_email(email.strip().lower())
    if sub is None:
        raise CliError(
            f"--subscriber {email!r}: no such subscriber; `digest subscribers` lists them"
        )
    names = [p.name for p in sub.profiles]
    if profile_name is None and len(names) == 1:
        profile_name = names[0]
    for at, profile in enumerate(sub.profiles):
        if profile.name == profile_name:
            from digest import rank
            from digest.rank.analyzer import analyzer_for
            from digest.window import ratings_model, reader_ratings

            synonyms, settings = obj.config.synonyms or None, obj.config.ranking
            model = ratings_model(obj.config)
            mine = reader_ratings(store, [sub.id], synonyms, model).get(sub.id, [])
            by_profile = rank.assign_ratings(sub.profiles, mine, analyzer_for(synonyms), settings)
            return profile, store.sent_paper_ids(sub.id), by_profile[at]
    have = ", ".join(repr(n) for n in names) or "none"
    which = f"has no profile {profile_name!r}" if profile_name else "has several profiles"
    raise CliError(f"--subscriber {email}: {which}; give --profile NAME (have: {have})")


def run(
    obj: _Ctx,
    store: Store,
    profile: Profile,
    window: Window,
    sent: set[str],
    rated: list[Rated],
    explain_id: str | None,
    show_below: int | None,
    as_json: bool,
) -> None:
    """Print the verdict on `explain_id`, or the papers under the cut."""
    from digest.whynot import audit_stored

    paper = None
    if explain_id is not None:
        paper = store.paper(explain_id.strip())
        if paper is None:
            raise CliError(
                f"--explain {explain_id!r}: no such paper; `digest papers --json` lists the ids"
            )
    found = audit_stored(obj.config, store, profile, obj.now, window, sent, rated)
    if paper is None:
        _below(found.below(show_below or 0), found, as_json)
        return
    verdict = found.verdict(paper.id)
    if verdict is None:
        if as_json:
            click.echo(json.dumps({"id": paper.id, "outcome": "outside the window"}))
        else:
            click.echo(
                f"{clean(paper.title)} ({paper.id}) was not ranked: it did not arrive"
                f" {window.label}; use --since DATE or --all"
            )
    elif as_json:
        click.echo(json.dumps(_row(verdict, full=True), ensure_ascii=False))
    else:
        _explain(verdict, profile)


def _below(verdicts: list[Verdict], found: Audit, as_json: bool) -> None:
    for v in verdicts:
        if as_json:
            click.echo(json.dumps(_row(v), ensure_ascii=False))
        else:
            click.echo(f"{v.score:.3f}  {v.relevance:.3f}  {_short(v):<16} {clean(v.paper.title)}")
    if not as_json:
        click.echo(
            f"{len(verdicts)} under the cut (score, relevance, why out); {found.profile.name}:"
            f" needed today {found.min_score:.3f} ({found.cut_reason}),"
            f" max_items {found.max_items}",
            err=True,
        )


def _explain(verdict: Verdict, profile: Profile) -> None:
    click.echo(f"{clean(verdict.paper.title)} ({verdict.paper.id}), for {clean(profile.name)}:")
    click.echo(f"  {_headline(verdict)}")
    for rule in verdict.rules[1:]:
        click.echo(f"  also {_reason(verdict, rule)}")
    if verdict.liked is not None:
        click.echo(f"  by your ratings (like: {clean(verdict.liked)})")
    click.echo(
        f"  relevance {verdict.relevance:.3f} (needed today {verdict.min_score:.3f}),"
        f" score {verdict.score:.3f} (relevance with popularity and recency: the order)"
    )
    width = max((len(k.keyword) for k in verdict.keywords), default=0)
    for k in verdict.keywords:
        what = f"{k.score:.3f}" if k.score else "0 (no match)"
        if k.by_meaning:
            what += " by meaning (no word of it matches; the paper is close to it)"
        elif k.by_related:
            what += " by related terms (no word of it matches; terms papers use with it do)"
        elif k.meaning:
            what += f" (words {k.lexical:.3f}, with meaning {k.meaning:.3f})"
        click.echo(f"    {k.keyword:<{width}}  weight {k.weight:.2f}  score {what}")
    meaning_only = all(k.by_meaning or not k.score for k in verdict.keywords)
    if meaning_only and any(k.by_meaning for k in verdict.keywords):
        click.echo("  it comes in by meaning (the semantic layer), not by a keyword")


def _headline(v: Verdict) -> str:
    if v.outcome == "in":
        return f"IN the digest: #{v.place} of at most {v.max_items}"
    return f"OUT: {_reason(v, v.outcome)}"


def _reason(v: Verdict, rule: str) -> str:
    if rule == "excluded":
        return f"vetoed by the exclusion {', '.join(v.vetoed_by)}"
    if rule == "already sent":
        return "already sent to this reader in an earlier digest"
    if rule == "below the cut-off":
        if not any(k.score for k in v.keywords):
            return "no keyword matches it (relevance 0)"
        return f"{v.cut_reason}: relevance {v.relevance:.3f} < {v.min_score:.3f}"
    return f"past max_items: #{v.place} of the papers that pass, the digest holds {v.max_items}"


def _short(v: Verdict) -> str:
    return f"#{v.place} > {v.max_items}" if v.outcome == "past max_items" else v.outcome


def _row(v: Verdict, full: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": v.paper.id,
        "title": v.paper.title,
        "outcome": v.outcome,
        "rules": list(v.rules),
        "score": v.score,
        "relevance": v.relevance,
        "place": v.place,
    }
    if full:
        row["min_score"], row["max_items"] = v.min_score, v.max_items
        row["cut_off"] = v.cut_reason
        row["liked"] = v.liked
        row["vetoed_by"] = list(v.vetoed_by)
        row["keywords"] = [
            {
                "keyword": k.keyword,
                "weight": k.weight,
                "score": k.score,
                "meaning": k.meaning,
                "by_meaning": k.by_meaning,
                "by_related": k.by_related,
            }
            for k in v.keywords
        ]
    return row
