"""The `digest` command: thin commands that call one function each and format its result.

Commands are grouped by subject in the modules of this package; importing them
registers them on the group.
"""

from digest.cli import (  # noqa: F401  (registers the commands)
    config_cmd,
    daily,
    mail,
    papers,
    ratings,
    related,
    schedule,
    semantic,
    site,
    subscribers,
    worker,
)
from digest.cli.base import CliError, cli
from digest.cli.papers import paper_json


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="digest")


__all__ = ["CliError", "cli", "main", "paper_json"]
