"""Buffer reuse: the fast kernels' output arrays come from a pool of freed buffers.

Why. A training step allocates the same big arrays every step (activations and the
tensors saved for backward in forward, their gradients in backward) and frees them all at
its end. glibc hands big freed blocks back to the operating system (``munmap``, or a trim
of the heap's top), so the next step's arrays arrive as fresh pages, and the first write
to each 4 KiB page is a page fault in which the kernel also zeroes the page. Measured on
this project's 2-core machine: a config-S step took ~7,500 faults, ~11 ms of its 80 ms
(config M: ~14,500). Telling glibc to keep freed memory (``mallopt``) would fix that for
every library in the process, which minitensor must not do behind the user's back (that
is the opt-in ``kernels.tune_process(keep_freed_memory=True)``). The pool keeps only
minitensor's own arrays.

How:

    empty(shape, dtype):                         # instead of np.empty, in the kernels
        if the array is small: return np.empty(shape, dtype)
        size class c = nbytes rounded up (by at most 1/16)
        for each buffer b of class c, then of the next classes up to 2c:
            if nothing but the pool refers to b: return b seen as (shape, dtype)
        allocate a new buffer of class c, keep it, return it seen as (shape, dtype)

A buffer is free when its reference count says only the pool holds it: the array handed
out refers to it, and so does every view of that array (NumPy points a view at the
owner of the memory, here the buffer), so a buffer comes back by itself when the last
array using its memory is gone: no one has to give it back, and none can be reused early.
Every ``SWEEP_EVERY`` arrays handed out, the free buffers that were not handed out during
the last ``SWEEP_EVERY`` are dropped: shapes that stopped coming back do not keep their
memory. ``clear()`` drops every free buffer now.

The memory is not zeroed (like ``np.empty``: every kernel writes all of its output).
``MINITENSOR_BUFFER_POOL=0`` in the environment, or ``set_enabled(False)``, turns the
pool off (every array from ``np.empty``). It also stays off where reference counts do not
tell when an object is free (Python built without the GIL).
"""
from __future__ import annotations

import bisect
import math
import os
import sys
import threading

import numpy as np

MIN_BYTES = 1 << 16    # smaller arrays come from np.empty: glibc keeps small freed blocks
SWEEP_EVERY = 1 << 16  # arrays handed out between two sweeps of unused free buffers
CLASS_STEPS = 16       # size classes per power of two: at most 1/16 of a buffer unused
MAX_PER_CLASS = 256    # buffers kept per size class (a lookup scans at most this many)


