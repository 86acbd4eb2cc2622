"""A backend that keeps messages in memory: for tests and dry runs of the send loop.

Like httpx's `MockTransport`: an optional `handler` decides each message's fate
(`SendResult`), so a test can script transient failures, permanent ones or a slow
server without a network; without one every message is "sent". Everything handed to the
backend is kept in `sent` (accepted) and `attempts` (all), in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from digest.deliver.message import OutgoingEmail, SendResult

Handler = Callable[[OutgoingEmail], SendResult]


@dataclass
class MemoryBackend:
    """Records what it is given; `handler` (default: accept) answers for each message."""

    handler: Handler | None = None
    name: str = "memory"
    sent: list[OutgoingEmail] = field(default_factory=list)
    attempts: list[OutgoingEmail] = field(default_factory=list)
    closed: bool = False

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """One result per email, in order; never raises for one message."""
        results = []
        for email in emails:
            self.attempts.append(email)
            result = self.handler(email) if self.handler else SendResult(email.delivery_id, "sent")
            if result.status == "sent":
                self.sent.append(email)
            results.append(result)
        return results

    def close(self) -> None:
        self.closed = True
