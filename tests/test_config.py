"""config.toml: defaults, validation errors that name the file, the key and the value."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from digest.config import load_config
from digest.errors import ConfigError

from .conftest import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_embedded_default_loads() -> None:
    config = load_config(ROOT / "config.toml", required=True)
    (seeds,) = config.sources
    assert (seeds.name, seeds.kind, seeds.path, seeds.captured) == (
        "seeds",
        "listing",
        "seeds/*.txt",
        date(2025, 12, 31),
    )
    assert config.store_path == ROOT / "var" / "digest.sqlite3"
    assert config.profiles


def test_missing_optional_config_gives_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "config.toml")
    assert config.sources == () and config.store_path == tmp_path / "var" / "digest.sqlite3"


def test_missing_required_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml", required=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[sources]]\nname='s'\nkind='lsting'\npath='x'\n",
            r"config\.toml: sources\[0\]\.kind = 'lsting': unknown kind; "
            r"expected one of: auto, feed, hf_daily, listing",
        ),
        ("[[sources]]\nname='s'\nkind='listing'\n", r"sources\[0\]: needs 'path'"),
        (
            "[[sources]]\nname='s'\nkind='listing'\npath='x'\ncaptured='last year'\n",
            r"sources\[0\]\.captured = 'last year': must be a date",
        ),
        ("[store]\npath=5\n", r"store\.path = 5: must be a string"),
        (
            "[[profiles]]\nname='p'\nkeywords=[]\n",
            r"profiles\[0\]\.keywords = \[\]: needs at least",
        ),
        ("[[profiles]]\nname='p'\nkeywords=['a']\nmin_score=3\n", r"profiles\[0\]\.min_score = 3"),
        ("[[profiles]]\nname='p'\nkeywords=['a']\nmax_items=true\n", r"max_items = True"),
        ("[ingest]\nmax_file_mb='big'\n", r"ingest\.max_file_mb = 'big'"),
        ("sources = 'x'\n", r"sources = 'x': must be a list"),
        ("[store\npath='x'\n", r"config\.toml: not valid TOML"),
        ("[schedule]\ncron='61 6 * * *'\n", r"schedule\.cron = '61 6 \* \* \*': not a crontab"),
        ("[schedule]\ntimezone='Mars/Olympus'\n", r"schedule\.timezone = 'Mars/Olympus'"),
        (
            "[workers]\nthrottle_pause_seconds=0\n",
            r"workers\.throttle_pause_seconds = 0\.0: must be from 1 to 86400",
        ),
    ],
)
def test_errors_name_file_key_and_value(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_captured_year_only(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "[[sources]]\nname='s'\nkind='listing'\npath='x'\ncaptured='2025'\n")
    )
    assert config.sources[0].captured == date(2025, 12, 31)


def test_the_default_cron_is_one_apscheduler_takes() -> None:
    # load_config trusts the default expression without importing apscheduler (start-up).
    from apscheduler.triggers.cron import CronTrigger

    from digest.config import ScheduleConfig

    trigger = CronTrigger.from_crontab(ScheduleConfig().cron, timezone="UTC")
    assert str(trigger) == "cron[month='*', day='*', day_of_week='*', hour='6', minute='0']"
