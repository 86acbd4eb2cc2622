"""What the PostgreSQL store does that a SQLite file cannot: several processes (hosts) on
one database. Leases as session advisory locks (a SIGKILLed holder frees its lease),
migrations under an advisory lock (processes starting together on a new database),
claims racing on two connections (each delivery claimed exactly once, in its month's
partition), one clear line when the URL is bad or the server is down, and the CLI
running a day on a `[store] url`.
The contract both backends share is tests/test_store_contract.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from digest.bulk import ImportRow
from digest.cli import cli
from digest.errors import ConfigError, StoreError
from digest.model import Claim, Keyword, Profile
from digest.store import open_store
from digest.store.pg.schema import PG_MIGRATIONS
from digest.store.schema import SCHEMA_VERSION
from tests.conftest import ROOT

T0 = datetime(2025, 10, 16, 7, tzinfo=UTC)
TTL = timedelta(minutes=2)

_HOLDER = """
import sys
from datetime import UTC, datetime, timedelta
from digest.store import open_store
with open_store(sys.argv[1]) as store:
    assert store.acquire_lease("send", "child:1:1", datetime.now(UTC), timedelta(minutes=2)) is None
    print("held", flush=True)
    sys.stdin.read()  # until killed
"""


def in_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    """`work(i)` for i < n, started together; their results (an exception re-raised)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # handed to the test's thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


def test_every_schema_version_has_a_postgresql_step() -> None:
    """A SQLite migration without its PostgreSQL step fails here."""
    version = 0
    while version in PG_MIGRATIONS:
        version = PG_MIGRATIONS[version][0]
    assert version == SCHEMA_VERSION


def test_a_killed_holder_frees_its_lease(pg_cluster: Any) -> None:
    url = pg_cluster.create_database("leases")
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        text=True,
    ) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "held\n"
            with open_store(url) as store:
                assert store.acquire_lease("send", "parent:2:2", T0, TTL) == "child:1:1"
                child.kill()  # SIGKILL: no release, no clean close
                child.wait(timeout=30)
                # The server ends the dead session as soon as it sees the socket closed.
                deadline = time.monotonic() + 30
                while (holder := store.acquire_lease("send", "parent:2:2", T0, TTL)) is not None:
                    assert time.monotonic() < deadline, f"still held by {holder}"
                    time.sleep(0.02)
                store.release_lease("send", "parent:2:2")
        finally:
            child.kill()


def test_processes_starting_together_on_a_new_database_migrate_once(pg_cluster: Any) -> None:
    url = pg_cluster.create_database("migrations")

    def open_and_read(_: int) -> tuple[int, str]:
        with open_store(url) as store:
            return store.schema_version, store.installation_id

    got = in_threads(4, open_and_read)
    assert len(set(got)) == 1 and got[0][0] == SCHEMA_VERSION


def test_claims_racing_on_two_connections_land_once_in_month_partitions(pg_cluster: Any) -> None:
    url = pg_cluster.create_database("claims")
    profile = Profile("default", keywords=(Keyword("LoRA"),))
    rows = [ImportRow(i, f"r{i}@example.org", profile) for i in range(1, 301)]
    with open_store(url) as store:
        list(store.upsert_subscribers(rows, T0, confirmed=True))
    days = [date(2025, 10, 31), date(2025, 11, 1)]
    claims = [
        Claim(f"d{sid}-{day}", sid, day, None, T0, "{}", ("p1",), 1, {"item": "{}"})
        for sid in range(1, 301)
        for day in days
    ]

    def claim_all(i: int) -> list[str]:
        with open_store(url) as store:
            return store.claim_deliveries(claims[::-1] if i else claims, T0)

    first, second = in_threads(2, claim_all)
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(c.delivery_id for c in claims)
    with open_store(url) as store:
        parts = store._db.execute(
            "SELECT c.relname, count(d.*) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid"
            " LEFT JOIN deliveries d ON d.tableoid = c.oid"
            " WHERE i.inhparent = 'deliveries'::regclass GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert [tuple(p) for p in parts] == [
            ("deliveries_2025_10", 300),
            ("deliveries_2025_11", 300),
        ]
        assert store.frozen_items(["item"]) == {"item": "{}"}


