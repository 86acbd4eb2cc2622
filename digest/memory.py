"""How a long job's process keeps the memory it frees: a publish of a year or a send to a
large list allocates and frees heaps of small objects and arrays over and over, and by
default glibc hands the top of its heap back to the kernel whenever 128 KB are free
there, then takes it back page by page at the next allocation: a year's publish paid
3.1 million page faults for it (7 of its ~61 CPU-seconds, measured on 2 cores).
`keep_freed_memory` asks glibc to keep up to `TRIM` free at the top of the heap (and to
grow it `PAD` at a time), so the pages are reused instead: 0.24 million faults, 2.7
CPU-seconds of system time. Peak RSS does not change (the memory was in use at the peak
anyway); a process keeps at most TRIM more between jobs. The `digest` command does it
at start (`cli`), before any work or worker process.

Linux with glibc only (`mallopt`); elsewhere, or if the call fails, nothing changes.

`collecting_by_hand` is the other half: the cyclic garbage collector, left to itself,
walks every live object again each time the oldest generation has grown by a quarter.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: mallopt(3) parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD = -1, -2
#: Free memory kept at the top of the heap, and how much more it grows at a time.
TRIM = 256 * 1024 * 1024
PAD = 64 * 1024 * 1024

_done = False


def keep_freed_memory() -> bool:
    """Tune glibc's allocator for this process and the workers it forks later (once; a
    second call does nothing); whether it took."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has it too, as a no-op)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _done = all(
        mallopt(param, value) == 1
        for param, value in ((_M_TRIM_THRESHOLD, TRIM), (_M_TOP_PAD, PAD))
    )
    return _done


@contextmanager
def collecting_by_hand() -> Iterator[Callable[[], None]]:
    """No automatic cyclic garbage collection inside; the caller collects with the
    function it gets, after each unit of work (a page of readers).

    Why: a send keeps caches that grow all along (spans, matches, rendered items,
    encoded lines: a million objects), none of them in a cycle, and each automatic
    collection of the oldest generation walks all of them again: 16 of them took 2.4 of
    a 20,000-reader send's 29 CPU-seconds. The function collects the young generations
    only (`gc.collect(1)`): a cycle made and dropped since the last call goes, and what
    is still alive moves to the oldest generation, which is not walked again until the
    block ends. So memory stays bounded while the work drops what it makes in the unit
    that made it (a send's pages: their digests, claims and emails are freed by
    reference count, no cycle among them); a cycle that outlives its unit and dies later
    waits for the end. Freeing by reference count is unaffected. On leaving, automatic
    collection is back as it was.
    """

    def collect() -> None:
        gc.collect(1)

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield collect
    finally:
        if enabled:
            gc.enable()
