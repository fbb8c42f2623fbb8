"""Allocator settings for the processing workers (glibc's malloc, through ``mallopt``).

Analysing a big G-code file allocates and frees thousands of numpy arrays of a few hundred
kilobytes. glibc's defaults give such memory back to the kernel whenever the top of the heap
is free and fault it in again at the next allocation, a page at a time: on a 43 MB raster file
~130,000 page faults and 0.4 s of kernel time, a quarter of the analysis, once the planner runs
on its own thread (each thread also gets its own arena, trimmed on its own). Keeping up to
64 MiB of freed memory in the process and one arena for all threads (the GIL serialises their
numpy allocations anyway) removes nearly all of it (``tests/bench/bench_gcode.py``); after each
file the worker returns what it kept (:func:`release_freed_memory`), so an idle worker holds
no more than before. Elsewhere than glibc these calls do nothing.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
KEEP_FREED_BYTES = 64 << 20
MMAP_ABOVE_BYTES = 16 << 20


@functools.cache
def _libc() -> Any:
    """The C library already loaded in this process (no search: ``find_library`` would run
    ``ldconfig`` on every call), or None when it has no mallopt (not glibc)."""
    try:
        lib = ctypes.CDLL(None)
        lib.mallopt  # noqa: B018 -- glibc only; musl and others have no mallopt
        lib.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return lib


def keep_freed_memory() -> bool:
    """Set this process's allocator for the analysis (see the module's docstring).

    Returns whether the settings took (False where the C library is not glibc). Call it once,
    early, in a process that does the analysis: a processing worker, a benchmark's child.
    """
    lib = _libc()
    if lib is None:
        return False
    # (Setting the mmap threshold also stops glibc from moving it, and the trim threshold,
    # as big arrays come and go.)
    ok = lib.mallopt(_M_MMAP_THRESHOLD, MMAP_ABOVE_BYTES)
    ok &= lib.mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES)
    ok &= lib.mallopt(_M_ARENA_MAX, 1)
    return bool(ok)


def release_freed_memory() -> None:
    """Give the memory freed since the last call back to the kernel (after each file)."""
    lib = _libc()
    if lib is not None:
        lib.malloc_trim(0)
