"""The outbox backend: every email becomes `<outbox_dir>/<delivery_id>.eml`.

The embedded default, so `digest run` works with no mail server: the files open in any
mail client. Writes are atomic (hidden temporary files, synced, then renamed), so a crash
never leaves half a message, and idempotent: a delivery already in the outbox is left as
it is, so sending the same delivery twice leaves one file (the first one written).
Files are 0600 and the directory 0700 when this makes it: a digest holds its reader's
unsubscribe and manage links.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import cast

from digest.config import DeliveryConfig
from digest.deliver.message import OutgoingEmail, SendResult, build_message, one_line
from digest.deliver.wire import message_bytes


class OutboxBackend:
    """Writes .eml files into one directory."""

    name = "outbox"
    #: Emails `digest send` hands over at a time: a resend finds the file already there,
    #: so a batch may be large, and its files are made durable with one sync, not one each.
    batch = 256

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, delivery_id: str) -> Path:
        """Where the delivery's .eml file is (or will be)."""
        return self.directory / f"{delivery_id}.eml"

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """Write each email; "sent" once its file is on disk, "retry" if the disk said no.

        Every file is written to a hidden temporary name first; then the data of them all
        is synced, they are renamed into place, and the renames are synced: a crash leaves
        whole messages or none, and nothing is called sent before it is durable.
        """
        results: dict[int, SendResult] = {}
        staged: list[tuple[int, Path, Path]] = []  # (position, temporary, target)
        targets: set[Path] = set()  # of this batch: one listed twice is written once
        for i, email in enumerate(emails):
            got = self._stage(email, targets)
            if isinstance(got, SendResult):
                results[i] = got
            else:
                staged.append((i, *got))
                targets.add(got[1])
        try:
            if staged:
                _sync(self.directory, [temp for _, temp, _ in staged])
                for _, temp, target in staged:
                    os.replace(temp, target)
                _sync(self.directory, [])
        except OSError as exc:
            for i, temp, target in staged:
                temp.unlink(missing_ok=True)
                results[i] = SendResult(
                    emails[i].delivery_id, "retry", one_line(f"{target}: {exc}")
                )
        for i, _, _ in staged:
            results.setdefault(i, SendResult(emails[i].delivery_id, "sent"))
        return [results[i] for i in range(len(emails))]

    def close(self) -> None:
        """Nothing to release."""

    def _stage(self, email: OutgoingEmail, staged: set[Path]) -> SendResult | tuple[Path, Path]:
        """The email written to a temporary file (and its target), or its result now."""
        try:
            data = message_bytes(email) or build_message(email).as_bytes()
        except ValueError as exc:
            return SendResult(email.delivery_id, "failed", one_line(f"bad message: {exc}"))
        target = self.path_for(email.delivery_id)
        if target in staged or target.exists():
            return SendResult(email.delivery_id, "sent", "already in the outbox")
        # The temporary name is the target's and this process's: no other live process
        # writes it, and one a killed process left (a reused pid) is truncated here.
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            try:
                fd = os.open(temp, _CREATE, 0o600)
            except FileNotFoundError:  # the first message: make the directory
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(temp, _CREATE, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(data)
        except OSError as exc:
            return SendResult(email.delivery_id, "retry", one_line(f"{target}: {exc}"))
        return temp, target


#: A temporary file, truncated if a killed run left one, never followed through a link.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)


def _syncfs() -> Callable[[int], int] | None:
    """Linux's syncfs(2) (flush one file system), or None where there is none."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return cast(Callable[[int], int], libc.syncfs)
    except (OSError, AttributeError):
        return None


_SYNCFS = _syncfs() if sys.platform.startswith("linux") else None


def _sync(directory: Path, files: Sequence[Path]) -> None:
    """Make `files` (or, with none, the directory's entries) durable: one syncfs of the
    directory's file system where Linux has it, else an fsync per file (and directory)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        if _SYNCFS is not None:
            if _SYNCFS(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            return
        for path in files:
            with path.open("rb+") as file:
                os.fsync(file.fileno())
        os.fsync(fd)
    finally:
        os.close(fd)


def from_config(config: DeliveryConfig, env: Mapping[str, str]) -> OutboxBackend:
    """The registry entry: the outbox needs no secrets."""
    return OutboxBackend(config.outbox_dir)
