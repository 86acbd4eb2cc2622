"""Shared fixtures: paths to the repo's seeds and fixtures, a fresh store, a config."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

# Helper modules whose plain `assert`s should explain themselves like a test's do.
pytest.register_assert_rewrite("tests.factories", "tests.golden")

from digest.config import Config, load_config  # noqa: E402
from digest.store import Store  # noqa: E402

# CI runs each property test on the same examples every time (a red CI should be a bug
# in the code, not the luck of a draw); local runs explore new examples.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")

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
