"""Run the parts of a batch in forked processes that read the parent's memory.

Ranking 100,000 profiles is the same work for each chunk of them against one index of
the day's papers; on a machine with several cores, a forked child sees the index, the
compiled profiles and the scores as they are (copy-on-write, nothing is pickled on the
way in) and hands back only its part's result (numpy arrays, pickled once). The parent
computes the first part itself, so `workers` processes in all use `workers` cores.

Forking is only done where it is safe and worth it: a POSIX `fork`, this process
running a single thread (a forked child of a threaded process may inherit a lock some
other thread held), more than one part. Otherwise, and for the part of any child that
did not report (killed, out of memory, an exception), the work runs here, in order, so
the result is the same in every case and an exception is the one the work raised.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def can_fork() -> bool:
    """True where `fork_map` runs parts in children: POSIX fork, one thread."""
    return hasattr(os, "fork") and threading.active_count() == 1


def fork_map(work: Callable[[T], R], parts: Sequence[T], workers: int) -> list[R]:
    """[work(part) for part in parts], the parts after the first in up to `workers - 1`
    forked children (part k in child k % (workers - 1)), the first here."""
    if workers <= 1 or len(parts) <= 1 or not can_fork():
        return [work(p) for p in parts]
    n_children = min(workers - 1, len(parts) - 1)
    children: list[tuple[int, int, list[int]]] = []  # pid, read end, part numbers
    for c in range(n_children):
        mine = list(range(1 + c, len(parts), n_children))
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its parts, pickled into the pipe, then out
            os.close(read)
            _child(work, [parts[k] for k in mine], write)
        os.close(write)
        children.append((pid, read, mine))
    out: dict[int, R] = {0: work(parts[0])}
    for pid, read, mine in children:
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        results = _unpickle(data) if os.waitstatus_to_exitcode(status) == 0 else None
        if results is None or len(results) != len(mine):
            results = [work(parts[k]) for k in mine]
        out.update(zip(mine, results, strict=True))
    return [out[k] for k in range(len(parts))]


def _child(work: Callable[[T], R], mine: list[T], write: int) -> None:
    """A forked child's whole life: never returns (os._exit skips the parent's atexit
    handlers and buffered files, which are the parent's to run and flush)."""
    code = 1
    try:
        data = pickle.dumps([work(p) for p in mine], protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write, "wb") as pipe:
            pipe.write(data)
        code = 0
    finally:
        os._exit(code)


def _unpickle(data: bytes) -> list | None:
    try:
        got = pickle.loads(data)  # our own child's bytes, through a pipe only we hold
    except Exception:  # truncated: the child died writing; its parts run here
        return None
    return got if isinstance(got, list) else None
