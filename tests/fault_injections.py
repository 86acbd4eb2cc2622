"""The kinds of fault of `tests/faults.py`: each injects its fault into a fresh project,
reruns the command cleanly and checks the invariants (`fault_harness`)."""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property, partial
from pathlib import Path

from digest.model import Paper
from tests import fault_harness as h
from tests.sendgrid_server import Reply, SendgridServer, server_error, too_many_requests
from tests.smtp_servers import (
    Dropping,
    Handler,
    Recording,
    Rejecting,
    RejectingSender,
    SilentServer,
    SmtpServer,
    Transient,
)

Injection = Callable[[h.Tally, random.Random, "Templates", Path], None]
#: When the clean rerun after a delivery fault runs: past every backoff and Retry-After cap
#: (a day) so what was left to retry goes out; the next day's digests are checked too.
RERUN = h.NOW + timedelta(days=1, hours=2)


class Templates:
    """Projects built once per suite run and copied for each round."""

    def __init__(self, root: Path, ingested_project: Path | None = None) -> None:
        """`ingested_project`: the seeds already ingested at INGEST_AT (e.g. the test
        session's seeded template), so the suite does not ingest them again."""
        self.root = root
        self._ingested_project = ingested_project

    @cached_property
    def bare(self) -> Path:
        """config.toml and seeds/, no store."""
        return h.new_project(self.root / "bare")

    @cached_property
    def readers(self) -> Path:
        """`bare` with READERS confirmed but nothing ingested (for the scheduler)."""
        project = h.copy_tree(self.bare, self.root / "readers")
        h.add_readers(project)
        return project

    @cached_property
    def ingested_project(self) -> Path:
        """`bare` after a clean `digest ingest` at INGEST_AT."""
        if self._ingested_project is not None:
            return self._ingested_project
        project = h.copy_tree(self.bare, self.root / "ingested")
        code, _, err = h.invoke(project, "ingest", now=h.INGEST_AT)
        assert code == 0, err
        return project

    @cached_property
    def ingested(self) -> list[Paper]:
        """The papers of a clean `digest ingest`."""
        return h.papers_of(self.ingested_project / "var" / "digest.sqlite3")

    @cached_property
    def seeded(self) -> Path:
        """The seeds ingested and READERS confirmed (outbox delivery)."""
        project = h.new_project(self.root / "seeded")
        shutil.copytree(self.ingested_project / "var", project / "var")
        h.add_readers(project)
        return project

    def copy(self, name: str, dest: Path) -> Path:
        return h.copy_tree(getattr(self, name), dest)


# -- SIGKILL at a random point --------------------------------------------------------------


def _killed(tally: h.Tally, kind: str, outcome: h.Killed) -> None:
    if outcome.killed:
        tally.kills[kind] += 1
    else:  # finished before the drawn event: a clean run, which must have succeeded
        tally.check("unkilled run succeeded", outcome.code in (0, 1), outcome.stderr)


def kill_ingest(tally: h.Tally, rng: random.Random, t: Templates, work: Path) -> None:
    project = t.copy("bare", work)
    sources = len(list((project / "seeds").glob("*.txt")))
    _killed(tally, "ingest", h.run_and_kill(project, ["ingest"], rng.randint(0, sources)))
    code, _, err = h.invoke(project, "ingest", now=h.INGEST_AT)
    tally.check("rerun exit 0", code == 0, err)
    h.check_papers(tally, project / "var" / "digest.sqlite3", t.ingested)


def kill_send(tally: h.Tally, rng: random.Random, t: Templates, work: Path) -> None:
    project = t.copy("seeded", work)
    # START, the page of claims planned, the batch delivered (then the run ends).
    _killed(tally, "send", h.run_and_kill(project, ["send"], rng.randint(0, 2)))
    code, _, err = h.invoke(project, "send", now=h.NOW + timedelta(minutes=10))
    tally.check("rerun exit 0", code == 0, err)
    ids, mids = h.outbox_messages(project / "var" / "outbox")
    h.check_digests(tally, project / "var" / "digest.sqlite3", ids, message_ids=mids)


