"""Issue 14 item 3: what `digest serve` refuses, one test per bullet, through the real
server on 127.0.0.1 (uvicorn in a thread) over a real site directory and SQLite store."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import Config, load_config
from digest.errors import ConfigError
from digest.rank import make_profile
from digest.serve import RunningServer, make_server, serve_in_thread
from digest.store import Store
from digest.tokens import load_secret, make_token
from tests.conftest import copy_project

NOW = datetime(2025, 10, 16, 9, tzinfo=UTC)


@dataclass
class Served:
    config: Config
    site: Path
    server: RunningServer
    manage_token: str

    def get(self, target: str, method: str = "GET") -> tuple[int, dict[str, str], str]:
        """One raw request (the target is sent as it is: no client-side normalising)."""
        host, port = self.server.address
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            conn.endheaders()
            response = conn.getresponse()
            headers = {k.lower(): v for k, v in response.getheaders()}
            return response.status, headers, response.read().decode("utf-8", "replace")
        finally:
            conn.close()


def _start(config: Config, site: Path) -> tuple[RunningServer, object]:
    server = make_server(config, config.store_path, lambda: NOW, port=0, site_dir=site)
    return server, serve_in_thread(server)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = copy_project(tmp_path_factory.mktemp("serve-hardening"))
    config = load_config(root / "config.toml", required=True)
    with Store(config.store_path) as store:
        sub, _ = store.upsert_subscriber(
            "ada@example.org", make_profile("p", ("LoRA",)), now=NOW, confirmed=True
        )
    token = make_token(load_secret(config), "manage", sub.id, sub.email, NOW)
    site = root / "site"
    (site / "sub").mkdir(parents=True)
    (site / "index.html").write_text("<h1>archive</h1>")
    (site / "sub" / "page.html").write_text("<p>inside</p>")
    (site / ".publish-manifest.json").write_text("{}")
    (site / ".lock").write_text("")
    (site / "sub" / ".hidden").write_text("secret")
    (site / ".git").mkdir()
    (site / ".git" / "config").write_text("[core]")
    outside = root / "outside.txt"
    outside.write_text("not part of the site")
    (site / "out.txt").symlink_to(outside)
    (site / "out-dir").symlink_to(root / "var", target_is_directory=True)
    (site / "in.html").symlink_to(site / "sub" / "page.html")
    (site / "loop").symlink_to(site / "loop")
    server, thread = _start(config, site)
    try:
        yield Served(config, site, server, token)
    finally:
        server.stop()
        thread.join()  # type: ignore[attr-defined]


def test_no_directory_listing(served: Served) -> None:
    assert served.get("/sub/")[0] == 404
    assert served.get("/sub")[0] == 404
    assert served.get("/sub/page.html")[0] == 200


@pytest.mark.parametrize(
    "target",
    ["/.publish-manifest.json", "/.lock", "/sub/.hidden", "/.git/config", "/%2Egit/config"],
)
def test_no_dotfiles(served: Served, target: str) -> None:
    status, _, body = served.get(target)
    assert status == 404 and "secret" not in body and "[core]" not in body


def test_no_symlinks_out_of_the_site(served: Served) -> None:
    assert served.get("/out.txt")[0] == 404
    assert served.get("/out-dir/digest.sqlite3")[0] == 404
    assert served.get("/in.html")[0] == 200  # a link that stays inside is a file of the site
    assert served.get("/loop")[0] == 404  # a symlink loop: ELOOP, not a 500


@pytest.mark.parametrize(
    "target",
    [
        "/%00",
        "/index.html%00.txt",
        "/sub/%00/page.html",
        "/../config.toml",
        "/..%2f..%2fconfig.toml",
        "/sub/../index.html",
        "/sub/..",
        "/%2e%2e/var/secret",
        "/sub%5c..%5cindex.html",
        "/" + "a" * 5000,
    ],
)
def test_nul_bytes_and_dot_dot_are_404(served: Served, target: str) -> None:
    status, headers, _ = served.get(target)
    assert status == 404, target
    assert headers["x-content-type-options"] == "nosniff"


def test_token_pages_are_no_store_and_no_referrer(served: Served) -> None:
    for target in (
        f"/manage?token={served.manage_token}",
        "/unsubscribe?token=bad",
        "/confirm?token=bad",
        "/subscribe",
    ):
        _, headers, _ = served.get(target)
        assert headers["cache-control"] == "no-store", target
        assert headers["referrer-policy"] == "no-referrer", target


def test_csp_and_nosniff_on_every_answer(served: Served) -> None:
    targets = [
        ("/index.html", "GET", 200),
        ("/nothing", "GET", 404),
        ("/index.html", "POST", 405),
        ("/preview?format=pdf", "GET", 400),
        ("/unsubscribe?token=bad", "POST", 400),
        ("/_web/nothing.css", "GET", 404),
    ]
    for target, method, expected in targets:
        status, headers, _ = served.get(target, method)
        assert status == expected, target
        assert "default-src 'none'" in headers["content-security-policy"], target
        assert "frame-ancestors 'none'" in headers["content-security-policy"], target
        assert headers["x-content-type-options"] == "nosniff", target


def test_preview_is_rate_limited_per_client(served: Served) -> None:
    # A server of its own: the limit this test uses up is then nobody else's.
    server, thread = _start(served.config, served.site)
    try:
        own = Served(served.config, served.site, server, "")
        statuses = [own.get("/preview?format=pdf")[0] for _ in range(121)]
        status, headers, body = own.get("/preview?keywords=x")
        json_status = own.get("/subscribe/preview?keywords=x")[0]
    finally:
        server.stop()
        thread.join()  # type: ignore[attr-defined]
    assert statuses == [400] * 120 + [429]
    assert status == 429 and "too many previews" in body and json_status == 429
    assert "default-src 'none'" in headers["content-security-policy"]


@pytest.mark.parametrize("inside", ["", "var"])
def test_a_directory_holding_the_store_or_secret_is_refused(served: Served, inside: str) -> None:
    root = served.config.path.parent
    with pytest.raises(ConfigError) as caught:
        make_server(served.config, served.config.store_path, lambda: NOW, site_dir=root / inside)
    message = str(caught.value)
    assert "will not serve a directory that holds" in message and "\n" not in message
    result = CliRunner().invoke(
        cli,
        ["--config", str(served.config.path), "serve", "--port", "0", "--site", str(root / inside)],
    )
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ") and "will not serve" in result.stderr


def test_the_servers_own_answers_carry_the_security_headers(served: Served) -> None:
    """uvicorn answers some requests itself, before the application sees them: a request
    h11 cannot parse (400) and one over the connection limit (503). They carry the same
    headers as every page."""
    import socket

    with socket.create_connection(served.server.address, timeout=30) as sock:
        sock.sendall(b"NOT AN HTTP REQUEST\r\n\r\n")
        raw = b""
        while chunk := sock.recv(4096):
            raw += chunk
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    assert head.startswith("http/1.1 400"), head
    assert "x-content-type-options: nosniff" in head
    assert "content-security-policy: default-src 'none'" in head

    # One connection allowed: this very request is the one too many.
    full = make_server(
        served.config,
        served.config.store_path,
        lambda: NOW,
        port=0,
        site_dir=served.site,
        max_connections=1,
    )
    thread = serve_in_thread(full)
    try:
        status, headers, _ = Served(served.config, served.site, full, "").get("/index.html")
    finally:
        full.stop()
        thread.join()
    assert status == 503
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_each_security_header_is_sent_once(served: Served) -> None:
    conn = http.client.HTTPConnection(*served.server.address, timeout=30)
    try:
        conn.request("GET", "/index.html")
        answer = conn.getresponse()
        answer.read()
        names = [k.lower() for k, _ in answer.getheaders()]
    finally:
        conn.close()
    for name in ("content-security-policy", "x-content-type-options", "referrer-policy"):
        assert names.count(name) == 1, (name, names)
