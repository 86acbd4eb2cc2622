"""Issue 14's small ones, through the CLI: source errors reach the operator and not the
readers, devices and FIFOs are refused, read-only commands make no store, a huge --limit
is one line, and exit codes say 0 done, 1 done with failures, 2 bad input."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from digest.config import load_config
from digest.pipeline import SOURCE_FAILED
from digest.rank import make_profile
from digest.store import Store
from digest.subscriptions import subscribe

from .test_cli import NOW, invoke


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET", "test-secret-0123456789abcdef-0123")


def test_a_failed_source_is_the_operators_news_not_the_readers(project: Path) -> None:
    private = project / "private-dir-of-the-operator"
    private.mkdir()
    os.mkfifo(private / "capture.txt")  # a source that cannot be read
    with (project / "config.toml").open("a") as f:
        f.write('\n[[sources]]\nname = "broken"\nkind = "listing"\n')
        f.write('path = "private-dir-of-the-operator/capture.txt"\n')
    config = load_config(project / "config.toml", required=True)
    with Store(config.store_path) as store:
        speech = make_profile("speech", ("speech", "TTS"))
        then = datetime.fromisoformat(NOW) - timedelta(days=1)
        subscribe(config, store, "ada@example.org", speech, then, confirmed=True)
    code, out, err = invoke(project, "run", "--json")
    assert code == 1, err  # done, with a failure to look at
    assert "private-dir-of-the-operator" in err  # the operator is told where
    report = json.loads(out)
    assert report["send"]["sent"] == 1 and report["exit_code"] == 1
    (eml,) = config.delivery.outbox_dir.glob("*.eml")
    mail = eml.read_text()
    assert "private-dir-of-the-operator" not in mail and str(project) not in mail
    assert SOURCE_FAILED.split(",")[0] in mail


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_ingest_refuses_devices_and_fifos(project: Path, tmp_path: Path, kind: str) -> None:
    path = Path("/dev/zero")
    if kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    code, _, err = invoke(project, "ingest", str(path))
    assert code == 2 and "not a regular file" in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_papers_without_a_config_makes_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["papers"])
    assert result.exit_code == 2 and "no store here yet" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("limit", ["99999999999999999999", "0", "-5"])
def test_a_huge_limit_is_one_line(project: Path, limit: str) -> None:
    code, _, err = invoke(project, "rank", "-k", "LoRA", "--limit", limit)
    assert code == 2 and err.startswith(f"error: --limit {limit}: must be between 1 and")
    assert err.count("\n") == 1
