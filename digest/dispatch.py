"""The deliver half of `digest send`: claimed digests rendered and handed to the backend.

Two ways in, one loop:

- `Dispatcher.fresh`: the digests this run has just claimed (their claims committed),
  rendered from the planner's own `Digest` objects: no read back from the store;
- `Dispatcher.pending`: every other pending delivery and every retry whose time has
  come (a run killed after claiming, a backend that said "later"), read from the store a
  page at a time and thawed from their frozen content.

Both render through `render.email.digest_email`; the frozen content is exactly what the
planner's digest freezes to, so a resend after a crash is the same body either way
(tests compare the two). Outcomes are recorded after each batch, before the next one goes.
"""

from __future__ import annotations

import time as time_module
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.config import Config
from digest.deliver import Backend, OutgoingEmail, SendResult
from digest.errors import DeliveryError
from digest.frozen import ItemBody, records_for, thaw_compact
from digest.links import link
from digest.model import Delivery, Digest, Outcome, Subscriber
from digest.render import EmailRenderer, Links, make_environment
from digest.render.email import digest_email
from digest.store import Store
from digest.tokens import load_secret

#: Messages handed to the backend at a time, per connection. Each batch's outcomes are
#: recorded before the next batch goes out, so a kill can resend at most one message per
#: connection (recognisably: same Message-ID); connections stay open across batches.
#: A backend whose resends are harmless says how many it takes (`batch`: the outbox).
BATCH_PER_CONNECTION = 1
#: Deliveries loaded from the store at a time while sending what is pending.
PAGE = 256
#: Retry backoff: 1 min, 2, 4, ... capped at 6 hours.
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
#: The longest wait a server's Retry-After may set (a broken header must not mean never).
MAX_WAIT = timedelta(days=1)
#: How often a long run renews its lease, in seconds.
RENEW_EVERY = 60.0

ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class Job:
    """One delivery to hand to the backend: its reader and its digest (or the frozen
    content to thaw it from)."""

    delivery_id: str
    to: str
    attempts: int
    subscriber: Subscriber | None  #: None: the reader is gone
    digest: Digest | None = None  #: the planner's digest, when it is still in memory
    content: str = ""  #: the claim's frozen content, when it is not


