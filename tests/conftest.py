"""Shared fixtures: the repo's paths, fresh and pre-seeded projects, and fake servers.

Projects and stores (function-scoped unless said otherwise)

    project          Path    a copy of the embedded default (config.toml + seeds/) in
                             tmp_path; nothing ingested, no store yet
    config           Config  `project`'s config.toml, loaded
    store            Store   an empty store at tmp_path/var/digest.sqlite3
    seeded_template  SeededTemplate (session)  the seeds ingested ONCE per session with the
                             repo's config.toml (`pipeline.ingest`, arriving at SEED_ARRIVAL):
                             331 papers. Read-only;
                             `seeded_template.copy_to(dir)` gives a private copy (for a
                             module- or class-scoped fixture)
    seeded_project   Path    `project`, but with var/digest.sqlite3 already holding the
                             seeds: a copy of the template in tmp_path
    seeded_config    Config  `seeded_project`'s config.toml, loaded
    seeded_store     Store   `seeded_config.store_path`, open (closed after the test)

`project` and `seeded_project` both fill tmp_path: use one of them in a test, not both
(and `store` with `project` only). For example:

    def test_send_to_one_reader(seeded_config: Config, seeded_store: Store) -> None:
        reader = confirmed_subscriber(seeded_config, seeded_store)   # tests/factories.py
        report = send(seeded_config, seeded_store, backend, DAY1)

Fake servers on 127.0.0.1, started once per session and reset before each test (and
again after it, which releases any request a slow reply still holds)

    http_server            FixtureServer   no routes, no requests (http_fixture_server.py)
    sendgrid_api           SendgridServer  empty script, no requests (sendgrid_server.py)
    smtp_server            SmtpServer      plain SMTP, a fresh `Recording` handler; swap it
                                           with `smtp_server.reset(Transient(...))`
    smtp_starttls_server   SmtpServer      STARTTLS offered with `tls.server`; AUTH for
                                           user "digest", password "s3cret"
    smtp_ssl_server        SmtpServer      implicit TLS (SMTPS) with `tls.server`
    tls                    TlsPair (session)  the certificate pair those two serve
    refused_port           int     a port on 127.0.0.1 that refuses connections (bound,
                                   not listening, for the whole test)

Browser (session): `browser` is Debian's headless chromium through playwright, launched
once; a test opens its own context (`browser.new_context()`) and closes it. The test
skips when playwright or /usr/bin/chromium is missing.

PostgreSQL (session): `pg_cluster` is a throwaway cluster on 127.0.0.1 (tests/pg_cluster.py),
started once per worker and deleted at the end; `pg_cluster.create_database(name)` gives a
module its own empty database (URL). Skips with the reason when no server is installed.

The server classes stay usable as context managers for a test that needs its own.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import settings

# Helper modules whose plain `assert`s should explain themselves like a test's do.
pytest.register_assert_rewrite("tests.factories", "tests.golden")

from digest import pipeline  # noqa: E402
from digest.config import Config, load_config  # noqa: E402
from digest.store import Store  # noqa: E402
from tests.http_fixture_server import FixtureServer  # noqa: E402
from tests.pg_cluster import Cluster, missing_reason, start_cluster  # noqa: E402
from tests.sendgrid_server import SendgridServer  # noqa: E402
from tests.smtp_servers import SmtpServer, TlsPair, tls_pair  # noqa: E402

# CI runs each property test on the same examples every time (a red CI should be a bug
# in the code, not the luck of a draw); local runs explore new examples.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")

# The semantic layer (`papers-digest[semantic]`, which `make test` installs) stays off in
# every test but its own (tests/test_semantic.py turns it on): with it on, each ingest of
# the seeds would embed 331 papers (~25 CPU-s), and the lexical tests' expected output
# would change. Subprocesses (CLI tests) inherit it.
os.environ["DIGEST_SEMANTIC"] = "off"

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: Debian's chromium (make test installs it when it can) and the flags for this machine:
#: headless, no sandbox as root, and no background traffic to a network we do not have.
CHROMIUM = Path("/usr/bin/chromium")
#: axe-core's options for every page a browser test checks: every rule, but only the
#: violations gathered and sent back (axe's passes and "incomplete" lists are what the
#: default spends much of its time serialising; nothing here reads them).
AXE_OPTIONS: dict[str, object] = {"resultTypes": ["violations"]}
#: ... and in the dark scheme, the rules that read colours: the rest of axe's findings do
#: not depend on the scheme (the same markup), and were found in the light pass.
AXE_DARK_OPTIONS: dict[str, object] = {
    **AXE_OPTIONS,
    "runOnly": {"type": "rule", "values": ["color-contrast", "link-in-text-block"]},
}


def axe_options(scheme: str) -> dict[str, object]:
    """axe-core's options for a page shown in `scheme` ("light" or "dark")."""
    return AXE_DARK_OPTIONS if scheme == "dark" else AXE_OPTIONS


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Distinct papers in seeds/ (364 entries).
SEED_PAPERS = 331
#: When the template's papers arrived in its store (what a first digest calls new is what
#: arrived in the day before it): early on the day of the Oct 16 capture.
SEED_ARRIVAL = datetime(2025, 10, 16, 6, tzinfo=UTC)
SMTP_USERS = {"digest": "s3cret"}


