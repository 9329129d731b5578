"""Timing, thread settings, environment header, table printing and JSON output for bench/.

Timing protocol (``compare``):
    1. warm-up: each implementation is called ``warmup`` times (the first call of a
       Numba kernel compiles or loads it from the cache; BLAS and torch allocate pools);
    2. calibration: one more call sets ``number``, the calls per run, so one run lasts at
       least ``min_run_time`` (a 50 us kernel timed one call at a time is mostly timer
       and scheduler noise);
    3. ``repeat`` runs, *interleaved*: run r of every implementation happens before run
       r + 1 of any, so a burst of background load hits all of them alike;
    4. the reported time is the median over runs of (run time / number), from
       ``time.perf_counter``. The garbage collector is off inside a run (as ``timeit``).

Kernel rows are measured in one process with the same thread counts: Numba n threads,
every BLAS n threads (threadpoolctl), ``torch.set_num_threads(n)``; nobody's OpenMP wait
policy is changed. End-to-end rows use the fair protocol instead (``protocol.py``: each
library in its own process).
"""
from __future__ import annotations

import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from .protocol import PROTOCOL

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# OMP_WAIT_POLICY as the user started us (minitensor never sets it; the header says).
OMP_POLICY_AT_START = os.environ.get("OMP_WAIT_POLICY")
REEXEC_MARK = "MINITENSOR_BENCH_UNSET_OPENBLAS"  # JSON of the removed variables, set on re-exec
THREADS = 2

_blas_limit = None  # keeps the threadpoolctl limiter alive for the whole run
_order_warning = None  # set when configure_threads ran too late to order the imports


@dataclass
class Settings:
    """How hard to measure: runs per row, warm-up calls, minimum duration of one run."""

    repeat: int = 7
    warmup: int = 2
    min_run_time: float = 0.05   # seconds
    e2e_repeat: int = 5
    size: str = "full"           # "full" | "quick" | "toy" (the smoke test)


FULL = Settings()
QUICK = Settings(repeat=5, warmup=1, min_run_time=0.01, e2e_repeat=3, size="quick")
TOY = Settings(repeat=1, warmup=0, min_run_time=0.0, e2e_repeat=1, size="toy")


# ----------------------------------------------------------------------------- threads

_torch_disabled = False


def disable_torch() -> None:
    """--no-torch: never import torch (its columns stay empty, the header says so)."""
    global _torch_disabled
    _torch_disabled = True


def try_import_torch():
    """torch, or None when it is not installed or disabled (its columns are then empty)."""
    if _torch_disabled:
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch


def configure_threads(n: int = THREADS) -> dict:
    """Numba, BLAS and torch all get ``n`` threads (kernel rows); returns what each reports.

    Import order matters to Numba's "omp" threading layer: it can end up on the libgomp
    torch loaded, so minitensor.kernels is imported first (the header warns otherwise).
    Neither library's OpenMP wait policy is changed here: both run as their users' do.
    """
    global _blas_limit, _order_warning
    if "torch" in sys.modules and "minitensor.kernels" not in sys.modules:
        _order_warning = "torch was imported before minitensor: Numba threads may busy-wait"
    import minitensor.kernels  # noqa: F401  (before any OpenMP runtime loads)
    torch = try_import_torch()
    import numba
    from threadpoolctl import threadpool_limits

    try:  # SciPy's BLAS (what Numba's np.dot calls) loads lazily: load it to limit it too
        import scipy.linalg.cython_blas  # noqa: F401
    except ImportError:
        pass
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    _blas_limit = threadpool_limits(limits=n, user_api="blas")
    if torch is not None:
        torch.set_num_threads(n)
    return thread_counts()


def thread_counts() -> dict:
    """Thread counts as each library reports them now."""
    import numba
    from threadpoolctl import threadpool_info

    blas = sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
    torch = try_import_torch()
    return {"numba": numba.get_num_threads(), "blas": blas,
            "torch": torch.get_num_threads() if torch is not None else None}


# --------------------------------------------------------------------------------- env

def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere).

    minitensor.profiler.roofline has the same reader; this one is kept apart because
    PyTorch's bench processes import this module and must never load minitensor.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> str:
    """The widest x86 vector extension the CPU reports (avx512f, avx2, ...)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        return "unknown"
    for ext in ("avx512f", "avx2", "avx", "sse4_2"):
        if ext in flags:
            return ext
    return "none"


def environment() -> dict:
    """Everything the header prints: CPU, versions, BLAS, threads, OpenBLAS variables."""
    import numba
    import numpy as np
    from threadpoolctl import threadpool_info

    torch = try_import_torch()
    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '?')}, "
            f"{i['num_threads']} thr, {os.path.basename(i['filepath'])})"
            for i in sorted(threadpool_info(), key=lambda i: i["filepath"])
            if i["user_api"] == "blas"]
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = "not yet chosen"
    return {
        "cpu": cpu_model(), "vector_ext": cpu_flags(), "cores": os.cpu_count(),
        "python": platform.python_version(), "numpy": np.__version__,
        "numba": numba.__version__, "torch": torch.__version__ if torch else None,
        "blas": blas, "threads": thread_counts(), "numba_threading_layer": layer,
        "import_order_warning": _order_warning,
        # other processes' load: above ~0 the timings are noisy (2 cores: 2 = saturated)
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "openblas_env": {k: os.environ.get(k) for k in OPENBLAS_VARS},
        "omp_wait_policy": {"at_start": OMP_POLICY_AT_START,
                            "now": os.environ.get("OMP_WAIT_POLICY")},
        "minitensor_tuned": _tuned(),
        # what --unset-openblas-env removed before re-exec'ing ({} when it did not run)
        "openblas_env_removed_by_bench": json.loads(os.environ.get(REEXEC_MARK) or "{}"),
    }


def _tuned() -> dict:
    try:
        from minitensor import kernels
    except ImportError:
        return {}
    return kernels.tuned()


def _unset(v) -> str:
    return "(unset)" if v is None else str(v)


def _load(env: dict) -> str:
    now = env.get("loadavg_1min")
    start = env.get("loadavg_1min_at_start")
    if now is None:
        return "?"
    return f"{start:.2f} at start, {now:.2f} at end" if start is not None else f"{now:.2f}"


def format_header(env: dict) -> str:
    """The environment as a few readable lines."""
    ob = ", ".join(f"{k}={_unset(v)}" for k, v in env["openblas_env"].items())
    removed = env["openblas_env_removed_by_bench"]
    if removed:
        gone = ", ".join(f"{k}={v}" for k, v in removed.items())
        ob += f"  [--unset-openblas-env: bench re-exec'd itself without {gone}]"
    elif any(v is not None for v in env["openblas_env"].values()):
        ob += "  [set: may halve OpenBLAS throughput; try --unset-openblas-env]"
    t = env["threads"]
    lines = [
        f"CPU      {env['cpu']} ({env['cores']} cores, {env['vector_ext']})",
        f"versions python {env['python']}, numpy {env['numpy']}, numba {env['numba']}, "
        f"torch {env['torch'] or '(not installed or --no-torch)'}",
        *[f"BLAS     {b}" for b in env["blas"]],
        f"threads  numba {t['numba']} ({env['numba_threading_layer']}), BLAS {t['blas']}, "
        f"torch {t['torch']}",
        f"load     1-min load average {_load(env)} on {env['cores']} cores, "
        f"{env.get('date', '?')} (background load makes every number noisy)",
        f"env      {ob}",
        f"env      OMP_WAIT_POLICY={_unset(env['omp_wait_policy']['now'])} in the kernel rows' "
        f"process (at start: {_unset(env['omp_wait_policy']['at_start'])}); "
        f"minitensor.kernels.tune_process(): {env.get('minitensor_tuned') or 'not called'} "
        f"(opt-in; minitensor sets nothing process-wide)",
        f"protocol e2e: {PROTOCOL}",
    ]
    if env.get("import_order_warning"):
        lines.append(f"WARNING  {env['import_order_warning']}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ timing

@dataclass
class Timing:
    """Per-call seconds of each run, and how many calls one run made."""

    runs: list = field(default_factory=list)
    number: int = 1

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else math.nan

    @property
    def min(self) -> float:
        return min(self.runs) if self.runs else math.nan


def _run_once(fn: Callable, number: int) -> float:
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - t0) / number
    finally:
        if gc_was_on:
            gc.enable()


def _calibrate(fn: Callable, min_run_time: float) -> int:
    """Calls per run so that one run lasts at least ``min_run_time`` (at most 10000)."""
    if min_run_time <= 0:  # one call per run (end-to-end steps): no calibration call
        return 1
    once = _run_once(fn, 1)
    if once >= min_run_time:
        return 1
    return min(10_000, math.ceil(min_run_time / max(once, 1e-7)))


def compare(fns: dict, settings: Settings, repeat: int | None = None) -> dict:
    """Time every callable in ``fns`` (name -> fn() ) interleaved; name -> Timing."""
    repeat = settings.repeat if repeat is None else repeat
    timings = {}
    for name, fn in fns.items():
        for _ in range(settings.warmup):
            fn()
        timings[name] = Timing(number=_calibrate(fn, settings.min_run_time))
    for _ in range(repeat):
        for name, fn in fns.items():
            # young generations only: a full collection walks every object numba and
            # torch created at import (~0.2 s each time), a cost no run should carry
            gc.collect(1)
            timings[name].runs.append(_run_once(fn, timings[name].number))
    return timings


def ratio(num: float | None, den: float | None) -> float | None:
    """num / den, or None when either is missing or not finite."""
    if num is None or den is None or not (math.isfinite(num) and math.isfinite(den)) or den <= 0:
        return None
    return num / den


# ------------------------------------------------------------------------------ tables

def _cell(v, fmt: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, fmt) if math.isfinite(v) else "nan"
    return str(v)


def format_table(rows: list, columns: list) -> str:
    """A plain-text table; ``columns`` is a list of (key, title, format spec)."""
    cells = [[title for _, title, _ in columns]]
    for row in rows:
        cells.append([_cell(row.get(key), fmt) for key, _, fmt in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    out = []
    for n, r in enumerate(cells):
        # text columns left-aligned, numbers right-aligned
        out.append("  ".join(c.ljust(w) if fmt == "" else c.rjust(w)
                             for c, w, (_, _, fmt) in zip(r, widths, columns)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_markdown(rows: list, columns: list) -> str:
    """The same table as GitHub markdown (for bench/README.md)."""
    head = "| " + " | ".join(t for _, t, _ in columns) + " |"
    sep = "|" + "|".join("---" if fmt == "" else "---:" for _, _, fmt in columns) + "|"
    body = ["| " + " | ".join(_cell(r.get(k), f) for k, _, f in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


# -------------------------------------------------------------------------------- json

def _jsonable(x):
    """NaN/inf -> None so the file is strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def write_json_atomic(path: str, data: dict) -> None:
    """Write ``data`` to ``path`` atomically, so a reader never sees a half-written file."""
    # Imported here, not at the top: the harness decides when minitensor is first imported
    # (the import order of the libraries it compares matters to their thread runtimes).
    from minitensor.io import atomic_write
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, json.dumps(_jsonable(data), indent=1, sort_keys=False) + "\n")