def kill_publish(tally: h.Tally, rng: random.Random, t: Templates, work: Path) -> None:
    project = t.copy("seeded", work)
    # After START, or at a random share of the pages planned (the child reports done/total).
    share = rng.choice([0.0, rng.random()])
    _killed(tally, "publish", h.run_and_kill(project, ["publish"], -1, share=share))
    code, _, err = h.invoke(project, "publish")
    tally.check("rerun exit 0", code == 0, err)
    h.check_site(tally, project, work.with_name(work.name + "-clean"))


#: `digest schedule` with the clock frozen at NOW for its jobs (APScheduler keeps the real
#: one): on start the fetch and subscriber-sync jobs run at once, the send jobs once both
#: have; each finished job prints `JOB <id>`, and `IDLE` once every send job has run.
SCHEDULE = f"""
import sys
from datetime import UTC, datetime
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_SCHEDULER_STARTED
import digest.schedule as schedule
from digest.cli import main

REAL = datetime
FROZEN = REAL.fromisoformat({h.NOW.isoformat()!r})

class Clock(REAL):
    @classmethod
    def now(cls, tz=None):
        return FROZEN

schedule.datetime = Clock
done = set()

def say(text):
    print(text, file=sys.stderr, flush=True)

def on_start(scheduler):
    def started(event):
        say("READY")
        for job_id in ("fetch", "sync-subscribers"):
            scheduler.modify_job(job_id, next_run_time=REAL.now(UTC))
    def finished(event):
        done.add(event.job_id)
        say(f"JOB {{event.job_id}}")
        sends = [j for j in scheduler.get_jobs() if j.id.startswith("send:")]
        first = {{"fetch", "sync-subscribers"}}
        if event.job_id in first and first <= done:
            for job in sends:
                scheduler.modify_job(job.id, next_run_time=REAL.now(UTC))
        if sends and all(j.id in done for j in sends):
            say("IDLE")
    scheduler.add_listener(started, EVENT_SCHEDULER_STARTED)
    scheduler.add_listener(finished, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

schedule.run_scheduler.__kwdefaults__["on_start"] = on_start
print("START", file=sys.stderr, flush=True)
sys.argv = ["digest", *sys.argv[1:]]
main()
"""


def kill_schedule(tally: h.Tally, rng: random.Random, t: Templates, work: Path) -> None:
    project = t.copy("readers", work)
    # START, READY, the fetch and sync jobs, one send job per reader.
    events = 4 + len(h.READERS)
    run = partial(h.run_and_kill, project, ["schedule"], script=SCHEDULE)
    _killed(tally, "schedule", run(rng.randint(0, events - 1), marker=("START", "READY", "JOB")))
    # The clean rerun: a new scheduler takes over, runs every job, and is stopped by us.
    clean = run(0, marker=("IDLE",))
    tally.check("rerun ran every job", clean.killed, clean.stderr)
    h.check_papers(tally, project / "var" / "digest.sqlite3", t.ingested)
    ids, mids = h.outbox_messages(project / "var" / "outbox")
    h.check_digests(tally, project / "var" / "digest.sqlite3", ids, message_ids=mids)
    h.check_site(tally, project, work.with_name(work.name + "-clean"))


# -- SMTP and SendGrid ----------------------------------------------------------------------


def _delivery_project(t: Templates, work: Path, backend: str, table: str) -> Path:
    project = t.copy("seeded", work)
    path = project / "config.toml"
    text = path.read_text().replace('backend = "outbox"', f'backend = "{backend}"')
    path.write_text(text + table)
    return project


def _smtp_table(port: int) -> str:
    return f'\n[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\ntimeout = 0.5\n'


