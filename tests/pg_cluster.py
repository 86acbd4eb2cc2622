"""A throwaway PostgreSQL cluster for the tests: initdb in a temp dir, one server on
127.0.0.1 at a free port (and a unix socket in the same dir), stopped and deleted at the end.

Debian's server binaries live in /usr/lib/postgresql/<version>/bin (not on PATH);
`make test` installs the `postgresql` package when it can. `initdb` refuses to run as
root, so as root the cluster is made and run by the `postgres` user (`runuser`), which
the package creates. Startup is waited for by `pg_ctl start -w` (it polls the server
itself) and then one bounded connect loop: no sleeps as synchronisation.

`missing_reason()` says why no cluster can be started here (the tests skip with it).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Settings for a cluster whose data does not matter: no fsync, small, quiet.
_SERVER_OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    " -c shared_buffers=16MB -c max_connections=40 -c log_min_messages=warning"
)
#: Seconds `pg_ctl start -w` and the first connection may take on a busy machine.
_START_TIMEOUT = 60


def server_bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin directory, or None."""
    versions = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    versions.sort(key=lambda bindir: int(bindir.parent.name) if bindir.parent.name.isdigit() else 0)
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'papers-digest[postgres]')"
    if server_bindir() is None:
        return (
            "no PostgreSQL server binaries (initdb); `make test` installs Debian's "
            "postgresql package when run as root"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run initdb as"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway cluster; `url(db)` names one of its databases."""

    bindir: Path
    root: Path
    port: int = 0
    _runas: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._runas, *args], capture_output=True, text=True, check=False, timeout=120
        )

    def start(self) -> None:
        made = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr.strip()}")
        for _ in range(3):  # a free port can be taken between the probe and the bind
            self.port = _free_port()
            started = self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.root / "server.log"),
                "-w",
                "-t",
                str(_START_TIMEOUT),
                "-o",
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} {_SERVER_OPTIONS}",
                "start",
            )
            if started.returncode == 0:
                self._wait_for_connections()
                return
        log = (self.root / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} {log}")

    def _wait_for_connections(self) -> None:
        import psycopg

        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=5).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # bounded retry: pg_ctl -w said it is up

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> Cluster:
    """Make and start a cluster (as `postgres` when we are root); the caller stops it."""
    bindir = server_bindir()
    assert bindir is not None, missing_reason()
    root = Path(tempfile.mkdtemp(prefix="digest-pg-"))
    runas: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        runas = ["runuser", "-u", "postgres", "--"]
    cluster = Cluster(bindir, root, _runas=runas)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster
