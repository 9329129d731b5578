"""``profile`` and ``record_function``: time every op the engine runs, and your own ranges.

``profile`` registers itself as an engine observer (``autograd.add_observer``): the
engine calls ``op_begin`` before and ``op_end`` after each forward and each node's
backward, the only two places ops run. Ranges and ops share one stack, so a range's
*self* time is its total minus the ops and ranges nested in it. Nothing is watched
outside a ``with profile():`` block; the engine then pays one check per op.
"""
from __future__ import annotations

import enum
import functools
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .. import autograd
from ..autograd import _flatten_saved
from ..ops.costs import nbytes

_active: list["profile"] = []  # the profilers inside their ``with`` block, innermost last


@dataclass
class Event:
    """One timed thing: an op's forward or backward, or a ``record_function`` range.

    Times are nanoseconds from ``time.perf_counter_ns``. ``flops`` is None when the op
    states no cost (shown as "-"); ranges have neither flops nor bytes.
    """
    name: str
    phase: str            # "forward", "backward" or "range"
    start_ns: int
    duration_ns: int
    self_ns: int          # duration minus the events nested in it
    flops: int | None = None
    bytes: int = 0
    shapes: list = field(default_factory=list)
    tid: int = 0


class ProfilerActivity(enum.Enum):
    """torch's activity names; minitensor runs on the CPU only."""
    CPU = "cpu"


class profile:
    """Record every op (forward and backward) and ``record_function`` range in a block.

    Args:
        activities: as torch's; only ``[ProfilerActivity.CPU]`` (the default) exists here.
        record_shapes: keep each op's input shapes (the trace shows them).
        roofline: a ``Roofline`` to compare against, or None to measure (once, cached:
            ``measure_roofline``) when a table first needs it.

    After the block: ``events`` (a list of ``Event``), ``key_averages()``,
    ``export_chrome_trace(path)``.
    """

    def __init__(self, activities=None, record_shapes: bool = True, roofline=None):
        if activities is not None and set(activities) - {ProfilerActivity.CPU}:
            raise ValueError(f"profile: minitensor runs on the CPU only; got activities {activities}")
        self.roofline = roofline
        self.record_shapes = record_shapes
        self.events: list[Event] = []
        self._stack: list[list[int]] = []  # [start_ns, nested_ns] of each open op or range
        self.start_ns = 0

    def __enter__(self) -> "profile":
        self.events, self._stack = [], []
        self.start_ns = time.perf_counter_ns()
        _active.append(self)
        autograd.add_observer(self)
        return self

    def __exit__(self, *exc_info) -> None:
        autograd.remove_observer(self)
        _active.remove(self)

    # ---------------------------------------------------------------- engine observer
    def op_begin(self, op, ctx, phase: str) -> None:
        self._stack.append([time.perf_counter_ns(), 0])

    def op_abort(self) -> None:
        self._stack.pop()

    def op_end(self, op, ctx, phase: str, ins, outs, attrs) -> None:
        start, duration, nested = self._close()
        flops, moved = op_cost(op, ctx, phase, ins, outs, attrs)
        shapes = [tuple(a.shape) if isinstance(a, np.ndarray) else None for a in ins] \
            if self.record_shapes else []
        self.events.append(Event(op.__name__, phase, start, duration, duration - nested, flops,
                                 moved, shapes, threading.get_ident()))

    # ---------------------------------------------------------------- ranges
    def _open_range(self) -> None:
        self._stack.append([time.perf_counter_ns(), 0])

    def _close_range(self, name: str) -> None:
        start, duration, nested = self._close()
        self.events.append(Event(name, "range", start, duration, duration - nested,
                                 tid=threading.get_ident()))

    def _close(self) -> tuple[int, int, int]:
        """Close the innermost open op or range: (start, duration, nested time)."""
        end = time.perf_counter_ns()
        start, nested = self._stack.pop()
        duration = end - start
        if self._stack:  # the enclosing range spent this much in us
            self._stack[-1][1] += duration
        return start, duration, nested

    # ---------------------------------------------------------------- results
    def key_averages(self):
        """One ``EventAverage`` per (name, phase): ``.table(sort_by=..., row_limit=...)``."""
        from .averages import EventAverages
        return EventAverages.from_events(self.events, self._get_roofline)

    def export_chrome_trace(self, path) -> None:
        """Write the events as Chrome trace JSON (Perfetto, chrome://tracing)."""
        from .trace import write_chrome_trace
        write_chrome_trace(self.events, path, self.start_ns, os.getpid())

    def _get_roofline(self):
        if self.roofline is None:
            from .roofline import measure_roofline
            self.roofline = measure_roofline()
        return self.roofline or None


def op_cost(op, ctx, phase: str, ins, outs, attrs) -> tuple[int | None, int]:
    """(FLOPs or None, bytes) of one op run: the op's own ``cost``, bytes measured.

    Bytes: ``bytes_moved`` (every array read or written), unless the op's ``cost``
    returns its own count.
    """
    flops = None
    moved = None
    if op.cost is not None:
        stated = op.cost(ctx, phase, ins, outs, attrs)
        flops, moved = stated if isinstance(stated, tuple) else (stated, None)
    if moved is None:
        moved = bytes_moved(ctx, phase, ins, outs)
    return flops, moved


def bytes_moved(ctx, phase: str, ins, outs) -> int:
    """Bytes read and written: each distinct input (and, in backward, saved) array once,
    each output that is a new array once. An op that returns its inputs as they are
    (Add's backward passes g to both inputs) moved nothing."""
    seen = {id(a) for a in ins}
    written = []
    for a in outs:
        if isinstance(a, np.generic):  # a 0-d result (np.sum of everything) is a NumPy scalar
            a = np.asarray(a)
        if isinstance(a, np.ndarray) and id(a) not in seen:
            seen.add(id(a))
            written.append(a)
    if not written:
        return 0
    read = list({id(a): a for a in ins}.values())
    if phase == "backward" and ctx._saved:
        read += [a for a in _flatten_saved(ctx._saved) if isinstance(a, np.ndarray)
                 and id(a) not in seen]
    return nbytes(read) + nbytes(written)


class record_function:
    """A named range in the profile (a context manager or a decorator), as torch's.

    Shows in the table (its calls, total and self time) and in the trace; costs one
    list check when no profiler is active.
    """

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> "record_function":
        self._profilers = tuple(_active)
        for p in self._profilers:
            p._open_range()
        return self

    def __exit__(self, *exc_info) -> None:
        for p in reversed(self._profilers):
            p._close_range(self.name)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with record_function(self.name):
                return fn(*args, **kwargs)
        return wrapper
