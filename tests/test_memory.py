"""`digest.memory`: the `digest` command keeps what its process frees on the heap instead of
handing it back to the kernel page by page (a year's publish paid 3.1 million page faults
for that). Linux with glibc, as CI; elsewhere the call does nothing and says so."""

from __future__ import annotations

import ctypes
import sys

import pytest

from digest.memory import TRIM, keep_freed_memory

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
