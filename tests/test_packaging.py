"""The wheel carries the templates; a user's templates directory overrides single files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from digest.render import builtin_templates, make_environment

from .conftest import ROOT


def test_wheel_contains_the_templates(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("papers_digest-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "templates").rglob("*.j2"):
        assert f"digest/templates/{template.relative_to(ROOT / 'templates')}" in names
    assert "digest/cli/__init__.py" in names


def test_builtin_templates_are_found() -> None:
    assert (builtin_templates() / "digest.md.j2").is_file()


def test_user_templates_override_one_file(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text("custom {{ 1 + 1 }}")
    env = make_environment(tmp_path)
    assert env.get_template("digest.txt.j2").render() == "custom 2"
    assert "digest.title" in env.loader.get_source(env, "digest.md.j2")[0]  # type: ignore[union-attr]
