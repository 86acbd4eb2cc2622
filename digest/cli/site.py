"""Commands that show the digest to people: serve (and publish)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from digest.cli.base import CliError, _Ctx, cli, pass_ctx


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
    GET /preview?keywords=LoRA,TTS  a live digest preview (format=html|markdown|text)
    Stop with Ctrl-C.
    """
    from digest.serve import make_server

    store_path = Path(obj.db) if obj.db else obj.config.store_path
    now = obj._now
    clock = (lambda: obj.now) if now else (lambda: datetime.now(UTC))
    try:
        server = make_server(
            obj.config,
            store_path,
            clock,
            host=host,
            port=port,
            site_dir=Path(site_dir) if site_dir else None,
            verbose=True,
        )
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port} ({exc.strerror}); try --port 0") from None
    bound_host, bound_port = server.server_address[:2]
    click.echo(
        f"serving http://{bound_host}:{bound_port}/ (archive) and /preview?keywords=... "
        "; Ctrl-C stops",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()
