"""Who holds a lease: `host:pid`, so a run killed on this host frees its lease at once."""

from __future__ import annotations

import os
import socket


def this_owner() -> str:
    """The lease owner name of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_dead(owner: str) -> bool:
    """True when `owner` is a process of this host that no longer exists."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
