"""Freed memory kept for reuse when models run on the CPU, instead of handed back to the kernel.

Why: glibc's malloc serves blocks above its mmap threshold (128 KiB, raised as large blocks are
freed) with fresh pages from the kernel and returns them on free, and it trims the top of its
heap whenever a few hundred KiB there are free. A transformer forward allocates and frees the
same activations of a few MB every layer, every forward, so each one was faulted in and zeroed
again: a batched `verbalized` call of 32 prompts took 200-300k page faults (~1 GB) and spent
~0.6 s in the kernel. With freed blocks kept, a repeat call takes ~2k. Measured A-B-B-A in
separate processes on the 2-core machine (benchmarks/generation.py's prompts): `sequence` 3-10%
and `verbalized` 2-10% less time. PyTorch's own CPU-inference guidance gets the same effect by
preloading jemalloc or tcmalloc; this needs neither a preload nor a package.

The price: the process keeps its peak heap rather than shrinking after it, which a pipeline
stage that ends when its model run ends does not mind.
"""

from __future__ import annotations

import ctypes
import functools
import sys

_M_TRIM_THRESHOLD = -1  # mallopt parameters, <malloc.h>
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling for the mmap threshold on 64-bit systems
_NEVER_TRIM = 2**31 - 1  # the largest value mallopt takes (an int)


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to keep blocks up to 32 MiB in its heap and not to trim it; once per process.
    Returns whether it agreed (False off Linux/glibc: nothing changes there)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM))
