"""`digest worker` on a PostgreSQL store, end to end with real processes and servers: a
throwaway PostgreSQL (`pg_cluster`), an SMTP sink (aiosmtpd on 127.0.0.1), three worker
slots and one `digest schedule`, 5,000 readers of the seed papers. One worker is SIGKILLed
during ranking (after its shard's first claims) and one mid-batch (after the server took a
message, before its outcome was recorded); each is restarted, as systemd would. Then:
every reader got exactly one digest (any resend has the same Message-ID), none is left
unsent, and the shared rate limit held across the workers.

The kill points are chosen by `work.fault_point` (a marker file, then a block on a FIFO),
not by timing; every wait is bounded and says what it waited for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest.bulk import ImportRow
from digest.config import load_config
from digest.model import Keyword, Profile
from digest.store import open_store
from digest.work import SEND_CHUNK
from tests.conftest import ROOT
from tests.smtp_servers import Handler, SmtpServer

pytest.importorskip("procrastinate", reason="procrastinate is the [postgres] extra")

#: The issue's 5,000 readers (1,000 a shard, 250 a batch: both kill points fall mid-run).
#: The end-to-end test is marked `cluster`: `make test` runs it after the suite, through
#: `make cluster-proof` (about 100 s, past the suite's two minutes on two cores);
#: DIGEST_CLUSTER_READERS=400 makes a quicker run of it while working on the workers.
READERS = int(os.environ.get("DIGEST_CLUSTER_READERS", "5000"))
#: Messages a second shared by every worker: below what three workers send unthrottled
#: here, so the bucket is what paces them (the run takes at least (READERS - BURST) / RATE).
RATE, BURST = 150.0, 30
SECRET = "x" * 40
TOPICS = ["LoRA", "diffusion", "speech", "reinforcement learning", "retrieval", "agents"]


class Timed(Handler):
    """Accepts every message and records when it arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def accept(self, server: Any, session: Any, envelope: Any) -> str:
        reply = super().accept(server, session, envelope)
        with self._lock:
            self.times.append(time.monotonic())
        return reply


def tails(logs: Path) -> str:
    """The end of each process's log, for a failure's message."""
    return "\n".join(f"== {p.name}\n{p.read_text()[-1500:]}" for p in sorted(logs.glob("*.log")))


