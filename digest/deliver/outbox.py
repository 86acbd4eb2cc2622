"""The outbox backend: every email becomes `<outbox_dir>/<delivery_id>.eml`.

The embedded default, so `digest run` works with no mail server: the files open in any
mail client. Writes are atomic (a hidden temporary file, fsync, then rename), so a crash
never leaves half a message, and idempotent: a delivery already in the outbox is left as
it is, so sending the same delivery twice leaves one file (the first one written).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from digest.config import DeliveryConfig
from digest.deliver.message import OutgoingEmail, SendResult, build_message, one_line
from digest.deliver.wire import message_bytes


class OutboxBackend:
    """Writes .eml files into one directory."""

    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, delivery_id: str) -> Path:
        """Where the delivery's .eml file is (or will be)."""
        return self.directory / f"{delivery_id}.eml"

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """Write each email; "sent" once its file exists, "retry" if the disk said no."""
        return [self._write(email) for email in emails]

    def close(self) -> None:
        """Nothing to release."""

    def _write(self, email: OutgoingEmail) -> SendResult:
        try:
            data = message_bytes(email) or build_message(email).as_bytes()
        except ValueError as exc:
            return SendResult(email.delivery_id, "failed", one_line(f"bad message: {exc}"))
        target = self.path_for(email.delivery_id)
        if target.exists():
            return SendResult(email.delivery_id, "sent", "already in the outbox")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomically(target, data)
        except OSError as exc:
            return SendResult(email.delivery_id, "retry", one_line(f"{target}: {exc}"))
        return SendResult(email.delivery_id, "sent")


def _write_atomically(target: Path, data: bytes) -> None:
    """Write `data` to `target` through a temporary file in the same directory."""
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def from_config(config: DeliveryConfig, env: Mapping[str, str]) -> OutboxBackend:
    """The registry entry: the outbox needs no secrets."""
    return OutboxBackend(config.outbox_dir)
