"""Who holds a lease: `host:pid:thread`, so a run killed on this host frees its lease at
once, and two threads of one process (the scheduler's job pool) never share one."""

from __future__ import annotations

import os
import socket
import threading


def this_owner() -> str:
    """The lease owner name of this thread of this process."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def owner_is_dead(owner: str) -> bool:
    """True when `owner` is a process of this host that no longer exists."""
    parts = owner.split(":")
    if len(parts) == 3:
        host, pid = parts[0], parts[1]
    else:
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
