"""`digest serve` on 127.0.0.1 (a real HTTP server in a thread) and `preview --open`."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import Config
from digest.serve import make_server, serve_in_thread
from digest.store import Store

#: A few hours after the seeds arrived: the preview ranks what arrived in the last day.
NOW = datetime(2025, 10, 16, 9, tzinfo=UTC)


@pytest.fixture
def config(seeded_config: Config) -> Config:
    """This module's project holds the seeds (ingested once per session)."""
    return seeded_config


@pytest.fixture
def server(config: Config, tmp_path: Path) -> Iterator[str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>archive</h1>")
    srv = make_server(config, config.store_path, lambda: NOW, port=0, site_dir=site)
    thread = serve_in_thread(srv)
    assert srv.address[0] == "127.0.0.1"
    try:
        yield srv.url
    finally:
        srv.stop()
        thread.join()


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
    assert status == 200 and body.startswith("# papers-digest — 2025-10-16")


def test_bad_preview_requests_get_400(server: str) -> None:
    status, _, body = get(f"{server}/preview")
    assert status == 400 and "no keyword to search for" in body
    status, _, body = get(f"{server}/preview?keywords=x&limit=many")
    assert status == 400 and "limit must be a number" in body
    for limit in ("99999999999999999999", "1001", "-1", "nan", "1e3", "٣"):
        status, _, body = get(f"{server}/preview?keywords=x&limit={urllib.parse.quote(limit)}")
        assert status == 400 and "limit must be" in body, limit
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


# -- subscription links over HTTP ---------------------------------------------------------


def post(
    url: str, body: bytes = b"List-Unsubscribe=One-Click", headers: dict[str, str] | None = None
) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def reader(config: Config, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A pending subscriber: (confirm token, unsubscribe token)."""
    from digest.rank import make_profile
    from digest.subscriptions import subscribe
    from digest.tokens import load_secret, make_token

    monkeypatch.setenv("DIGEST_SECRET", "test-secret-0123456789abcdef-0123")
    with Store(config.store_path) as store:
        result = subscribe(config, store, "ada@example.org", make_profile("p", ("LoRA",)), NOW)
    sub = result.subscriber
    confirm_token = result.confirm_link.split("token=")[1]
    return confirm_token, make_token(load_secret(config), "unsubscribe", sub.id, sub.email, NOW)


def _status(config: Config) -> str:
    with Store(config.store_path) as store:
        return store.subscribers()[0].status


def test_confirm_is_a_button_then_a_post(
    server: str, reader: tuple[str, str], config: Config
) -> None:
    confirm_token, _ = reader
    status, _, body = get(f"{server}/confirm?token={confirm_token}")
    assert status == 200 and '<form method="post" action="confirm?token=' in body
    assert _status(config) == "pending"  # a link scanner's GET changes nothing
    assert post(f"{server}/confirm?token={confirm_token}", b"")[0] == 200
    assert _status(config) == "confirmed"


def test_one_click_unsubscribe(server: str, reader: tuple[str, str], config: Config) -> None:
    _, token = reader
    status, _, body = get(f"{server}/unsubscribe?token={token}")
    assert status == 200 and "Stop sending" in body and _status(config) == "pending"
    status, body = post(
        f"{server}/unsubscribe?token={token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200 and "no more digests" in body
    assert _status(config) == "unsubscribed"
    assert post(f"{server}/unsubscribe?token={token}")[0] == 200  # again: still fine


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "unsubscribe.1.²³.abc",
        "unsubscribe.1.99.é",
        "unsubscribe." + "9" * 30 + ".1.a",
        "unsubscribe.1." + "1" * 5000 + ".a",
        "unsubscribe.1.1." + "0" * 40,
    ],
)
def test_bad_or_forged_tokens_get_400_and_change_nothing(
    server: str, reader: tuple[str, str], config: Config, token: str
) -> None:
    status, body = post(f"{server}/unsubscribe?token={urllib.parse.quote(token)}")
    assert status == 400 and "token" in body
    status, _, _ = get(f"{server}/manage?token={urllib.parse.quote(token)}")
    assert status == 400
    assert _status(config) == "pending"


def test_odd_content_length_is_a_400_and_changes_nothing(
    server: str, reader: tuple[str, str], config: Config
) -> None:
    # RFC 9112 6.3: an invalid Content-Length is an unrecoverable framing error.
    _, token = reader
    import http.client

    host, port = server.removeprefix("http://").split(":")
    for length in ("abc", "-1"):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.putrequest("POST", f"/unsubscribe?token={token}")
        conn.putheader("Content-Length", length)
        conn.endheaders()
        assert conn.getresponse().status == 400
        conn.close()
    assert _status(config) == "pending"


# -- the web stack: headers, limits, logs ----------------------------------------------------


def headers_of(url: str) -> dict[str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return {k.lower(): v for k, v in e.headers.items()}


def test_security_headers_on_every_page(server: str) -> None:
    for path in ("/index.html", "/preview?keywords=speech", "/subscribe", "/nothing", "/preview"):
        headers = headers_of(server + path)
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert "server" not in headers


def test_token_pages_are_not_cached(server: str, reader: tuple[str, str]) -> None:
    confirm_token, unsubscribe_token = reader
    for path in (f"/confirm?token={confirm_token}", f"/unsubscribe?token={unsubscribe_token}"):
        assert headers_of(server + path)["cache-control"] == "no-store"
    assert "no-store" not in headers_of(server + "/index.html").get("cache-control", "")


def test_a_body_over_the_limit_is_refused(server: str, reader: tuple[str, str]) -> None:
    _, token = reader
    status, _ = post(f"{server}/unsubscribe?token={token}", b"x" * (64 * 1024))
    assert status == 413


def test_a_slow_client_is_cut_off(config: Config, tmp_path: Path) -> None:
    import socket

    srv = make_server(
        config,
        config.store_path,
        lambda: NOW,
        port=0,
        site_dir=tmp_path / "site",
        request_deadline=0.2,
    )
    thread = serve_in_thread(srv)
    try:
        with socket.create_connection(srv.address, timeout=30) as sock:
            sock.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n")  # and never the end
            # The server closes the connection (recv returns b"") instead of waiting on.
            assert sock.recv(1024) == b""
        with socket.create_connection(srv.address, timeout=30) as sock:
            assert sock.recv(1024) == b""  # one that sends nothing at all
        status, _, _ = get(srv.url + "/subscribe")  # a whole request is still served
        assert status == 200
    finally:
        srv.stop()
        thread.join()


def test_the_log_never_holds_a_token(
    config: Config, tmp_path: Path, reader: tuple[str, str]
) -> None:
    lines: list[str] = []
    srv = make_server(
        config, config.store_path, lambda: NOW, port=0, site_dir=tmp_path / "site", log=lines.append
    )
    thread = serve_in_thread(srv)
    confirm_token, token = reader
    try:
        get(f"{srv.url}/confirm?token={confirm_token}")
        post(f"{srv.url}/unsubscribe?token={token}&x=1")
    finally:
        srv.stop()
        thread.join()
    assert lines == [
        '127.0.0.1 "GET /confirm?token=[redacted]" 200',
        '127.0.0.1 "POST /unsubscribe?token=[redacted]&x=1" 200',
    ]
