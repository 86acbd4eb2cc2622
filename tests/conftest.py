"""Shared fixtures: paths to the repo's seeds and fixtures, a fresh store, a config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from digest.config import Config, load_config
from digest.store import Store

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: Debian's chromium (make test installs it when it can) and the flags for this machine:
#: headless, no sandbox as root, and no background traffic to a network we do not have.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "var" / "digest.sqlite3") as s:
        yield s


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the embedded default (config.toml + seeds/) in a temporary directory."""
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    shutil.copytree(SEEDS, tmp_path / "seeds")
    return tmp_path


@pytest.fixture
def config(project: Path) -> Config:
    return load_config(project / "config.toml", required=True)