def smtp_fault(
    make: Callable[[random.Random], Handler],
    label: str,
    blamed: Callable[[], frozenset[str]] = frozenset,
) -> Injection:
    def inject(tally: h.Tally, rng: random.Random, t: Templates, work: Path) -> None:
        with SmtpServer(make(rng)) as server:
            project = _delivery_project(t, work, "smtp", _smtp_table(server.port))
            code, _, err = h.invoke(project, "send")
            tally.faults[f"smtp {label}"] += 1
            tally.check("one line, no traceback", "Traceback" not in err and code in (0, 1, 2), err)
            got = list(server.received)
            server.reset(Recording())
            code, _, err = h.invoke(project, "send", now=RERUN)
            tally.check("rerun exit 0", code == 0 or bool(blamed()), err)
            got += server.received
        _check_received(tally, project, got, blamed())

    return inject


def _check_received(tally: h.Tally, project: Path, got: list, blamed: frozenset[str]) -> None:
    ids = [r.message["X-Digest-Delivery"] for r in got]
    mids = [r.message["Message-ID"] for r in got]
    h.check_digests(
        tally, project / "var" / "digest.sqlite3", ids, message_ids=mids, readers_fault=blamed
    )


def smtp_stall(tally: h.Tally, rng: random.Random, t: Templates, work: Path) -> None:
    with SilentServer() as silent:
        stalled = silent.port
        project = _delivery_project(t, work, "smtp", _smtp_table(stalled))
        code, _, err = h.invoke(project, "send")
        tally.faults["smtp stall"] += 1
        tally.check("a stall is a retry, one line", code == 1 and "Traceback" not in err, err)
    with SmtpServer(Recording()) as server:
        text = (project / "config.toml").read_text()
        (project / "config.toml").write_text(
            text.replace(f"port = {stalled}", f"port = {server.port}")
        )
        code, _, err = h.invoke(project, "send", now=RERUN)
        tally.check("rerun exit 0", code == 0, err)
        _check_received(tally, project, list(server.received), frozenset())


def sendgrid_fault(
    make: Callable[[random.Random], list[Reply]], label: str, stalls: int = 0
) -> Injection:
    """`stalls`: replies held until the client gives up; what the stand-in records for
    them is not a delivery the sender saw (a real API may have kept it: at-least-once)."""

    def inject(tally: h.Tally, rng: random.Random, t: Templates, work: Path) -> None:
        with SendgridServer(replies=make(rng)) as api:
            table = f'\n[delivery.sendgrid]\nhost = "{api.url}"\ntimeout = 0.5\n'
            project = _delivery_project(t, work, "sendgrid", table)
            env = {"SENDGRID_API_KEY": api.api_key}
            code, _, err = h.invoke(project, "send", env=env)
            tally.faults[f"sendgrid {label}"] += 1
            tally.check("one line, no traceback", "Traceback" not in err and code in (0, 1, 2), err)
            hung = api.wait_for_hangups(stalls) if stalls else []
            ids, problems = list(api.accepted_ids), list(api.problems)
            for delivery_id in hung:
                if delivery_id in ids:
                    ids.remove(delivery_id)
            api.reset()  # releases a held reply; its request was not accepted
            code, _, err = h.invoke(project, "send", now=RERUN, env=env)
            tally.check("rerun exit 0", code == 0, err)
            ids += api.accepted_ids
            problems += api.problems
            tally.check("the API saw valid requests only", not problems, str(problems))
        h.check_digests(tally, project / "var" / "digest.sqlite3", [i for i in ids if i])

    return inject


# -- the file system and the store ----------------------------------------------------------


def full_disk(tally: h.Tally, rng: random.Random, t: Templates, work: Path) -> None:
    command = rng.choice(["ingest", "send", "publish"])
    project = t.copy("bare" if command == "ingest" else "seeded", work)
    store = project / "var" / "digest.sqlite3"
    size = store.stat().st_size if store.exists() else 0
    limit = size + rng.randint(0, 256 * 1024)
    outcome = h.run_and_kill(project, [command], -1, fsize=limit)
    tally.faults[f"full disk ({command})"] += 1
    tally.check(
        "full disk: exit 0 or 2, one line",
        outcome.code in (0, 2),
        f"{outcome.code} {outcome.stderr}",
    )
    code, _, err = h.invoke(project, command, now=h.INGEST_AT if command == "ingest" else h.NOW)
    tally.check("rerun exit 0", code == 0, err)
    if command == "ingest":
        h.check_papers(tally, store, t.ingested)
    elif command == "send":
        ids, mids = h.outbox_messages(project / "var" / "outbox")
        h.check_digests(tally, store, ids, message_ids=mids)
    else:
        h.check_site(tally, project, work.with_name(work.name + "-clean"))


