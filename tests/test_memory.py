"""`digest.memory`: the `digest` command keeps what its process frees on the heap instead of
handing it back to the kernel page by page (a year's publish paid 3.1 million page faults
for that). Linux with glibc, as CI; elsewhere the call does nothing and says so. And a
long job collects cyclic garbage by hand, after each unit of work (`collecting_by_hand`)."""

from __future__ import annotations

import ctypes
import gc
import sys
import weakref

import pytest

from digest.memory import TRIM, collecting_by_hand, keep_freed_memory

linux_glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "mallinfo2"),
    reason="glibc's mallopt and mallinfo2 (Linux, glibc 2.33+)",
)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@linux_glibc
def test_freed_heap_memory_is_kept_for_the_next_allocation() -> None:
    assert keep_freed_memory() and keep_freed_memory()  # once, then a no-op that says so
    info = ctypes.CDLL(None).mallinfo2
    info.restype = _MallInfo2
    malloc, free = ctypes.CDLL(None).malloc, ctypes.CDLL(None).free
    malloc.restype, malloc.argtypes, free.argtypes = (
        ctypes.c_void_p,
        [ctypes.c_size_t],
        [ctypes.c_void_p],
    )
    blocks = [malloc(64 * 1024) for _ in range(320)]  # 20 MB at the top of the heap
    assert all(blocks)
    for block in reversed(blocks):
        free(block)
    # glibc's default would have trimmed all but 128 KB of it back to the kernel
    kept = info().keepcost
    assert 16 * 1024 * 1024 <= kept <= TRIM + 64 * 1024 * 1024


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    """A pair of objects that refer to each other, unreachable from anywhere else: only
    a cyclic collection frees them."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_collecting_by_hand_stops_automatic_collection_and_collects_when_asked() -> None:
    assert gc.isenabled()
    with collecting_by_hand() as collect:
        assert not gc.isenabled()
        garbage = _cycle()
        kept = [_Node() for _ in range(50_000)]  # far past the young generation's threshold
        assert garbage() is not None  # no automatic collection freed it
        collect()
        assert garbage() is None  # a cycle the unit left goes with its collection
        assert len(kept) == 50_000
    assert gc.isenabled()


def test_collecting_by_hand_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with collecting_by_hand() as collect:
            collect()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_collecting_by_hand_restores_automatic_collection_after_an_error() -> None:
    try:
        with collecting_by_hand():
            raise RuntimeError("the job failed")
    except RuntimeError:
        pass
    assert gc.isenabled()
