"""What `digest worker` needs of a PostgreSQL store: the job queue's tables, jobs deferred
inside the store's own transactions, deliveries leased to one send batch, and the
sending accounts' shared token buckets.

- The queue is Procrastinate's (`digest/tasks.py`); its schema is applied here, under the
  migrations' advisory lock, once per database (`install_work_queue`). Our own table,
  `send_rate`, is made by the store's schema (`store.pg.schema`, step 15).
- `defer_jobs` inserts jobs into Procrastinate's `procrastinate_jobs` (what its
  `procrastinate_defer_jobs_v1`, run by `Task.defer`, does) on the store's connection, so
  a ranking shard's claims and the send-batch jobs that will send them commit together.
- A send batch takes its deliveries with `FOR UPDATE SKIP LOCKED` (two batches holding
  the same ids split them, neither waits) and holds each as a session advisory lock: the
  lease. The server frees it when the holder's session ends, so a killed worker's
  deliveries are free at once, and an outcome is recorded on that same session only
  while the lease is held (`record_attempts` keeps its `state IN ('pending','retry')`
  guard: a delivery another batch sent stays sent).
- `send_rate` is one row per sending account: a token bucket refilled on the server's
  clock (one clock for every host), and `paused_until`, set from a provider's
  Retry-After, which every worker honours before it takes tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg.types.json import Jsonb

from digest.store.base import Connection
from digest.store.pg.base import PgBase, lock_key


def delivery_lock(delivery_id: str) -> int:
    """The advisory lock key of one delivery's send lease."""
    return lock_key(f"delivery:{delivery_id}")