def test_a_bad_url_is_one_line_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        open_store("postgresql://ada:s3cret@127.0.0.1/db?nonsense=1")
    message = str(caught.value)
    assert "s3cret" not in message and "\n" not in message
    assert message.startswith("postgresql://ada:***@127.0.0.1/db?nonsense=1: not a PostgreSQL URL")


def test_a_server_that_is_down_is_one_line_without_the_password(refused_port: int) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(f"postgresql://ada:s3cret@127.0.0.1:{refused_port}/db", timeout=2)
    message = str(caught.value)
    assert "s3cret" not in message and "\n" not in message
    assert message.startswith(f"postgresql://ada:***@127.0.0.1:{refused_port}/db: cannot connect")
    assert "refused" in message


def test_the_cli_runs_a_day_on_a_postgresql_store(pg_cluster: Any, project: Path) -> None:
    """`[store] url` selects PostgreSQL: subscribe, subscribers, run (ingest, send,
    publish) and send again, end to end through the CLI, on one seed capture."""
    url = pg_cluster.create_database("cli").replace("postgres@", "postgres:s3cret@")
    config = project / "config.toml"
    text = config.read_text().replace('path = "var/digest.sqlite3"', f'url = "{url}"')
    config.write_text(text.replace('path = "seeds/*.txt"', 'path = "seeds/001_*.txt"'))

    def digest(*args: str, now: str = "2025-10-16T08:00:00Z") -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["--config", str(config), "--now", now, *args])
        return result.exit_code, result.output

    assert digest("subscribe", "ada@example.org", "-k", "LoRA, diffusion", "--confirmed")[0] == 0
    code, out = digest("subscribers", "--json")
    assert code == 0 and [json.loads(line)["email"] for line in out.splitlines()] == [
        "ada@example.org"
    ]
    code, out = digest("run")
    assert code == 0, out
    assert "send: 1 sent" in out and "s3cret" not in out
    code, out = digest("send", now="2025-10-17T08:00:00Z")
    assert code == 0 and "1 with nothing new" in out
    assert len(list((project / "var" / "outbox").rglob("*.eml"))) == 1
    with open_store(url) as store:
        assert [d.state for d in store.deliveries()] == ["sent"]
        assert not (project / "var" / "digest.sqlite3").exists()


def test_the_cli_names_a_server_that_is_down_in_one_line(project: Path, refused_port: int) -> None:
    url = f"postgresql://ada:s3cret@127.0.0.1:{refused_port}/digest"
    result = CliRunner().invoke(
        cli, ["--config", str(project / "config.toml"), "--db", url, "send"]
    )
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: postgresql://ada:***@127.0.0.1:")
    assert "s3cret" not in result.output


