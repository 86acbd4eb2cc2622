"""What `digest worker`'s tasks do, without the job queue: sweep, rank a shard, send a
batch, under a rate limit every worker shares. `digest/tasks.py` wires these into
Procrastinate; tests call them directly.

    sweep(now)             the readers whose next send time has come (from its index:
                           `Store.due_keys`, a page of keys at a time, never the whole
                           list), cut into shards of at most `[workers] shard_readers`
                           by that order: one `rank_shard` job each; and one
                           `send_batch` job per batch of retries whose time has come (or
                           pending deliveries whose job was lost)
    rank_shard(after, upto, now)
                           plans the shard's due readers (`Store.due_subscribers` of its
                           range of keys, through `send._plan`, the planner of `digest
                           send`, on the day's paper index every shard shares:
                           `dayindex`), claims them
                           `[workers] batch` at a time, and defers each claimed batch's
                           `send_batch` job in the claim's own transaction
    send_batch(ids)        leases the ids still to send (SKIP LOCKED + a session lock
                           each), sends them through `Dispatcher.deliver_ids` (the loop
                           of `digest send`), records outcomes while holding the lease

Every step is idempotent: a shard run twice finds its readers claimed (a claim moves a
reader's next send time to their next day: out of every shard of this sweep); a batch
run twice finds its deliveries sent or leased by the other (`deliver_ids` of nothing).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from digest.config import Config
from digest.dayindex import shared_index
from digest.deliver import Backend, OutgoingEmail, SendResult
from digest.dispatch import Dispatcher
from digest.frozen import FreezeCache
from digest.model import Subscriber
from digest.send import PLAN_PAGE, Readers, _claim, _plan
from digest.store.base import Connection, iso
from digest.store.readers import DueKey

#: Procrastinate's queue and task names (the jobs' rows name them).
QUEUE = "digest"
SWEEP, RANK_SHARD, SEND_BATCH, FETCH, PUBLISH = (
    "digest.sweep",
    "digest.rank_shard",
    "digest.send_batch",
    "digest.fetch",
    "digest.publish",
)
#: A pending delivery untouched this long has lost its job: the sweep defers it again.
LOST_AFTER = timedelta(minutes=10)
#: The longest pause a server's "try again in ..." sets for every worker (a reply that
#: names a day must not stop all sending for it; SendGrid's Retry-After has its own cap).
MAX_THROTTLE_PAUSE = 3600.0
#: A wait an SMTP reply names: "try again in 5 minutes", "retry after 300s", "wait 30 sec".
_HINT = re.compile(
    r"\b(?:in|after|wait(?:ing)?|for)\s+(\d{1,6}(?:\.\d+)?)\s*"
    r"(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b",
    re.IGNORECASE,
)
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0}
#: Messages a worker hands the backend at a time. A worker killed mid-chunk resends at
#: most this many (each with its Message-ID, so the receiving side sees the duplicate);
#: one message at a time costs a connection and two transactions per message (x3 slower).
SEND_CHUNK = 10
#: Replies that mean "the account is sending too fast": every worker pauses.
THROTTLED = ("429 ", "421 ", "451 ")
#: Keys of due readers a sweep reads at a time.
SWEEP_PAGE = 10_000


class WorkStore(Protocol):
    """What the tasks need beyond `Store`: `store.pg.work.PgWorkQueue`."""

    def defer_jobs(
        self,
        db: Connection,
        task: str,
        queue: str,
        args: Any,
        *,
        queueing_lock: str | None = None,
    ) -> list[int]: ...
    def defer(
        self, task: str, queue: str, args: Any, *, queueing_lock: str | None = None
    ) -> list[int]: ...
    def jobs_waiting(self, task: str) -> int: ...
    def lease_deliveries(self, ids: Sequence[str], now_iso: str) -> list[str]: ...
    def release_deliveries(self, ids: Sequence[str]) -> None: ...
    def stale_delivery_ids(
        self, now_iso: str, untouched_since_iso: str, limit: int
    ) -> list[str]: ...
    def take_send_tokens(
        self, account: str, n: int, rate: float, burst: int
    ) -> tuple[float, bool]: ...
    def pause_sending(self, account: str, seconds: float) -> None: ...


def fault_point(name: str) -> None:
    """A test's hook: when `DIGEST_FAULT_PAUSE` names this point, the first time this
    process reaches it, write `<DIGEST_FAULT_DIR>/<name>.reached` (this pid) and block on
    the FIFO `<name>.fifo` there until a writer opens it (the test SIGKILLs us instead)."""
    if os.environ.get("DIGEST_FAULT_PAUSE") != name or _FAULTS_HIT.get(name):
        return
    _FAULTS_HIT[name] = True
    where = Path(os.environ["DIGEST_FAULT_DIR"])
    (where / f"{name}.reached.tmp").write_text(str(os.getpid()))
    (where / f"{name}.reached.tmp").rename(where / f"{name}.reached")
    with open(where / f"{name}.fifo") as fifo:
        fifo.read()


_FAULTS_HIT: dict[str, bool] = {}


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What a sweep queued."""

    due: int = 0  #: readers whose next send time has come
    #: (after, up to) of each shard queued: keys of `Store.due_keys` (None: from the first)
    shards: tuple[tuple[DueKey | None, DueKey], ...] = ()
    resent: int = 0  #: deliveries queued again (retries due, lost jobs)

    def summary(self) -> str:
        return f"{self.due} due in {len(self.shards)} shards; {self.resent} to send again"


