"""config.toml's [delivery] and [security]: every value a message needs is checked at
load (issue 14), so a bad sender or link never burns a claimed digest; secrets are never
repeated in a message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import load_config
from digest.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[delivery]\nfrom='digest@example.org (Papers Digest)'\n", r"delivery\.from = .*form"),
        ("[delivery]\nfrom='Papers <digest@example.org> '\n", r"delivery\.from = .*spaces"),
        ("[delivery]\nfrom='Papers'\n", r"delivery\.from = 'Papers': not an email address"),
        ("[delivery]\nfrom='Pä <dïgest@example.org>'\n", r"delivery\.from = .*ASCII"),
        ("[delivery]\nfrom='A, B <d@example.org>'\n", r"delivery\.from = .*form|quote"),
        ("[delivery]\nunsubscribe_mailto='ünsub@example.org'\n", r"unsubscribe_mailto.*ASCII"),
        ("[delivery]\nunsubscribe_mailto='unsub@example.org '\n", r"unsubscribe_mailto.*spaces"),
        ("[delivery]\nunsubscribe_mailto='mailto:u@example.org'\n", r"unsubscribe_mailto"),
        ("[delivery]\npublic_url='https://digest example.org'\n", r"public_url = .*space"),
        ("[delivery]\npublic_url='ftp://example.org'\n", r"public_url = .*http"),
        ("[delivery]\npublic_url='https://example.org/?a=1'\n", r"public_url = .*query"),
        ("[delivery]\npublic_url='https://:80'\n", r"public_url = .*host"),
        ("[publish]\nbase_url='https://exa mple.org'\n", r"publish\.base_url = .*space"),
        ("[delivery.smtp]\ntimeout=-1\n", r"delivery\.smtp\.timeout = -1\.0: must be"),
        ("[delivery.smtp]\ntimeout=0\n", r"delivery\.smtp\.timeout = 0\.0: must be"),
        ("[delivery.smtp]\ntimeout=nan\n", r"delivery\.smtp\.timeout = nan: must be"),
        ("[delivery.smtp]\ntimeout=inf\n", r"delivery\.smtp\.timeout = inf: must be"),
        ("[delivery.sendgrid]\ntimeout=1e9\n", r"delivery\.sendgrid\.timeout = .*at most"),
        ("[delivery.smtp]\nhost='smtp example.org'\n", r"delivery\.smtp\.host = .*spaces"),
        ("[delivery.smtp]\nhost='smtp://x'\n", r"delivery\.smtp\.host = .*scheme"),
        ("[delivery.sendgrid]\nhost='api.sendgrid.com'\n", r"delivery\.sendgrid\.host = .*http"),
    ],
)
def test_message_settings_are_checked_at_load(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(
    "value",
    [
        "Papers Digest <digest@example.org>",
        '"Digest, the papers" <digest@example.org>',
        "digest@example.org",
        "papers-digest <digest@localhost>",
    ],
)
def test_good_senders_load(tmp_path: Path, value: str) -> None:
    config = load_config(write(tmp_path, f"[delivery]\nfrom = '{value}'\n"))
    assert config.delivery.from_addr == value


@pytest.mark.parametrize(
    "text",
    [
        "[delivery.sendgrid]\napi_key_env = 'SG.abcdefghijklmnop.qrstuvwxyz0123456789'\n",
        "[delivery.smtp]\nusername='u'\npassword_env = 'hunter2 is my password'\n",
        "[security]\nsecret = 'SG.abcdefghijklmnop'\n",
    ],
)
def test_a_secret_in_the_wrong_key_is_never_shown(tmp_path: Path, text: str) -> None:
    secret = text.split("'")[-2]
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert secret not in str(caught.value) and "not shown" in str(caught.value)


def test_short_secrets_are_refused_in_config_and_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_config(write(tmp_path, "[security]\nsecret = 'short'\n"))
    path = write(tmp_path, "[security]\nsecret = '" + "x" * 32 + "'\n")
    assert load_config(path).secret == "x" * 32
    from digest.tokens import load_secret

    with pytest.raises(ConfigError, match="DIGEST_SECRET: too short") as caught:
        load_secret(load_config(path), env={"DIGEST_SECRET": "tiny-secret"})
    assert "tiny-secret" not in str(caught.value)


def test_a_bad_sender_is_one_line_exit_2_and_nothing_is_claimed(project: Path) -> None:
    config = project / "config.toml"
    text = re.sub(r"(?m)^from = .*$", "from = 'x@example.org (X)'", config.read_text())
    config.write_text(text)
    result = CliRunner().invoke(cli, ["--config", str(config), "send"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "delivery.from" in result.stderr and "Traceback" not in result.output
    assert not (project / "var" / "digest.sqlite3").exists()  # nothing opened, nothing claimed
