"""Unsubscribes queued beside the store while it is busy, applied by the next opener.

A reader's one-click unsubscribe must land even when another process holds the store's
write lock (a long send, an import): the web page verifies the token (reads work in WAL
mode), tries the write for a short while, and if the lock is still held appends one line
to `<store>-unsubscribes.jsonl` instead, fsynced, mode 0600, and answers 202. The next
`Store` opened on that file applies the queue (`Store` does it on open, briefly; `send`
does it before planning, waiting as long as any write), so a queued reader is never
mailed again.

Appends and the applier meet on the file like this, so no line is lost or applied
half: an appender holds `flock` on the journal while it writes, and checks after taking
it that the file is still the one at the path (else it opens the new one). The one
applier at a time (a non-blocking lock on `<journal>.lock`) first renames the journal
to `<journal>.applying`, waits for the lock of any appender that was already writing
to it, applies every line in one transaction, and only then unlinks it; an applier that
fails leaves the `.applying` file for the next one. Applying is idempotent: a line
applied twice (a crash between the commit and the unlink) changes nothing more.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digest.codec import time_text
from digest.errors import StoreError
from digest.store.base import StoreBase

#: Bytes the queue may hold (about 100,000 unsubscribes); past that an append is refused.
MAX_JOURNAL_BYTES = 16 * 1024 * 1024
#: Seconds a store being opened waits for the write lock to apply the queue.
ON_OPEN_WAIT = 0.2


@dataclass(frozen=True, slots=True)
class QueuedUnsubscribe:
    """One unsubscribe whose token was verified but whose write had to wait."""

    subscriber_id: int
    email: str  #: the address the token was signed for (a changed address is not touched)
    at: datetime


def journal_path(store_path: Path) -> Path:
    """Where the queue of `store_path` lives: beside it, like SQLite's -wal file."""
    return store_path.with_name(store_path.name + "-unsubscribes.jsonl")


class JournalMixin(StoreBase):
    """Queue an unsubscribe beside the store; apply what is queued."""

    def queue_unsubscribe(self, entry: QueuedUnsubscribe) -> None:
        """Append `entry` to the journal durably (fsynced) before returning."""
        path = journal_path(self.path)
        line = json.dumps(
            {"id": entry.subscriber_id, "email": entry.email, "at": time_text(entry.at)}
        )
        try:
            with _locked_journal(path) as fd:
                if os.fstat(fd).st_size > MAX_JOURNAL_BYTES:
                    raise StoreError(f"{path}: the unsubscribe queue is full; run `digest send`")
                os.write(fd, (line + "\n").encode())
                os.fsync(fd)
        except OSError as exc:
            raise StoreError(f"{path}: cannot queue an unsubscribe ({exc.strerror})") from None

    def apply_queued_unsubscribes(self) -> int:
        """Apply every queued unsubscribe in one transaction; how many lines were applied.

        Waits for the write lock as long as any write does (StoreBusy after that); 0 at
        once when another applier is at work or nothing is queued.
        """
        path = journal_path(self.path)
        applying = path.with_name(path.name + ".applying")
        if not path.exists() and not applying.exists():
            return 0  # the common case: one stat, no lock file made
        try:
            lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"{path}: cannot apply queued unsubscribes ({exc.strerror})") from None
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            applied = 0
            # First what a failed applier left, then the journal itself (moved aside).
            for _ in range(2):
                if not applying.exists():
                    try:
                        os.rename(path, applying)
                    except FileNotFoundError:
                        break
                entries = _read_entries(applying)
                self._apply(entries)
                applying.unlink()
                applied += len(entries)
            return applied
        finally:
            os.close(lock_fd)

    def _apply_on_open(self) -> None:
        """Apply the queue if there is one, waiting at most `ON_OPEN_WAIT` for the lock:
        a command that opens the store is not held up by another's long write (the queue
        stays for the next opener, or for `send`, which waits)."""
        path = journal_path(self.path)
        if str(self.path) == ":memory:" or not (
            path.exists() or path.with_name(path.name + ".applying").exists()
        ):
            return
        self._db.execute(f"PRAGMA busy_timeout = {int(min(self.timeout, ON_OPEN_WAIT) * 1000)}")
        try:
            self.apply_queued_unsubscribes()
        except StoreError:
            pass  # busy, read-only, a full disk: the queue waits, nothing is lost
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")

    def _apply(self, entries: list[QueuedUnsubscribe]) -> None:
        if not entries:
            return
        with self._transaction("applying queued unsubscribes") as db:
            db.executemany(
                "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?,"
                " paused_at = NULL, next_send_at = NULL"
                " WHERE id = ? AND email = ? AND status != 'unsubscribed'",
                [(time_text(e.at), e.subscriber_id, e.email) for e in entries],
            )


@contextmanager
def _locked_journal(path: Path) -> Iterator[int]:
    """The journal at `path` open for appending (created 0600), under its flock."""
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # an applier renamed it away meanwhile: append to the new one
    try:
        yield fd
    finally:
        os.close(fd)


def _read_entries(path: Path) -> list[QueuedUnsubscribe]:
    """The lines of a renamed journal, once any appender still writing to it is done.

    A line that does not parse (torn by a crash mid-write, before its fsync returned,
    so never answered as queued) is skipped.
    """
    with open(path, "rb") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)  # waits for a writer already in it
        data = file.read()
    entries = []
    for raw in data.splitlines():
        with suppress(ValueError, KeyError, TypeError):
            item = json.loads(raw)
            at = datetime.fromisoformat(item["at"])
            entries.append(QueuedUnsubscribe(int(item["id"]), str(item["email"]), at))
    return entries