def sweep(config: Config, store: Any, now: datetime) -> SweepReport:
    """Queue the shards of the readers due now, and batches of what waits to be sent
    again; see the module docstring. Run while shards of an earlier sweep still wait, it
    queues only the resends (their readers would be planned twice)."""
    size = config.workers.shard_readers
    shards: list[tuple[DueKey | None, DueKey]] = []
    due, count = 0, 0
    start: DueKey | None = None  # the key just before the shard being counted
    key: DueKey | None = None
    if not store.jobs_waiting(RANK_SHARD):
        while page := store.due_keys(now, after=key, limit=SWEEP_PAGE):
            for key in page:
                due += 1
                count += 1
                if count == size:
                    shards.append((start, key))
                    start, count = key, 0
        if count and key is not None:
            shards.append((start, key))
    args = [{"after": list(a) if a else None, "upto": list(b), "now": iso(now)} for a, b in shards]
    store.defer(RANK_SHARD, QUEUE, args)
    stale = store.stale_delivery_ids(iso(now), iso(now - LOST_AFTER), 100 * config.workers.batch)
    store.defer(SEND_BATCH, QUEUE, _batches(stale, config.workers.batch))
    return SweepReport(due, tuple(shards), len(stale))


def _batches(ids: Sequence[str], batch: int) -> list[dict[str, Any]]:
    return [{"ids": list(ids[i : i + batch])} for i in range(0, len(ids), batch)]


@dataclass(slots=True)
class ShardReport:
    """What a ranking shard did."""

    due: int = 0
    claimed: int = 0
    empty: int = 0
    batches: int = 0
    skipped: dict[int, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.due} due, {self.claimed} claimed in {self.batches} send batches, "
            f"{self.empty} with nothing new, {len(self.skipped)} skipped"
        )


def shard_readers(store: Any, now: datetime, after: DueKey | None, upto: DueKey) -> Readers:
    """The readers of the shard (after, upto] of the due readers at `now` (keys of
    `Store.due_keys`), for the planner: a function reading them a page at a time.

    The planner reads them twice (first for the papers and keywords its index needs,
    then to rank), so the second reading keeps to the readers of the first: one who
    subscribed in between waits for the next sweep rather than be ranked on an index
    made without their keywords."""
    first: set[int] | None = None

    def pages() -> Iterator[list[Subscriber]]:
        nonlocal first
        seen, key = set[int](), after
        while found := store.due_subscribers(now, after=key, upto=upto, limit=PLAN_PAGE):
            page = [sub for _, sub in found if first is None or sub.id in first]
            seen.update(sub.id for sub in page)
            if page:
                yield page
            key = found[-1][0]
        if first is None:
            first = seen

    return pages


