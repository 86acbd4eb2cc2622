"""`digest run`: the daily job in one command, and its summary."""

from __future__ import annotations

import json
import sys

import click

from digest.cli.base import _Ctx, _json_option, _progress, _report_warnings, cli, pass_ctx


@cli.command()
@_json_option("Print a JSON summary instead of text.")
@pass_ctx
def run(obj: _Ctx, as_json: bool) -> None:
    """The daily job: ingest the sources, send due digests, publish the archive.

    The config profiles' digest goes to the preview directory (default var/preview/) as
    Markdown and HTML; subscribers who are due get theirs through [delivery]; the static
    archive is written to [publish] dir. A summary line ends the run.

    Exit code 0: done; 1: done with failures (a source, the preview directory,
    deliveries to retry or failed); 2: bad config, or the send paused because the
    server refused the sender or key (nothing burnt: fix [delivery] and run again).
    """
    from digest import pipeline

    backend = obj.backend()
    try:
        with obj.store() as store, _progress("run") as progress:
            report = pipeline.run(obj.config, store, obj.now, backend=backend, progress=progress)
            total = store.count_papers()
    finally:
        backend.close()
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
                    "preview_error": report.preview_error or None,
                    "send": {
                        "sent": report.send.sent,
                        "retry": report.send.retry,
                        "failed": report.send.failed,
                        "paused": report.send.paused,
                        "paused_reason": report.send.paused_reason or None,
                        "skipped": [
                            {"subscriber": i, "reason": why} for i, why in report.send.skipped
                        ],
                    }
                    if report.send
                    else None,
                    "publish": {
                        "written": report.publish.written,
                        "unchanged": report.publish.unchanged,
                    }
                    if report.publish
                    else None,
                    "exit_code": report.exit_code,
                }
            )
        )
    else:
        for path in report.written:
            click.echo(f"wrote {path}")
        picked = ", ".join(f"{n} {name}" for name, n in sections.items()) or "no profiles"
        send_line = f"; send: {report.send.sent} sent" if report.send else ""
        if report.publish:
            click.echo(f"publish: {report.publish.summary()}")
        click.echo(
            f"ingest: {report.ingest.summary()}; {total} papers in store; digest: {picked}"
            f"{send_line}"
        )
    if report.preview_error:
        click.echo(f"warning: {report.preview_error}", err=True)
    if report.send is not None:
        for subscriber_id, why in report.send.skipped:
            click.echo(f"warning: subscriber {subscriber_id} skipped: {why}", err=True)
        if report.send.paused_reason:
            click.echo(f"error: send paused: {report.send.summary()}", err=True)
    sys.exit(report.exit_code)
