"""Keeping a long-running server's resident memory flat (glibc only; elsewhere these do nothing).

Under mixed traffic the server's RSS grows with native allocations, not Python objects:
each thread that allocates gets its own malloc arena (up to 8 per core), and memory
freed after a large batch stays mapped. Capping the arenas and trimming the heap when
the worker goes idle give it back.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h


def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_arenas(arenas: int = 2) -> bool:
    """At most `arenas` malloc arenas for the process's threads (call before the threads start); False where not glibc."""
    libc = _libc()
    return bool(libc and libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Return the heap's free memory to the system; False where not glibc."""
    libc = _libc()
    return bool(libc and libc.malloc_trim(0))
