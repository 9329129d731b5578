"""Keep freed memory in the process from one training step to the next (glibc malloc).

A training step allocates and frees the same arrays every step (activations, gradients,
kernel outputs: ~100 MB for the benchmark Transformer). glibc's malloc hands big blocks
back to the kernel as soon as they are freed (blocks above the mmap threshold are
unmapped, and the top of the heap is trimmed), so each step faults the same pages in
again: ~8,400 page faults and ~15 ms of kernel time per step of that Transformer (12% of
the step, measured with getrusage). With the two thresholds raised, freed blocks stay
mapped and are reused: faults drop to ~40 per step. The cost is that the process keeps
its peak footprint instead of shrinking between steps (what PyTorch's caching allocators
do too).

It changes malloc for every library in the process, so minitensor never calls it on its
own: ``keep_freed_memory()`` runs only through the opt-in ``tune_process()``
(``process.py``). It does nothing when the C library is not glibc, or when malloc is
already tuned through the environment (``MALLOC_*_`` variables or ``GLIBC_TUNABLES``:
the user's setting wins).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 64 << 20    # blocks up to 64 MB come from the heap (reused, not unmapped)
TRIM_THRESHOLD = 256 << 20   # free memory at the heap's top is kept up to 256 MB

_done = False
applied = False   # whether the first call set the thresholds


def _user_tunes_malloc() -> bool:
    return "GLIBC_TUNABLES" in os.environ or any(
        name.startswith("MALLOC_") and name.endswith("_") for name in os.environ)


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (once). Returns True if they were set."""
    global _done, applied
    if _done:
        return False
    _done = True
    if _user_tunes_malloc():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # only glibc has mallopt with these parameter numbers
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return applied
