"""Going live safely: a real mail backend is refused (exit 2, one line) while its links or
its sender work only on this machine; `digest subscribe` says where the confirmation
went and, for the outbox, the command that confirms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli

NOW = "2025-12-31T08:00:00+00:00"


def configure(project: Path, delivery: str) -> list[str]:
    config = project / "config.toml"
    text = config.read_text()
    start = text.index("[delivery]")
    config.write_text(text[:start] + delivery)
    return ["--config", str(config), "--now", NOW]


@pytest.mark.parametrize(
    ("delivery", "says"),
    [
        ('[delivery]\nbackend = "smtp"\nfrom = "d <d@example.org>"\n', "public_url is not set"),
        (
            '[delivery]\nbackend = "smtp"\nfrom = "d <d@example.org>"\n'
            'public_url = "http://127.0.0.1:8000/"\n',
            "is on this machine",
        ),
        (
            '[delivery]\nbackend = "sendgrid"\nfrom = "d <digest@localhost>"\n'
            'public_url = "https://papers.example.org/"\n',
            "is on localhost",
        ),
    ],
)
def test_local_links_or_sender_are_refused(project: Path, delivery: str, says: str) -> None:
    args = configure(project, delivery)
    runner = CliRunner()
    for command in (["send"], ["subscribe", "ada@example.org", "-k", "LoRA"], ["serve"]):
        result = runner.invoke(cli, [*args, *command])
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.splitlines()
        assert says in line and "--allow-local-links" in line
    listed = runner.invoke(cli, [*args, "subscribers", "--json"])
    assert listed.stdout == ""  # refused before the store changed


def test_allow_local_links_lets_it_through(project: Path) -> None:
    args = configure(project, '[delivery]\nbackend = "smtp"\nfrom = "d <d@localhost>"\n')
    result = CliRunner().invoke(cli, [*args, "--allow-local-links", "send"])
    assert "public_url" not in result.output  # past the check (no smtp server: another error)


def test_subscribe_says_where_the_confirmation_went(project: Path) -> None:
    args = ["--config", str(project / "config.toml"), "--now", NOW]
    runner = CliRunner()
    result = runner.invoke(cli, [*args, "subscribe", "ada@example.org", "-k", "LoRA"])
    assert result.exit_code == 0, result.output
    first, second = result.stdout.splitlines()
    eml = re.search(r"written to (\S+\.eml) \(the outbox: nothing was mailed\)", first)
    assert eml and Path(eml[1]).is_file() and "`digest serve` at http://127.0.0.1:8000/" in first
    assert second.startswith("to confirm now, run: digest confirm confirm.")
    token = second.rpartition(" ")[2]
    assert f"\n{token}\n" in Path(eml[1]).read_text().replace("\r\n", "\n")  # pasteable
    confirmed = runner.invoke(cli, [*args, "confirm", token])
    assert confirmed.exit_code == 0 and confirmed.stdout == "confirmed ada@example.org\n"
