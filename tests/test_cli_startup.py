"""Start-up: commands that do not rank import no heavy module (numpy, scipy, Jinja,
feedparser, ...). Each runs in a fresh interpreter, as a user's `digest` does; the test
checks what got imported (behaviour), not how long it took (bench/ measures time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

#: Modules a command that neither ranks, renders, fetches nor schedules has no use for.
HEAVY = (
    "numpy",
    "scipy",
    "jinja2",
    "feedparser",
    "httpx",
    "css_inline",
    "nh3",
    "markdown",
    "apscheduler",
    "selectolax",
    "psycopg",
    "sendgrid",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "email_validator",
    "email.mime",
    "rich",
    "digest.rank.ranker",
    "digest.render.digest",
    "digest.send",
    "digest.publish",
)
#: Runs the CLI as `python -m digest` does, then writes the heavy modules it loaded.
PROBE = """
import json, runpy, sys
out, sys.argv = sys.argv[1], ["digest", *sys.argv[2:]]
try:
    runpy.run_module("digest", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = json.loads(sys.stdin.read())
with open(out, "w") as f:
    json.dump({"code": code, "loaded": [m for m in heavy if m in sys.modules]}, f)
"""


def loaded_by(project: Path, *args: str) -> list[str]:
    """The HEAVY modules `digest ARGS` imports, run in `project` (exit code 0 asserted)."""
    out = project / "probe.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DIGEST_SECRET": "test-secret-0123456789abcdef-0123",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        input=json.dumps(HEAVY),
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
        timeout=120,
    )
    result = json.loads(out.read_text())
    assert result["code"] in (0, None), done.stderr
    return list(result["loaded"])


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["papers", "--help"],
        ["rank", "--help"],
        ["subscribers"],
        ["subscribers", "export"],
        ["papers"],
        ["deliveries"],
        ["confirm", "--help"],
        ["config", "check"],
        ["schedule", "--help"],
        ["send", "--help"],
        ["serve", "--help"],
    ],
    ids=" ".join,
)
def test_commands_that_do_not_rank_import_nothing_heavy(project: Path, args: list[str]) -> None:
    from digest.store import Store

    Store(project / "var" / "digest.sqlite3").close()  # `papers` reads a store, makes none
    assert loaded_by(project, *args) == []


def test_the_probe_sees_what_a_ranking_command_imports(seeded_project: Path) -> None:
    # The same probe on `digest rank`, which does need them: a probe that saw nothing would
    # pass the test above whatever the CLI imports.
    loaded = loaded_by(seeded_project, "rank", "-k", "LoRA", "--all")
    assert {"numpy", "scipy", "digest.rank.ranker"} <= set(loaded)