def rank_shard(
    config: Config,
    store: Any,
    now: datetime,
    after: DueKey | None,
    upto: DueKey,
    *,
    notes: Sequence[str] = (),
) -> ShardReport:
    """Plan and claim the due readers of the shard (after, upto] (`shard_readers`),
    deferring each claimed batch's `send_batch` job in the claim's transaction."""
    report = ShardReport()
    frozen, stored = FreezeCache(), set[str]()
    installation = store.installation_id
    batch = config.workers.batch

    def defer_sends(db: Connection, new: list[str]) -> None:
        store.defer_jobs(db, SEND_BATCH, QUEUE, _batches(new, batch))
        report.batches += 1

    readers = shard_readers(store, now, after, upto)
    planned = _plan(config, store, now, None, tuple(notes), report.skipped, readers, shared_index)
    for page in planned:
        report.due += page.due
        report.empty += page.empty
        for start in range(0, len(page.planned), batch):
            chunk = page.planned[start : start + batch]
            claims = [_claim(p, now, page.high, frozen, stored, installation) for p in chunk]
            new = set(store.claim_deliveries(claims, now, then=defer_sends))
            report.claimed += len(new)
            stored.update(k for c in claims if c.delivery_id in new for k in c.records)
            fault_point("rank_shard")
    # Those left are not due yet today (their stored time was a bound: days went by
    # without a digest), had nothing new, or cannot be read: move the first on.
    left = store.due_keys(now, after=after, upto=upto, limit=config.workers.shard_readers)
    if left:
        store.advance_next_send([i for _, i in left], now)
    return report


@dataclass(frozen=True, slots=True)
class BatchReport:
    """What a send batch did."""

    asked: int
    leased: int
    counts: dict[str, int]
    paused_reason: str = ""

    def summary(self) -> str:
        done = ", ".join(f"{v} {k}" for k, v in self.counts.items())
        line = f"{self.leased} of {self.asked} leased: {done}"
        return f"{line}; PAUSED: {self.paused_reason}" if self.paused_reason else line


def send_batch(
    config: Config, store: Any, backend: Backend, now: datetime, ids: Sequence[str]
) -> BatchReport:
    """Send the deliveries of `ids` still to send and not leased by another batch."""
    leased = store.lease_deliveries(ids, iso(now))
    try:
        dispatcher = Dispatcher(config, store, backend, now, _no_renew)
        dispatcher.deliver_ids(leased)
    finally:
        store.release_deliveries(leased)
    return BatchReport(len(ids), len(leased), dict(dispatcher.counts), dispatcher.paused)


def _no_renew(elapsed: timedelta) -> None:
    """A batch holds its leases for as long as its session lives: nothing to renew."""


def throttle_pause(result: SendResult, default: float) -> float:
    """How long a "too fast" reply pauses the account: the backend's Retry-After, else a
    wait the reply's text names (SMTP has no header for it), at most MAX_THROTTLE_PAUSE;
    else `default`."""
    if result.retry_after is not None:
        return result.retry_after
    hint = _HINT.search(result.reason)
    if hint is None:
        return default
    seconds = float(hint[1]) * _UNIT[hint[2][0].lower()]
    return min(MAX_THROTTLE_PAUSE, seconds) if seconds > 0 else default


def account_of(config: Config) -> str:
    """The sending account a rate limit is kept for: the backend and its login."""
    d = config.delivery
    if d.backend == "smtp":
        return f"smtp:{d.smtp.username}@{d.smtp.host}:{d.smtp.port}"
    if d.backend == "sendgrid":
        return f"sendgrid:{d.sendgrid.api_key_env}@{d.sendgrid.host}"
    return d.backend


class SharedRateLimit:
    """A `Backend` that takes tokens from the account's bucket in the store before each
    send (waiting when it is empty or the account is paused), and pauses the account
    for every worker when the server says it is sending too fast."""

    def __init__(
        self,
        backend: Backend,
        store: WorkStore,
        account: str,
        rate: float,
        burst: int,
        *,
        pause: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner, self.store, self.account = backend, store, account
        self.rate, self.burst, self._sleep = rate, burst, sleep
        self.pause = pause  #: seconds of a "too fast" that names no wait
        self.name = backend.name
        #: Messages handed over (and their outcomes recorded) at a time: one connection,
        #: one take from the bucket, one transaction for each SEND_CHUNK, not each message.
        self.batch = max(SEND_CHUNK, getattr(backend, "batch", 0))
        self.waited = 0.0  #: seconds this backend slept for the bucket or a pause

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        taken = False
        while not taken:  # a pause takes no tokens: ask again when it ends
            wait, taken = self.store.take_send_tokens(
                self.account, len(emails), self.rate, self.burst
            )
            if wait > 0:
                self.waited += wait
                self._sleep(wait)
        results = self.inner.send(emails)
        throttled = [r for r in results if r.status == "retry" and r.reason.startswith(THROTTLED)]
        if throttled:
            wait = max(throttle_pause(r, self.pause) for r in throttled)
            self.store.pause_sending(self.account, wait)
        fault_point("send_batch")
        return results

    def close(self) -> None:
        self.inner.close()