def locked_store(tally: h.Tally, rng: random.Random, t: Templates, work: Path) -> None:
    project = t.copy("seeded", work)
    store = project / "var" / "digest.sqlite3"
    holder = sqlite3.connect(store, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        outcome = h.run_and_kill(project, ["send"], -1, busy_timeout=0.2)
    finally:
        holder.rollback()
        holder.close()
    tally.faults["locked store"] += 1
    tally.check(
        "locked: exit 2, one line naming the store",
        outcome.code == 2 and "locked" in outcome.stderr and outcome.stderr.count("\n") == 2,
        outcome.stderr,
    )
    code, _, err = h.invoke(project, "send")
    tally.check("rerun exit 0", code == 0, err)
    ids, mids = h.outbox_messages(project / "var" / "outbox")
    h.check_digests(tally, store, ids, message_ids=mids)


def read_only_store(tally: h.Tally, rng: random.Random, t: Templates, work: Path) -> None:
    project = t.copy("seeded", work)
    var = project / "var"
    with h.read_only(var):
        papers = h.invoke(project, "papers", "--json")
        sent = h.invoke(project, "send")
    tally.faults["read-only store"] += 1
    tally.check("read-only: reads work", papers[0] == 0 and papers[1].count("\n") > 300, papers[2])
    tally.check(
        "read-only: send is exit 2, one line", sent[0] == 2 and sent[2].count("\n") == 1, sent[2]
    )
    code, _, err = h.invoke(project, "send")
    tally.check("rerun exit 0", code == 0, err)
    ids, mids = h.outbox_messages(var / "outbox")
    h.check_digests(tally, var / "digest.sqlite3", ids, message_ids=mids)


def _one_reader() -> frozenset[str]:
    return frozenset({h.READERS[1][0]})


INJECTIONS: dict[str, Injection] = {
    "kill-ingest": kill_ingest,
    "kill-send": kill_send,
    "kill-publish": kill_publish,
    "kill-schedule": kill_schedule,
    "smtp-421": smtp_fault(lambda r: Transient(421, first=r.randint(1, 3)), "421"),
    "smtp-451": smtp_fault(lambda r: Transient(451, first=r.randint(1, 5)), "451"),
    "smtp-530": smtp_fault(lambda r: RejectingSender(530, stage="RCPT"), "530"),
    "smtp-550-sender": smtp_fault(lambda r: RejectingSender(550), "550 sender"),
    "smtp-550-reader": smtp_fault(
        lambda r: Rejecting(550, {h.READERS[1][0]}), "550 one reader", _one_reader
    ),
    "smtp-drop-mid-data": smtp_fault(lambda r: Dropping(first=r.randint(1, 3)), "drop mid-DATA"),
    "smtp-stall": smtp_stall,
    "sendgrid-429-inf": sendgrid_fault(lambda r: [too_many_requests(float("inf"))], "429 inf"),
    "sendgrid-429-huge": sendgrid_fault(
        lambda r: [too_many_requests(10.0 ** r.randint(7, 300))], "429 huge Retry-After"
    ),
    "sendgrid-429-reset": sendgrid_fault(
        lambda r: [too_many_requests(reset=10 ** r.randint(11, 30))], "429 huge reset"
    ),
    "sendgrid-401": sendgrid_fault(lambda r: [Reply(401, {"errors": []})], "401"),
    "sendgrid-5xx": sendgrid_fault(
        lambda r: [server_error(r.choice([500, 502, 503]))] * r.randint(1, 3), "5xx"
    ),
    "sendgrid-timeout": sendgrid_fault(lambda r: [Reply(202, delay=60.0)], "timeout", stalls=1),
    "full-disk": full_disk,
    "locked-store": locked_store,
    "read-only-store": read_only_store,
}