def size_class(nbytes: int) -> int:
    """``nbytes`` rounded up to the next of 16 evenly spaced sizes per power of two
    (so a batch whose length varies by a few tokens mostly finds a buffer of its class)."""
    step = 1 << max(0, nbytes.bit_length() - CLASS_STEPS.bit_length())   # 2^k <= n: 2^k / 16
    return -(-nbytes // step) * step


def _refs_when_free() -> int:
    """The reference count ``empty`` reads for a buffer only the pool holds (measured the
    way ``empty`` reads it, so it holds whatever the interpreter counts)."""
    entries = [[np.empty(1, np.uint8), 0]]
    for entry in entries:
        return sys.getrefcount(entry[0])


def _refcounts_reliable() -> bool:
    # Free-threaded builds defer reference counting: a count is no proof of freedom there.
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return is_gil_enabled is None or is_gil_enabled()


class BufferPool:
    """Reusable byte buffers by size class; ``empty`` hands out arrays backed by them."""

    def __init__(self, min_bytes: int = MIN_BYTES, sweep_every: int = SWEEP_EVERY):
        self.min_bytes = min_bytes
        self.sweep_every = sweep_every
        self._classes: dict[int, list] = {}   # size class -> [[buffer, tick last handed out]]
        self._lock = threading.Lock()         # a free buffer is handed out once, whatever thread asks
        self._tick = 0
        self._cursor: dict[int, int] = {}     # size class -> where to start the next scan
        self._ids: set[int] = set()           # id() of every buffer kept (for ``holds``)
        self._sizes: list[int] = []           # the size classes kept, sorted
        self._free_refs = _refs_when_free()
        self.hits = 0                         # arrays served from a kept buffer
        self.misses = 0                       # arrays that needed a new buffer

    def empty(self, shape, dtype) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype``, contents undefined (np.empty)."""
        dtype = np.dtype(dtype)
        if isinstance(shape, int):
            shape = (shape,)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < self.min_bytes:
            return np.empty(shape, dtype)
        size = size_class(nbytes)
        with self._lock:
            self._tick += 1
            buffer = self._take_free(size)
            if buffer is None:
                # A batch a few tokens shorter than before fits in a bigger free buffer (up
                # to twice the size) instead of fresh memory.
                first = bisect.bisect_right(self._sizes, size)
                for bigger in self._sizes[first:first + CLASS_STEPS]:
                    if bigger > 2 * size:
                        break
                    buffer = self._take_free(bigger)
                    if buffer is not None:
                        break
            if buffer is None:
                buffer = self._new_buffer(size)
            if self._tick % self.sweep_every == 0:
                self._drop_free(older_than=self._tick - self.sweep_every)
            return np.ndarray(shape, dtype, buffer=buffer)

    def _take_free(self, size: int):
        """A free buffer of class ``size`` (now handed out), or None."""
        entries = self._classes.get(size)
        if not entries:
            return None
        count = len(entries)
        start = self._cursor.get(size, 0)          # next fit: where the last one was found
        for i in range(count):
            entry = entries[(start + i) % count]
            if sys.getrefcount(entry[0]) == self._free_refs:
                entry[1] = self._tick
                self._cursor[size] = (start + i + 1) % count
                self.hits += 1
                return entry[0]
        return None

    def _new_buffer(self, size: int) -> np.ndarray:
        entries = self._classes.get(size)
        if entries is None:
            entries = self._classes[size] = []
            bisect.insort(self._sizes, size)
        buffer = np.empty(size, np.uint8)
        entries.append([buffer, self._tick])
        self._ids.add(id(buffer))
        self.misses += 1
        if len(entries) > MAX_PER_CLASS:            # arrays kept for long: stop scanning past them
            # (by position: list.remove would compare entries, i.e. arrays)
            oldest = min(range(len(entries)), key=lambda i: entries[i][1])
            self._ids.discard(id(entries[oldest][0]))
            del entries[oldest]
        return buffer

    def holds(self, array) -> bool:
        """True when ``array`` is one of the pool's buffers (the owner of memory it hands out)."""
        return id(array) in self._ids

    def _drop_free(self, older_than: float) -> None:
        for size in list(self._classes):
            kept = []
            for entry in self._classes[size]:
                if entry[1] > older_than or sys.getrefcount(entry[0]) != self._free_refs:
                    kept.append(entry)
                else:
                    self._ids.discard(id(entry[0]))
            if kept:
                self._classes[size] = kept
            else:
                del self._classes[size]
                self._sizes.remove(size)
            self._cursor.pop(size, None)

    def clear(self) -> None:
        """Drop every free buffer (the ones still in use are kept until the next sweep)."""
        with self._lock:
            self._drop_free(older_than=math.inf)

    def stats(self) -> dict:
        """Buffers and bytes kept, how many are free now, hits and misses so far."""
        with self._lock:
            entries = [entry for group in self._classes.values() for entry in group]
            free = [entry for entry in entries if sys.getrefcount(entry[0]) == self._free_refs]
            return {"buffers": len(entries), "bytes": sum(e[0].nbytes for e in entries),
                    "free_buffers": len(free), "free_bytes": sum(e[0].nbytes for e in free),
                    "hits": self.hits, "misses": self.misses}


_pool = BufferPool()
_enabled = os.environ.get("MINITENSOR_BUFFER_POOL", "1").strip() != "0" and _refcounts_reliable()


def empty(shape, dtype) -> np.ndarray:
    """``np.empty(shape, dtype)`` (C order), from the pool when it is on and the array is big."""
    if _enabled:
        return _pool.empty(shape, dtype)
    return np.empty(shape, dtype)


def holds(array) -> bool:
    """True when ``array`` is a buffer of the pool: it then has one reference more than
    the arrays using it (the pool's own), which is how a caller counting references to
    the owner of an array's memory tells that array is its only user."""
    return _pool.holds(array)


def set_enabled(enabled: bool) -> bool:
    """Turn the pool on or off for this process; returns the previous setting."""
    global _enabled
    previous = _enabled
    _enabled = bool(enabled) and _refcounts_reliable()
    return previous


def enabled() -> bool:
    """Whether ``empty`` uses the pool."""
    return _enabled


def clear() -> None:
    """Give the pool's free buffers back to the allocator (e.g. after training, before
    something else needs the memory)."""
    _pool.clear()


def stats() -> dict:
    """The pool's buffers, bytes, free buffers and bytes, hits and misses."""
    return _pool.stats()
