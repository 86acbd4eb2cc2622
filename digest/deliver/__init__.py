"""Delivery backends: how a rendered digest leaves the machine.

A backend is anything with a `name`, `send(emails) -> list[SendResult]` and `close()`.
`send` returns one result per email, in order, and never raises for a per-message
failure: "sent", "retry" (transient: the server or network said later) or "failed"
(permanent: do not try again). `DeliveryError` is only for setup problems found by
`make_backend` (an unset secret, an unusable sender address).

    outbox    writes <outbox_dir>/<delivery_id>.eml; the embedded default and previews
    smtp      smtplib; none/starttls/ssl, optional login, one connection per batch
    sendgrid  the SendGrid v3 mail/send API through the `sendgrid` package

Adding a backend is one module with `from_config(config, env) -> Backend` and one line in
`_REGISTRY`; modules load lazily so `digest` does not import `sendgrid` unless asked to.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from digest.config import DeliveryConfig
from digest.deliver.message import OutgoingEmail, SendResult, build_message
from digest.errors import DeliveryError

__all__ = [
    "Backend",
    "OutgoingEmail",
    "SendResult",
    "backend_names",
    "build_message",
    "make_backend",
]

#: backend name -> module holding its `from_config(config, env)`.
_REGISTRY: dict[str, str] = {
    "outbox": "digest.deliver.outbox",
    "smtp": "digest.deliver.smtp",
    "sendgrid": "digest.deliver.sendgrid",
}


@runtime_checkable
class Backend(Protocol):
    """Hands rendered emails to a mail system."""

    name: str

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """One result per email, same order; never raises for a per-message failure."""
        ...

    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""
        ...


def backend_names() -> tuple[str, ...]:
    """The names `[delivery] backend` may take."""
    return tuple(_REGISTRY)


def make_backend(config: DeliveryConfig, *, env: Mapping[str, str] = os.environ) -> Backend:
    """The backend `config.backend` names, with its secrets read from `env`.

    Raises DeliveryError (one line, naming the config key or variable) when the backend
    is unknown or a secret it needs is not set.
    """
    module_name = _REGISTRY.get(config.backend)
    if module_name is None:
        raise DeliveryError(
            f"delivery.backend = {config.backend!r}: unknown backend; "
            f"expected one of: {', '.join(_REGISTRY)}"
        )
    module = importlib.import_module(module_name)
    backend: Backend = module.from_config(config, env)
    return backend
