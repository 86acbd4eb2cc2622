"""`digest serve` on 127.0.0.1 (a real HTTP server in a thread) and `preview --open`."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import pipeline
from digest.cli import cli
from digest.config import Config
from digest.serve import make_server, serve_in_thread
from digest.store import Store

NOW = datetime(2025, 12, 31, 8, tzinfo=UTC)


@pytest.fixture
def server(config: Config, tmp_path: Path) -> Iterator[str]:
    with Store(config.store_path) as store:
        pipeline.ingest(config, store)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>archive</h1>")
    srv = make_server(config, config.store_path, lambda: NOW, port=0, site_dir=site)
    serve_in_thread(srv)
    host, port = srv.server_address[:2]
    assert host == "127.0.0.1"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.shutdown()
        srv.server_close()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def test_live_preview(server: str) -> None:
    status, kind, body = get(f"{server}/preview?keywords=speech,TTS&limit=3")
    assert (status, kind) == (200, "text/html; charset=utf-8")
    assert "Speech" in body and body.count('class="item"') == 3
    status, kind, body = get(f"{server}/preview?keywords=speech&format=markdown")
    assert status == 200 and body.startswith("# papers-digest — 2025-12-31")


def test_bad_preview_requests_get_400(server: str) -> None:
    status, _, body = get(f"{server}/preview")
    assert status == 400 and "no keyword to search for" in body
    status, _, body = get(f"{server}/preview?keywords=x&limit=many")
    assert status == 400 and "limit must be a number" in body
    status, _, body = get(f"{server}/preview?keywords=%3Cscript%3E&format=pdf")
    assert status == 400 and "<script>" not in body


def test_archive_files_and_no_escape_from_the_site(server: str) -> None:
    assert get(f"{server}/index.html")[2] == "<h1>archive</h1>"
    status, _, _ = get(f"{server}/../../config.toml")
    assert status == 404


def test_preview_open_writes_a_file_and_launches(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("click.launch", lambda target, **kw: opened.append(target) or 0)
    args = ["--config", str(project / "config.toml"), "--now", "2025-12-31T08:00:00+00:00"]
    runner = CliRunner()
    assert runner.invoke(cli, [*args, "ingest"]).exit_code == 0
    result = runner.invoke(cli, [*args, "preview", "-k", "speech", "--format", "html", "--open"])
    assert result.exit_code == 0, result.output
    target = project / "var" / "preview" / "preview-20251231-080000.html"
    assert result.stdout == f"wrote {target}\n" and opened == [str(target)]
    assert "Speech" in target.read_text()
