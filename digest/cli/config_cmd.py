"""`digest config check`: validate config.toml and print the configuration in effect."""

from __future__ import annotations

import json

import click

from digest.cli.base import CliError, _Ctx, _json_option, cli, pass_ctx
from digest.errors import ConfigError


@cli.group(name="config")
def config_group() -> None:
    """Check config.toml and show the configuration commands would use."""


@config_group.command("check")
@_json_option("Print one JSON object: file, valid, and the effective config or the error.")
@pass_ctx
def check(obj: _Ctx, as_json: bool) -> None:
    """Validate config.toml (every table and key; unknown keys name the nearest known one)
    and print the effective configuration, defaults filled in, secrets masked.

    Exit 0 when valid, 2 (with one line naming file, key and fix) when not. Opens no
    store and sends nothing: safe to run before `digest run` or in CI.
    """
    import os

    from digest.config.checks import secret_problem
    from digest.config.show import effective

    try:
        config = obj.config
        env_secret = os.environ.get("DIGEST_SECRET", "")
        if env_secret and secret_problem(env_secret):  # the value itself is never shown
            raise ConfigError(f"environment variable DIGEST_SECRET: {secret_problem(env_secret)}")
    except ConfigError as exc:
        if as_json:
            click.echo(json.dumps({"file": obj.config_path, "valid": False, "error": str(exc)}))
        raise CliError(str(exc)) from None
    shown = effective(config)
    present = config.path.exists()
    if as_json:
        out = {"file": str(config.path), "exists": present, "valid": True, "config": shown}
        click.echo(json.dumps(out, default=str))
        return
    import tomli_w

    note = "" if present else " (no such file: the defaults)"
    click.echo(f"# {config.path}{note}: valid. The effective configuration, secrets masked:")
    click.echo(tomli_w.dumps(shown), nl=False)