#: The test files that take longest (wall, measured on 2 idle cores): they start first.
#: `--dist loadfile` gives each worker whole files in collection order (see
#: `pytest_configure`), so a long file collected last would run while the other worker
#: sits idle; started first, the short files fill in around them and both workers finish
#: together. Longest first; a file not listed keeps its place after these.
LONG_POLES = (
    "test_site_browser.py",
    "test_cli.py",
    "test_web_browser.py",
    "test_send.py",
    "test_publish.py",
    "test_publish_incremental.py",
    "test_bench_day.py",
    "test_faults.py",
    "test_email.py",
    "test_serve.py",
)


def pytest_configure(config: pytest.Config) -> None:
    """Keep the collection order under xdist: its default (`--loadscope-reorder`) sends
    the files with the most tests first, which puts one-test long poles last."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cluster",
        action="store_true",
        help="also run the tests marked `cluster`: the workers' end-to-end proof at the "
        "issue's size (5,000 readers, ~100 s: `make cluster-proof`, which `make test` runs "
        "after the suite)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The `cluster` tests left out unless --cluster; the LONG_POLES files first (longest
    first), every other file after them in its usual order; tests keep their order within
    a file."""
    if not config.getoption("--cluster"):
        left = [item for item in items if item.get_closest_marker("cluster")]
        if left:
            config.hook.pytest_deselected(items=left)
            items[:] = [item for item in items if not item.get_closest_marker("cluster")]
    rank = {name: i for i, name in enumerate(LONG_POLES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def copy_project(dest: Path) -> Path:
    """The embedded default (config.toml + seeds/) copied into `dest`; returns `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "config.toml", dest / "config.toml")
    shutil.copytree(SEEDS, dest / "seeds")
    return dest


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "var" / "digest.sqlite3") as s:
        yield s


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the embedded default (config.toml + seeds/) in a temporary directory."""
    return copy_project(tmp_path)


@pytest.fixture
def config(project: Path) -> Config:
    return load_config(project / "config.toml", required=True)


# -- the seeds, ingested once per session ---------------------------------------------------


@dataclass(frozen=True)
class SeededTemplate:
    """A project directory whose store already holds the seeds; never changed after setup."""

    root: Path  #: config.toml, seeds/ and var/digest.sqlite3

    def copy_to(self, dest: Path) -> Path:
        """A private copy of the project (store included) in `dest`; returns `dest`."""
        shutil.copytree(self.root, dest, dirs_exist_ok=True)
        return dest


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> SeededTemplate:
    root = copy_project(tmp_path_factory.mktemp("seeded-template"))
    config = load_config(root / "config.toml", required=True)
    with Store(config.store_path) as store:
        report = pipeline.ingest(config, store, now=SEED_ARRIVAL)
    assert report.errors == () and report.counts.new == SEED_PAPERS, report
    # The copies must be the whole database: closing the last connection checkpoints WAL.
    assert not config.store_path.with_name(config.store_path.name + "-wal").exists()
    return SeededTemplate(root)


@pytest.fixture
def seeded_project(seeded_template: SeededTemplate, tmp_path: Path) -> Path:
    """Like `project`, with var/digest.sqlite3 already holding the 331 seed papers."""
    return seeded_template.copy_to(tmp_path)


@pytest.fixture
def seeded_config(seeded_project: Path) -> Config:
    return load_config(seeded_project / "config.toml", required=True)


@pytest.fixture
def seeded_store(seeded_config: Config) -> Iterator[Store]:
    with Store(seeded_config.store_path) as s:
        yield s


# -- fake servers: one per session, reset for each test ---------------------------------------

_Server = TypeVar("_Server", FixtureServer, SendgridServer, SmtpServer)


def _fresh(server: _Server) -> Iterator[_Server]:
    """The session's `server`, reset for the test and again after it (which also ends any
    request a slow reply still holds, so the suite never waits for a stall)."""
    server.reset()
    yield server
    server.reset()


@pytest.fixture(scope="session")
def _http_server_for_session() -> Iterator[FixtureServer]:
    with FixtureServer(lifetime=None) as server:
        yield server


@pytest.fixture
def http_server(_http_server_for_session: FixtureServer) -> Iterator[FixtureServer]:
    yield from _fresh(_http_server_for_session)


@pytest.fixture(scope="session")
def _sendgrid_for_session() -> Iterator[SendgridServer]:
    with SendgridServer() as api:
        yield api


@pytest.fixture
def sendgrid_api(_sendgrid_for_session: SendgridServer) -> Iterator[SendgridServer]:
    yield from _fresh(_sendgrid_for_session)


@pytest.fixture(scope="session")
def tls() -> TlsPair:
    return tls_pair()


@pytest.fixture(scope="session")
def _smtp_for_session() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="session")
def _smtp_starttls_for_session(tls: TlsPair) -> Iterator[SmtpServer]:
    with SmtpServer(tls=tls.server, users=SMTP_USERS) as server:
        yield server


@pytest.fixture(scope="session")
def _smtp_ssl_for_session(tls: TlsPair) -> Iterator[SmtpServer]:
    with SmtpServer(implicit_tls=tls.server) as server:
        yield server


@pytest.fixture
def smtp_server(_smtp_for_session: SmtpServer) -> Iterator[SmtpServer]:
    yield from _fresh(_smtp_for_session)


@pytest.fixture
def smtp_starttls_server(_smtp_starttls_for_session: SmtpServer) -> Iterator[SmtpServer]:
    yield from _fresh(_smtp_starttls_for_session)


@pytest.fixture
def smtp_ssl_server(_smtp_ssl_for_session: SmtpServer) -> Iterator[SmtpServer]:
    yield from _fresh(_smtp_ssl_for_session)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium)")
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 bound by this test and never listened on: connecting to it is
    refused, and no other process can take it while the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the session (per xdist worker)."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