def wait_for(what: str, done: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def cluster_project(
    pg_cluster: Any, project: Path
) -> Iterator[tuple[Path, str, SmtpServer, Timed]]:
    url = pg_cluster.create_database("workers")
    handler = Timed()
    with SmtpServer(handler) as sink:
        config = project / "config.toml"
        text = config.read_text().replace('path = "var/digest.sqlite3"', f'url = "{url}"')
        text = text.replace('backend = "outbox"', 'backend = "smtp"')
        config.write_text(
            text
            + f"""
[delivery.smtp]
host = "127.0.0.1"
port = {sink.port}
[workers]
shard_readers = {READERS // 5}
batch = {READERS // 20}
rate = {RATE}
burst = {BURST}
stalled_after_seconds = 2
"""
        )
        yield config, url, sink, handler


def _fill(config_path: Path, url: str) -> None:
    from digest import pipeline

    config = load_config(config_path, required=True)
    now = datetime.now(UTC)
    rows = [
        ImportRow(
            i,
            f"r{i}@example.org",
            Profile("p", keywords=(Keyword(TOPICS[i % 6]), Keyword(TOPICS[(i // 6) % 6]))),
            timezone="UTC",
            send_at="00:00",
        )
        for i in range(1, READERS + 1)
    ]
    with open_store(url) as store:
        pipeline.ingest(config, store, now=now)
        list(store.upsert_subscribers(rows, now, confirmed=True))


@pytest.mark.cluster
def test_three_workers_two_killed_every_reader_gets_one_digest(
    cluster_project: tuple[Path, str, SmtpServer, Timed], tmp_path: Path
) -> None:
    config, url, sink, handler = cluster_project
    _fill(config, url)
    faults = tmp_path / "faults"
    faults.mkdir()
    for point in ("rank_shard", "send_batch"):
        os.mkfifo(faults / f"{point}.fifo")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIGEST_SECRET": SECRET}
    env["DIGEST_FAULT_DIR"] = str(faults)
    base = [sys.executable, "-m", "digest", "--config", str(config), "--allow-local-links"]
    procs: list[subprocess.Popen[bytes]] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *args: str, fault: str = "") -> subprocess.Popen[bytes]:
        child_env = {**env, "DIGEST_FAULT_PAUSE": fault}
        with open(logs / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                [*base, *args], env=child_env, stdout=log, stderr=subprocess.STDOUT
            )
        procs.append(proc)
        return proc

    def killed_at(point: str, proc: subprocess.Popen[bytes]) -> None:
        marker = faults / f"{point}.reached"
        wait_for(f"a worker to reach {point}", lambda: marker.exists() or proc.poll() is not None)
        assert proc.poll() is None, tails(logs)
        assert int(marker.read_text()) == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    try:
        ranker = start("w1", "worker", fault="rank_shard")
        start("schedule", "schedule", "--tick", "0.5")
        killed_at("rank_shard", ranker)  # its shard: a batch claimed and queued, 3 not yet
        sender = start("w2", "worker", fault="send_batch")
        killed_at("send_batch", sender)  # a message the server took, its outcome unrecorded
        for name in ("w1b", "w2b", "w3"):
            start(name, "worker")

        def all_sent() -> bool:
            with open_store(url) as store:
                return len(store.deliveries("sent")) == READERS

        wait_for(f"{READERS} deliveries sent ({tails(logs)})", all_sent, timeout=420)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    by_reader: dict[str, set[str]] = defaultdict(set)
    for received in sink.received:
        by_reader[received.rcpt_tos[0]].add(received.message["Message-ID"])
    assert len(by_reader) == READERS, "some readers got no digest"
    assert all(len(ids) == 1 for ids in by_reader.values()), "a reader got two digests"
    resent = len(sink.received) - READERS
    # The mid-batch kill came after the server took a chunk, before its outcomes were
    # recorded: that chunk goes again (same Message-IDs), nothing else does.
    assert 1 <= resent <= SEND_CHUNK, f"{resent} resends (at most one chunk)"
    with open_store(url) as store:
        states = {d.state for d in store.deliveries()}
        assert states == {"sent"} and len(store.deliveries()) == READERS
    times = sorted(handler.times)
    assert_rate_held(times)
    assert times[-1] - times[0] >= (READERS - BURST) / RATE * 0.95, "the bucket did not pace"


def assert_rate_held(times: list[float]) -> None:
    """No stretch of time saw more messages than the bucket allows: its size, plus the
    rate over the stretch, plus one chunk (a worker takes a chunk's tokens at once and
    then sends it as fast as the server takes it, so a stretch can end on a whole chunk
    earned a moment later); plus a small margin for the network between the two clocks
    and the scheduling of five processes on two cores. (With the bucket at twice this
    rate the workers put 170 messages in half a second: more than this allows.)"""
    for i, start in enumerate(times):
        for span in (0.5, 2.0):
            j = i
            while j < len(times) and times[j] - start <= span:
                j += 1
            allowed = BURST + SEND_CHUNK + RATE * span * 1.1 + 5
            assert j - i <= allowed, f"{j - i} messages in {span} s (at most {allowed:.0f})"


def test_a_throttled_account_pauses_every_worker(pg_cluster: Any) -> None:
    """The bucket refills on the server's clock and a 421/451/429 pauses the account
    for everyone: two stores (hosts) see one bucket and one pause."""
    url = pg_cluster.create_database("bucket")
    from digest.tasks import install

    install(url)
    with open_store(url) as one, open_store(url) as two:
        assert one.take_send_tokens("acct", 10, 1.0, 10) == (0.0, True)  # type: ignore[attr-defined]
        wait, taken = two.take_send_tokens("acct", 5, 1.0, 10)  # type: ignore[attr-defined]
        assert taken and 4.0 < wait <= 5.0  # 5 in debt at 1 a second
        one.pause_sending("acct", 30)  # type: ignore[attr-defined]
        wait, taken = two.take_send_tokens("acct", 1, 1.0, 10)  # type: ignore[attr-defined]
        assert not taken and 29 < wait <= 30
        two.pause_sending("acct", 5)  # type: ignore[attr-defined]  # a shorter one: 30 stands
        assert one.take_send_tokens("acct", 1, 0, 10)[0] > 25  # type: ignore[attr-defined]


def test_a_duplicate_send_batch_finds_nothing_to_send(pg_cluster: Any, project: Path) -> None:
    """Two batches given the same ids at once split them (SKIP LOCKED + leases); run
    again after, a batch finds them sent."""
    url = pg_cluster.create_database("batches")
    from digest.model import Claim
    from digest.tasks import install

    install(url)
    now = datetime.now(UTC)
    profile = Profile("p", keywords=(Keyword("LoRA"),))
    with open_store(url) as one, open_store(url) as two:
        list(one.upsert_subscribers([ImportRow(i, f"r{i}@x.org", profile) for i in (1, 2, 3)], now))
        ids = one.claim_deliveries(
            [Claim(f"d{i}", i, now.date(), None, now, "{}", ()) for i in (1, 2, 3)], now
        )
        first = one.lease_deliveries(ids, now.isoformat())  # type: ignore[attr-defined]
        assert first == ["d1", "d2", "d3"]
        assert two.lease_deliveries(ids, now.isoformat()) == []  # type: ignore[attr-defined]
        from digest.model import Outcome

        one.record_attempts([Outcome("d1", "sent")], now)
        one.release_deliveries(first)  # type: ignore[attr-defined]
        assert two.lease_deliveries(ids, now.isoformat()) == ["d2", "d3"]  # type: ignore[attr-defined]


def test_worker_on_a_sqlite_store_is_one_clear_line(project: Path) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(project / "config.toml"), "worker"])
    assert result.exit_code == 2
    assert result.output.startswith("error: digest worker needs a PostgreSQL store")
    assert "Traceback" not in result.output and len(result.output.splitlines()) == 1


def test_an_smtp_421_pauses_the_account_for_every_worker(
    pg_cluster: Any, smtp_server: SmtpServer
) -> None:
    """A 421 from the server (too many messages) pauses the account in the store: another
    host's next take waits for it, taking nothing."""
    from dataclasses import replace

    from digest.config import DeliveryConfig, SmtpConfig
    from digest.deliver import make_backend
    from digest.tasks import install
    from digest.work import SharedRateLimit
    from tests.factories import make_email
    from tests.smtp_servers import Transient

    url = pg_cluster.create_database("throttle")
    install(url)
    smtp_server.reset(Transient(code=421, first=1))
    smtp = SmtpConfig(host=smtp_server.host, port=smtp_server.port)
    delivery = replace(DeliveryConfig(), backend="smtp", smtp=smtp)
    slept: list[float] = []
    with open_store(url) as one, open_store(url) as two:
        backend = SharedRateLimit(
            make_backend(delivery),
            one,  # type: ignore[arg-type]
            "acct",
            0,
            10,
            pause=45.0,  # [workers] throttle_pause_seconds: the reply names no wait
            sleep=slept.append,
        )
        try:
            [result] = backend.send([make_email(1)])
        finally:
            backend.close()
        assert result.status == "retry" and result.reason.startswith("421")
        assert slept == []  # it was not paused before
        wait, taken = two.take_send_tokens("acct", 1, 0, 10)  # type: ignore[attr-defined]
        assert not taken and 40 < wait <= 45


def test_a_sweep_reads_the_due_readers_only_and_a_shard_claims_its_own(
    pg_cluster: Any, config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep cuts the readers whose next send time has come (not the ones due later
    today, nor the paused) into shards by that order; a shard plans and claims its own
    readers, which leaves them out of every later sweep of the day; run again, it finds
    nothing to claim. The day's paper index is made by the first shard, for all."""
    from dataclasses import replace

    from digest import dayindex, work

    builds: list[int] = []
    build = dayindex.build
    monkeypatch.setattr(
        dayindex, "build", lambda papers, blobs: builds.append(1) or build(papers, blobs)
    )
    from digest.model import Paper
    from digest.tasks import install

    url = pg_cluster.create_database("sweep")
    install(url)
    config = replace(config, workers=replace(config.workers, shard_readers=2, batch=10))
    now = datetime(2025, 10, 16, 9, tzinfo=UTC)
    lora = Paper("2510.00001", "LoRA adapters", "Low-rank adapters.", first_seen=now)
    profile = Profile("p", keywords=(Keyword("LoRA"),))
    with open_store(url) as store:
        store.add_papers([lora], arrived_at=now - timedelta(hours=1))
        rows = [
            ImportRow(i, f"r{i}@example.org", profile, "UTC", at)
            for i, at in enumerate(["08:00", "07:00", "08:30", "08:00", "23:00"], 1)
        ]
        list(store.upsert_subscribers(rows, now - timedelta(days=1), confirmed=True))
        store.set_paused(4, True, now)
        report = work.sweep(config, store, now)
        key = {
            i: (f"2025-10-15T{t}:00+00:00", i) for i, t in enumerate(("08:00", "07:00", "08:30"), 1)
        }
        late = ("2025-10-15T23:00:00+00:00", 5)  # not due until 23:00 today: found, moved on
        assert report.due == 4 and report.shards == ((None, key[1]), (key[1], late))
        assert work.sweep(config, store, now).shards == ()  # shards wait: no second set
        first = work.rank_shard(config, store, now, *report.shards[0])
        assert (first.due, first.claimed) == (2, 2)
        assert {d.subscriber_id for d in store.deliveries()} == {1, 2}
        assert store.due_keys(now) == [key[3], late]
        again = work.rank_shard(config, store, now, *report.shards[0])
        assert (again.due, again.claimed) == (0, 0)
        second = work.rank_shard(config, store, now, *report.shards[1])
        assert (second.due, second.claimed) == (1, 1)
        assert store.due_keys(now) == []  # 5 moved on to its time today
        assert [i for _, i in store.due_keys(now + timedelta(hours=14))] == [5]
        assert builds == [1] and store.day_index(dayindex.index_key(None)) is not None


def test_a_wait_the_reply_names_is_the_pause() -> None:
    """SMTP has no Retry-After: a 421/451 that names its wait ("try again in 5 minutes")
    pauses that long (at most an hour); one that names none pauses the configured time;
    a backend's own Retry-After (SendGrid) comes first."""
    from digest.deliver import SendResult
    from digest.work import MAX_THROTTLE_PAUSE, throttle_pause

    def pause(reason: str, retry_after: float | None = None) -> float:
        return throttle_pause(SendResult("d", "retry", reason, retry_after), 60.0)

    assert pause("451 4.7.1 Greylisted, please try again in 5 minutes") == 300
    assert pause("421 4.7.0 Too many messages; retry after 90s") == 90
    assert pause("450 4.2.1 Rate limited, wait 30 sec") == 30
    assert pause("421 4.7.0 Deferred for 2 hours") == MAX_THROTTLE_PAUSE
    assert pause("421 4.3.2 Service shutting down, try again later") == 60
    assert pause("451 4.7.1 Try again in 0 seconds") == 60
    assert pause("429 Too Many Requests", retry_after=12.5) == 12.5