class Dispatcher:
    """Renders jobs into emails, sends them in batches, records every outcome.

    `renew(elapsed)` is called about once a minute of a long run to keep the send lease;
    it raises to stop the run.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        backend: Backend,
        now: datetime,
        renew: Callable[[timedelta], None],
        progress: ProgressFn | None = None,
    ) -> None:
        self.config, self.store, self.backend, self.now = config, store, backend, now
        self.counts = {"sent": 0, "retry": 0, "failed": 0, "cancelled": 0}
        #: Why the backend refused the sender or key, once it has: nothing more is sent.
        self.paused = ""
        self._renew, self._progress = renew, progress
        self._renderer: EmailRenderer | None = None
        # Read now, before anything is claimed: a secret that cannot sign (too short, an
        # unwritable var/) must stop the run, not fail every digest it renders.
        self._secret: bytes = load_secret(config)
        self._thawed: dict[str, ItemBody] = {}  # item records many deliveries share
        self._size = getattr(backend, "batch", 0) or BATCH_PER_CONNECTION * max(
            1, config.delivery.smtp.connections
        )
        self._started = self._renewed = time_module.monotonic()
        self.done = 0
        self.expected = 0  #: deliveries this run means to hand over (for progress)

    @property
    def renderer(self) -> EmailRenderer:
        if self._renderer is None:  # one per run: its fragment caches serve every reader
            self._renderer = EmailRenderer(
                make_environment(self.config.templates_dir),
                base_url=self.config.publish.base_url,
                intro=self.config.intro,
                brand=self.config.digest_title,
            )
        return self._renderer

    @property
    def secret(self) -> bytes:
        return self._secret

    def fresh(self, jobs: Sequence[Job]) -> None:
        """Send what was just claimed (digests in memory), a batch at a time."""
        for start in range(0, len(jobs), self._size):
            if self.paused:  # left pending, as claimed: the next run sends them
                return
            self._batch(jobs[start : start + self._size], {})

    def pending(self) -> None:
        """Send every pending delivery and due retry the store holds, a page at a time."""
        if self.paused:
            return
        self.deliver_ids(self.store.due_delivery_ids(self.now))

    def deliver_ids(self, ids: Sequence[str]) -> None:
        """Send these stored deliveries, a page at a time (`pending`; a worker's batch)."""
        self.expected += len(ids)
        for start in range(0, len(ids), PAGE):
            if self.paused:
                return
            page = self.store.deliveries_by_id(list(ids[start : start + PAGE]))
            records = records_for((d.content for d in page), self.store.frozen_items)
            readers = self.store.subscribers_by_id([d.subscriber_id for d in page])
            jobs = [_stored_job(d, readers.get(d.subscriber_id)) for d in page]
            for at in range(0, len(jobs), self._size):
                if self.paused:
                    return
                self._batch(jobs[at : at + self._size], records)

    def _batch(self, jobs: Sequence[Job], records: dict[str, str]) -> None:
        ready, dropped = self._emails(jobs, records)
        if dropped:  # unsubscribed meanwhile, or cannot render: never block the others
            self.store.record_attempts(dropped, self.now)
            cancelled = sum(1 for o in dropped if o.reason.startswith("cancelled"))
            self.counts["cancelled"] += cancelled
            self.counts["failed"] += len(dropped) - cancelled
        if ready:
            results = self.backend.send([email for _, email in ready])
            pairs = list(zip((j for j, _ in ready), results, strict=True))
            held = [(j, r) for j, r in pairs if r.status == "paused"]
            if held:  # the sender or key is refused: record nothing of these, stop
                self.paused = self.paused or held[0][1].reason
                pairs = [(j, r) for j, r in pairs if r.status != "paused"]
            self.store.record_attempts([self._outcome(j, r) for j, r in pairs], self.now)
            max_attempts = self.config.delivery.max_attempts
            for j, r in pairs:
                retry_is_final = r.status == "retry" and j.attempts + 1 >= max_attempts
                self.counts["failed" if retry_is_final else r.status] += 1
        self.done += len(jobs)
        if time_module.monotonic() - self._renewed > RENEW_EVERY:
            self._renew(timedelta(seconds=time_module.monotonic() - self._started))
            self._renewed = time_module.monotonic()
        if self._progress:
            self._progress(self.done, max(self.expected, self.done), "delivering")

    def _emails(
        self, jobs: Sequence[Job], records: dict[str, str]
    ) -> tuple[list[tuple[Job, OutgoingEmail]], list[Outcome]]:
        """The batch's emails, and the outcomes of deliveries that must not go out."""
        ready: list[tuple[Job, OutgoingEmail]] = []
        dropped: list[Outcome] = []
        config, now = self.config, self.now
        for job in jobs:
            sub = job.subscriber
            if sub is None or sub.status != "confirmed":
                reason = "cancelled: unsubscribed before it was sent"
                dropped.append(Outcome(job.delivery_id, "failed", reason))
                continue
            try:
                links = Links(
                    archive=config.publish.base_url,
                    manage=link(config, self.secret, "manage", sub, now),
                    unsubscribe=link(config, self.secret, "unsubscribe", sub, now),
                    rate=link(config, self.secret, "rate", sub, now),
                )
                digest = job.digest
                if digest is None:
                    digest = thaw_compact(job.content, records, self._thawed)
                email = digest_email(
                    self.renderer,
                    config.delivery,
                    digest,
                    delivery_id=job.delivery_id,
                    to=job.to,
                    links=links,
                    now=now,
                )
                ready.append((job, email))
            except Exception as exc:  # one digest that cannot render must not stop the rest
                reason = f"cannot render: {type(exc).__name__}: {exc}"
                dropped.append(Outcome(job.delivery_id, "failed", reason))
        return ready, dropped

    def _outcome(self, job: Job, r: SendResult) -> Outcome:
        if r.status == "sent":
            return Outcome(job.delivery_id, "sent")
        if r.status == "failed":
            return Outcome(job.delivery_id, "failed", r.reason)
        tries = job.attempts + 1
        if tries >= self.config.delivery.max_attempts:
            return Outcome(job.delivery_id, "failed", f"gave up after {tries} attempts: {r.reason}")
        wait = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(job.attempts, 30))  # no overflow
        if r.retry_after is not None:  # a wait the server asked for, within reason
            wait = max(wait, timedelta(seconds=min(r.retry_after, MAX_WAIT.total_seconds())))
        return Outcome(job.delivery_id, "retry", r.reason, self.now + wait)


def _stored_job(d: Delivery, sub: Subscriber | None) -> Job:
    return Job(d.id, d.email, d.attempts, sub, content=d.content)


def lease_renewer(
    store: Store, lease: str, owner: str, now: datetime, ttl: timedelta
) -> Callable[[timedelta], None]:
    """`Dispatcher`'s renew: takes the lease again for `ttl` from now + elapsed."""

    def renew(elapsed: timedelta) -> None:
        holder = store.acquire_lease(lease, owner, now + elapsed, ttl)
        if holder is not None:
            raise DeliveryError(
                f"lost the send lease to {holder}; stopped (what was sent is recorded)"
            )

    return renew
