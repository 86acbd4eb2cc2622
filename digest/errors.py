"""One exception tree. The CLI turns any `DigestError` into one line and exit code 2.

DigestError
├── ConfigError      config.toml missing, unreadable, or a key with a bad value
├── SourceError      an input file or URL that cannot be read at all
├── StoreError       the SQLite store cannot be opened or written
│   └── StoreBusy    ... because another process holds its write lock (try again)
├── QueryError       a keyword profile that cannot be understood
├── RenderError      a template that fails to load or render
└── DeliveryError    a message that could not be handed to a backend
"""

from __future__ import annotations


class DigestError(Exception):
    """Root of every error the CLI reports as one line (exit code 2)."""


class ConfigError(DigestError):
    """config.toml is missing, not TOML, or holds a value of the wrong kind."""


class SourceError(DigestError):
    """An input cannot be read at all (missing, not text, too large)."""


class StoreError(DigestError):
    """The SQLite store cannot be opened, migrated, read or written (locked, corrupt ...)."""


class StoreBusy(StoreError):
    """Another process held the store's write lock past the busy timeout: try again."""


class QueryError(DigestError):
    """A keyword profile that cannot be understood (e.g. nothing to search for)."""


class RenderError(DigestError):
    """A template is missing or fails to render."""


class DeliveryError(DigestError):
    """A message could not be delivered."""


class PublishError(DigestError):
    """The static archive's output directory cannot be created or written."""


class SchedulerError(DigestError):
    """Another scheduler already holds this store."""


class SubscriptionError(DigestError):
    """A subscribe/confirm/unsubscribe request that cannot be honoured (bad address, token)."""
