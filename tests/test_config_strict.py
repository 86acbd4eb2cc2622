"""A strict config (issue 14, item 5): one schema for every table and key, typos named with
the nearest known key before anything opens, and `digest config check` showing the
effective configuration with secrets masked."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import load_config
from digest.config.keys import SCHEMA, Array, Table
from digest.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t-value-that-must-never-be-printed-0123456789"


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(cli, ["--config", str(cwd / "config.toml"), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[stroe]\npath = 'other.sqlite3'\n", "stroe: unknown table; did you mean [store]?"),
        (
            "[[profile]]\nname = 'p'\nkeywords = ['LoRA']\n",
            "profile: unknown table; did you mean [[profiles]]?",
        ),
        (
            f"[security]\nsecrte = '{SECRET}'\n",
            "security.secrte: unknown key; did you mean",
        ),
        ("[ranking]\ntitle_wieght = 2\n", "ranking.title_wieght: unknown key; did you mean"),
        ("[ranking]\nlike_dense = 2.5\n", "ranking.like_dense = 2.5: must be between 0 and 1"),
        ("[delivery.smtp]\nprot = 587\n", "delivery.smtp.prot: unknown key; did you mean port?"),
        (
            "[[sources]]\nname = 's'\nkind = 'listing'\npth = 'x'\n",
            "sources[0].pth: unknown key; did you mean path?",
        ),
        ("[render]\nzzz = 1\n", "render.zzz: unknown key; render takes: title, preview_dir"),
        ("[publish]\nrecent_days = '14'\n", "publish.recent_days = '14': must be a whole number"),
        ("[delivery]\nsmtp = 'x'\n", "delivery.smtp = 'x': must be a table ([delivery.smtp])"),
        ("[profiles]\nname = 'p'\n", "profiles = {'name': 'p'}: must be a list of tables"),
        ("[synonyms]\nKG = [1]\n", "synonyms.KG = [1]: must be a string or a list of strings"),
        (
            "[schedule]\nmisfire_grace_seconds = true\n",
            "schedule.misfire_grace_seconds = True: must be a whole number",
        ),
    ],
)
def test_a_typo_or_a_wrong_type_is_one_line_before_anything_opens(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "config.toml").write_text(text)
    code, out, err = run(tmp_path, "ingest")
    assert code == 2 and out == ""
    assert err.startswith(f"error: {tmp_path / 'config.toml'}: {message}")
    assert err.count("\n") == 1 and SECRET not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no store, no var/


def test_every_table_of_the_schema_is_read(tmp_path: Path) -> None:
    # A key in the schema that parse never reads would be accepted and then ignored:
    # a table written with a wrong value for each key must fail on that key.
    def tables(spec: Table, prefix: str) -> list[tuple[str, str]]:
        out = []
        for key, sub in spec.keys.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(sub, Table):
                out += tables(sub, name)
            elif isinstance(sub, Array):
                out += [(f"{name}[0]", k) for k in sub.of.keys]
            else:
                out.append((prefix, key))
        return out

    for table, key in tables(SCHEMA, ""):
        if table.startswith(("sources", "profiles")) or table == "ranking":
            continue  # arrays and [ranking] have their own tests
        path = tmp_path / "config.toml"
        path.write_text(f"[{table}]\n{key} = [[]]\n")
        with pytest.raises(ConfigError, match=re.escape(f"{table}.{key} = ")):
            load_config(path)


@pytest.mark.parametrize("name", ["config.toml", "README.md"])
def test_the_shipped_config_and_the_readme_examples_load(tmp_path: Path, name: str) -> None:
    text = (ROOT / name).read_text()
    blocks = [text] if name.endswith(".toml") else re.findall(r"```toml\n(.*?)```", text, re.S)
    assert blocks
    for i, block in enumerate(blocks):
        path = tmp_path / f"example-{i}.toml"
        path.write_text(block)
        load_config(path)


def test_config_check_prints_the_effective_config_with_secrets_masked(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        f"[security]\nsecret = '{SECRET}'\n[delivery.smtp]\npassword_env = 'MY_SMTP_PASSWORD'\n"
        "[[profiles]]\nname = 'p'\nkeywords = ['\"video generation\"', 'LoRA^2']\n"
    )
    env = {"MY_SMTP_PASSWORD": "hunter2-hunter2"}
    code, out, err = run(tmp_path, "config", "check", env=env)
    assert (code, err) == (0, "")
    assert SECRET not in out and "hunter2" not in out
    assert "********" in out and "$MY_SMTP_PASSWORD" in out
    shown = tomllib.loads(out)
    assert shown["publish"]["recent_days"] == 14  # defaults filled in
    assert shown["profiles"][0]["keywords"] == ['"video generation"', "LoRA^2"]
    # What it prints is the config in effect: loaded back (masks aside), it is the same.
    del shown["security"], shown["delivery"]["smtp"]["password"]
    del shown["delivery"]["sendgrid"]["api_key"]
    import tomli_w

    again = tmp_path / "again.toml"
    again.write_text(tomli_w.dumps(shown))
    original, reloaded = load_config(tmp_path / "config.toml"), load_config(again)
    assert reloaded.profiles == original.profiles and reloaded.delivery == original.delivery
    assert reloaded.publish == original.publish and reloaded.ranking == original.ranking
    assert reloaded.store_path == original.store_path

    code, out, _ = run(tmp_path, "config", "check", "--json", env={"DIGEST_SECRET": SECRET})
    report = json.loads(out)
    assert code == 0 and report["valid"] is True and SECRET not in out
    assert "DIGEST_SECRET" in report["config"]["security"]["secret"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.toml", "config.toml"]


def test_config_check_of_a_bad_config_is_exit_2_also_in_json(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[stroe]\npath = 'x'\n")
    code, out, err = run(tmp_path, "config", "check", "--json")
    assert code == 2 and err.count("\n") == 1 and "did you mean [store]?" in err
    report = json.loads(out)
    assert report["valid"] is False and "did you mean [store]?" in report["error"]
    (tmp_path / "config.toml").write_text("")
    code, _, err = run(tmp_path, "config", "check", env={"DIGEST_SECRET": "short-one"})
    assert code == 2 and "DIGEST_SECRET: too short" in err and "short-one" not in err


def test_config_check_without_a_config_shows_defaults_and_makes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 0 and "no such file: the defaults" in result.stdout
    for command in (["rank", "-k", "LoRA"], ["preview", "-k", "LoRA"], ["deliveries"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2 and "no store here yet" in result.stderr, command
    assert list(tmp_path.iterdir()) == []