def test_claimers_meeting_in_opposite_orders_wait_instead_of_deadlocking(pg_cluster: Any) -> None:
    """Another host holds reader 1's row of the day (uncommitted) and then takes reader
    2's, while this claim, given readers 2 then 1, waits: claims insert in one order
    (reader 1 first), so this one waits at reader 1 holding nothing the other needs. In
    the given order it would hold reader 2 and wait for 1: a deadlock, one side failed."""
    url = pg_cluster.create_database("deadlock")
    day = date(2025, 10, 16)
    profile = Profile("default", keywords=(Keyword("LoRA"),))
    with open_store(url) as store:
        list(store.upsert_subscribers([ImportRow(i, f"r{i}@x.org", profile) for i in (1, 2)], T0))
        store.claim_deliveries([Claim("warm", 1, day - timedelta(1), None, T0, "{}", ())], T0)
    other = psycopg.connect(url)  # the other host, mid-claim
    insert = (
        "INSERT INTO deliveries (id, subscriber_id, digest_date, state, window_end, content,"
        " created_at, updated_at) VALUES (%s, %s, %s, 'pending', now(), '{}', now(), now())"
    )
    other.execute(insert, ("other-1", 1, day))
    got: list[Any] = []
    with open_store(url) as store:
        mine = [Claim(f"mine-{sid}", sid, day, None, T0, "{}", ()) for sid in (2, 1)]
        claimer = threading.Thread(target=lambda: got.append(store.claim_deliveries(mine, T0)))
        claimer.start()
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        deadline = time.monotonic() + 30
        with psycopg.connect(url) as watcher:
            while watcher.execute(waiting).fetchone() != (1,):  # the claim waits at reader 1
                assert time.monotonic() < deadline, "the claim never waited"
                time.sleep(0.01)
        other.execute(insert, ("other-2", 2, day))
        other.commit()
        other.close()
        claimer.join()
        assert got == [[]]  # the other host had both
        assert sorted(d.id for d in store.deliveries()) == ["other-1", "other-2", "warm"]


def test_a_version_12_database_is_upgraded_and_keeps_its_papers(pg_cluster: Any) -> None:
    """A database made before paper vectors (PostgreSQL support began at 12) gets
    `paper_vectors` in place (`update_from_12_to_13`), its papers untouched, and its
    readers' next send times (`update_from_14_to_15`)."""
    from digest.store.pg.connection import PgConnection
    from digest.store.pg.schema import VERSION_TABLE, update_from_0_to_12

    url = pg_cluster.create_database("from12")
    with psycopg.connect(url, autocommit=True) as raw:
        db = PgConnection(raw)
        with raw.transaction():
            db.execute(VERSION_TABLE)
            update_from_0_to_12(db)
            db.execute("INSERT INTO schema_version (version) VALUES (12)")
            db.execute(
                "INSERT INTO papers (id, folded_title, title, first_seen, last_seen)"
                " VALUES ('p1', 'old', 'Old', ?, ?)",
                (T0, T0),
            )
            db.execute(
                "INSERT INTO subscribers (id, email, status, timezone, send_at, created_at,"
                " confirmed_at) VALUES (1, 'a@x.org', 'confirmed', 'Asia/Tokyo', '08:00', ?, ?)",
                (T0, T0),
            )
            db.execute(
                "INSERT INTO subscriber_profiles (subscriber_id, name, keywords)"
                " VALUES (1, 'p', '[]')"
            )
            # `digest worker` made the token buckets itself before version 15
            db.execute(
                "CREATE TABLE send_rate (account text PRIMARY KEY, tokens double precision"
                " NOT NULL, at timestamptz NOT NULL, paused_until timestamptz)"
            )
            db.execute("INSERT INTO send_rate VALUES ('acct', 0, now(), now() + interval '1 hour')")
    with open_store(url) as store:
        assert store.schema_version == SCHEMA_VERSION >= 15
        # step 15 filled the reader's next send time: 08:00 in Tokyo on the day confirmed
        assert store.due_keys(T0) == [("2025-10-15T23:00:00+00:00", 1)]
        wait, taken = store.take_send_tokens("acct", 1, 0, 10)  # type: ignore[attr-defined]
        assert not taken and wait > 3000  # the bucket's pause is kept
        assert [p.id for p in store.papers_lacking_vectors("m")] == ["p1"]
        store.keep_paper_vectors([("p1", b"\x00<")], "m")
        assert store.paper_vectors(["p1"], "m") == {"p1": b"\x00<"}


def test_a_new_database_has_the_token_buckets_without_a_worker(pg_cluster: Any) -> None:
    """`send_rate` is the schema's (step 15), not made by the first worker to start."""
    with open_store(pg_cluster.create_database("buckets")) as store:
        assert store.take_send_tokens("acct", 1, 1.0, 10) == (0.0, True)  # type: ignore[attr-defined]
