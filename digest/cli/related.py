"""`digest related`: learn the related terms of the stored papers (`rank.related`)."""

from __future__ import annotations

import json

import click

from digest.cli.base import _Ctx, _json_option, cli, pass_ctx


@cli.command(name="related")
@click.option(
    "--papers",
    "limit",
    type=click.IntRange(min=1),
    default=None,
    help="Learn from the newest N stored papers (default 5,000).",
)
@_json_option("Print the counts as one JSON object.")
@pass_ctx
def related(obj: _Ctx, limit: int | None, as_json: bool) -> None:
    """Learn which terms the stored papers use for one another, for vocabulary bridges.

    A paper that says a keyword in other words (the terms papers with the keyword use
    around it) then matches the keyword, at less weight than its own words
    (`[ranking] related_credit`; 0 turns it off), and its why-line says "related".
    Replaces the table the store kept. Run it after ingesting a good share of new papers
    (it reads the newest 5,000: a few seconds). Prints "related terms of N features
    (M pairs) learned from P papers (CPU-s)".
    """
    from digest.bridges import LEARN_PAPERS, learn_related

    with obj.existing_store() as store:
        report = learn_related(obj.config, store, obj.now, limit or LEARN_PAPERS)
    counts = {"papers": report.papers, "features": report.features, "pairs": report.rows}
    cpu = {"cpu_seconds": round(report.cpu_seconds, 3)}
    click.echo(json.dumps(counts | cpu) if as_json else report.summary())
