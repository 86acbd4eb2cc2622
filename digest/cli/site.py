"""Commands that show the digest to people: serve (and publish)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from digest.cli.base import CliError, _Ctx, _json_option, _path, _progress, cli, pass_ctx


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
    GET /subscribe                   the subscribe form (double opt-in by email)
    GET /preview?keywords=LoRA,TTS  a live digest preview (format=html|markdown|text)
    GET /confirm, /unsubscribe, /manage ?token=...   the links in readers' emails
    Each request is logged on stderr, with tokens redacted. Stop with Ctrl-C.
    """
    from digest.serve import make_server

    obj.check_live_links()  # /subscribe mails confirmation links
    store_path = obj.store_location()
    with obj.store():  # a damaged or locked store is one line and exit 2, before serving
        pass
    now = obj._now
    clock = (lambda: obj.now) if now else (lambda: datetime.now(UTC))
    try:
        server = make_server(
            obj.config,
            store_path,
            clock,
            host=host,
            port=port,
            site_dir=_path(site_dir, "--site") if site_dir else None,
            log=lambda line: click.echo(line, err=True),
        )
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port} ({exc.strerror}); try --port 0") from None
    click.echo(
        f"serving {server.url}/ (archive), /subscribe and /preview?keywords=... ; Ctrl-C stops",
        err=True,
    )
    try:
        server.run()  # uvicorn stops on Ctrl-C (SIGINT) and SIGTERM
    except KeyboardInterrupt:
        pass
    finally:
        server.sock.close()
    click.echo("stopped", err=True)


@cli.command()
@click.option("--out", "out_dir", metavar="DIR", help="Where to write the site ([publish] dir).")
@click.option(
    "--full",
    is_flag=True,
    help="Read and check every day, not only those that may have changed (new papers, "
    "the last 3 days): after editing old papers in the store.",
)
@_json_option("Print the counts as one JSON object.")
@pass_ctx
def publish(obj: _Ctx, out_dir: str | None, full: bool, as_json: bool) -> None:
    """Write the static archive: days, profiles, papers, Atom feeds, sitemap, search.

    Incremental: only the days that may have changed are read again, and pages whose
    inputs did not change are not rewritten (--full checks every day). Links are
    relative, so the site works from file:// and under any base path.
    """
    from digest import pipeline

    with obj.store() as store, _progress("publish") as progress:
        report = pipeline.publish(
            obj.config,
            store,
            obj.now,
            out_dir=_path(out_dir, "--out") if out_dir else None,
            progress=progress,
            full=full,
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "out_dir": str(report.out_dir),
                    "written": report.written,
                    "unchanged": report.unchanged,
                    "removed": report.removed,
                    "days": report.days,
                    "papers": report.papers,
                }
            )
        )
    else:
        click.echo(report.summary())
