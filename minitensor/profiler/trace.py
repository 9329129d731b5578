"""Chrome trace JSON (the "Trace Event Format"): open it in https://ui.perfetto.dev or
chrome://tracing. Each op run or range is one complete event (``"ph": "X"``) with its
start ``ts`` and duration ``dur`` in microseconds; ``args`` carry phase, shapes, FLOPs
and bytes. Written atomically (``minitensor.io.atomic_write``)."""
from __future__ import annotations

import json

from ..io import atomic_write


def chrome_trace(events, start_ns: int, pid: int) -> dict:
    """The trace as a dict: {"traceEvents": [...], "displayTimeUnit": "ms"}."""
    trace = []
    for e in events:
        args = {"phase": e.phase}
        if e.phase != "range":
            args.update(shapes=[list(s) if s is not None else None for s in e.shapes],
                        flops=e.flops, bytes=e.bytes)
        trace.append({"name": e.name if e.phase == "range" else f"{e.name} ({e.phase})",
                      "cat": e.phase, "ph": "X", "ts": (e.start_ns - start_ns) / 1e3,
                      "dur": e.duration_ns / 1e3, "pid": pid, "tid": e.tid, "args": args})
    return {"traceEvents": trace, "displayTimeUnit": "ms"}


def write_chrome_trace(events, path, start_ns: int, pid: int) -> None:
    atomic_write(path, json.dumps(chrome_trace(events, start_ns, pid)))