class PgWorkQueue(PgBase):
    """The job queue's tables, deferring in a transaction, send leases, rate buckets."""

    def install_work_queue(self, queue_schema: str) -> bool:
        """Apply Procrastinate's schema (`queue_schema`, its schema.sql) unless it is
        there; True when this call made it. Under the migrations' lock: workers starting
        together make it once."""
        with self._transaction("making the job queue's tables") as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", (lock_key("migrations"),))
            found = db.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
            if found[0]:
                return False
            self._db.conn.execute(queue_schema)  # many statements, no parameters
        return True

    @staticmethod
    def defer_jobs(
        db: Connection,
        task: str,
        queue: str,
        args: Iterable[dict[str, Any]],
        *,
        queueing_lock: str | None = None,
    ) -> list[int]:
        """Queue one `task` job per entry of `args` in `db`'s transaction; their ids.
        With `queueing_lock`, a job already waiting under that lock makes this one a
        no-op (returns [])."""
        jobs = [Jsonb(a) for a in args]
        if not jobs:
            return []
        on_conflict = "" if queueing_lock is None else " ON CONFLICT DO NOTHING"
        found = db.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock, args)"
            f" SELECT ?, ?, ?, a FROM unnest(?::jsonb[]) AS a{on_conflict} RETURNING id",
            (queue, task, queueing_lock, jobs),
        ).fetchall()
        return [int(r[0]) for r in found]

    def defer(
        self,
        task: str,
        queue: str,
        args: Iterable[dict[str, Any]],
        *,
        queueing_lock: str | None = None,
    ) -> list[int]:
        """Queue jobs now, in a transaction of their own (see `defer_jobs`)."""
        with self._transaction("queueing jobs") as db:
            return self.defer_jobs(db, task, queue, args, queueing_lock=queueing_lock)

    def jobs_waiting(self, task: str) -> int:
        """How many `task` jobs wait or run."""
        row = self._db.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = ?"
            " AND status IN ('todo', 'doing')",
            (task,),
        ).fetchone()
        return int(row[0])

    # -- send leases -------------------------------------------------------------------

    def lease_deliveries(self, ids: Sequence[str], now_iso: str) -> list[str]:
        """Take the send lease of each of these deliveries that is still to send (pending,
        or a retry whose time has come) and that no other batch holds; those taken, in
        the order given. Held until `release_deliveries` or this store's session ends."""
        if not ids:
            return []
        with self._transaction("leasing deliveries") as db:
            rows = db.execute(
                "SELECT id FROM deliveries WHERE id = ANY(?) AND (state = 'pending'"
                " OR (state = 'retry' AND next_attempt_at <= ?)) ORDER BY id"
                " FOR UPDATE SKIP LOCKED",
                (list(ids), now_iso),
            ).fetchall()
            wanted = [r[0] for r in rows]
            taken = {
                r[0]
                for r in db.execute(
                    "SELECT k.id FROM unnest(?::text[], ?::bigint[]) AS k(id, key)"
                    " WHERE pg_try_advisory_lock(k.key)",
                    (wanted, [delivery_lock(i) for i in wanted]),
                )
            }
        # Another batch may have sent one between its lease ending and ours beginning.
        still = {
            r[0]
            for r in self._db.execute(
                "SELECT id FROM deliveries WHERE id = ANY(?) AND state IN ('pending', 'retry')",
                (list(taken),),
            )
        }
        self.release_deliveries(sorted(taken - still))
        return [i for i in ids if i in still]

    def release_deliveries(self, ids: Sequence[str]) -> None:
        """Give up the send leases of these deliveries (ones not held are ignored)."""
        if ids:
            self._db.execute(
                "SELECT pg_advisory_unlock(k) FROM unnest(?::bigint[]) AS k",
                ([delivery_lock(i) for i in ids],),
            )

    def stale_delivery_ids(self, now_iso: str, untouched_since_iso: str, limit: int) -> list[str]:
        """Deliveries still to send that no batch is sending: retries whose time has come,
        and pending ones not touched since `untouched_since` (their job was lost)."""
        rows = self._db.execute(
            "SELECT id FROM deliveries WHERE ((state = 'retry' AND next_attempt_at <= ?)"
            " OR (state = 'pending' AND updated_at <= ?)) ORDER BY created_at, id LIMIT ?",
            (now_iso, untouched_since_iso, limit),
        )
        return [r[0] for r in rows]

    # -- the shared rate limit -----------------------------------------------------------

    def take_send_tokens(self, account: str, n: int, rate: float, burst: int) -> tuple[float, bool]:
        """Take `n` messages' tokens from the account's bucket (`rate` a second, at most
        `burst` saved): (seconds to wait before sending, True). The wait is 0 when the
        bucket had them, else the time to earn the debt. While the account is paused:
        (the pause's remaining seconds, False): nothing taken, ask again after. `rate`
        0: no limit, only pauses."""
        sql = (
            "UPDATE send_rate SET tokens = CASE WHEN paused_until > clock_timestamp() OR ? <= 0"
            " THEN tokens ELSE least(?, tokens + ? * extract(epoch FROM clock_timestamp() - at))"
            " - ? END, at = CASE WHEN paused_until > clock_timestamp() OR ? <= 0 THEN at"
            " ELSE clock_timestamp() END WHERE account = ?"
            " RETURNING extract(epoch FROM paused_until - clock_timestamp()), tokens"
        )
        args = (rate, float(burst), rate, n, rate, account)
        with self._transaction("taking send tokens") as db:  # one statement: one trip
            row = db.execute(sql, args).fetchone()
            if row is None:  # the account's first message: its bucket starts full
                db.execute(
                    "INSERT INTO send_rate (account, tokens, at) VALUES (?, ?, clock_timestamp())"
                    " ON CONFLICT (account) DO NOTHING",
                    (account, float(burst)),
                )
                row = db.execute(sql, args).fetchone()
        paused, tokens = row
        if paused is not None and float(paused) > 0:
            return float(paused), False
        if rate <= 0 or tokens >= 0:
            return 0.0, True
        return -float(tokens) / rate, True

    def pause_sending(self, account: str, seconds: float) -> None:
        """Pause every worker's sending from `account` for `seconds` (a longer pause
        already set stands)."""
        with self._transaction("pausing the sending account") as db:
            db.execute(
                "INSERT INTO send_rate (account, tokens, at) VALUES (?, 0, clock_timestamp())"
                " ON CONFLICT (account) DO NOTHING",
                (account,),
            )
            db.execute(
                "UPDATE send_rate SET paused_until = greatest(paused_until,"
                " clock_timestamp() + make_interval(secs => ?)) WHERE account = ?",
                (seconds, account),
            )
