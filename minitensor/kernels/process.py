"""Opt-in process-wide tuning: settings minitensor never applies unless the user asks.

minitensor's own work needs none of these, and each one changes how *every* library in
the process behaves (PyTorch measured up to 2x slower or faster under the OpenMP wait
policy, depending on the machine's load). So a library must not set them behind the
user's back; a program that runs mostly minitensor on a small, busy machine may want them:

    import minitensor
    minitensor.kernels.tune_process()        # before the first numba kernel runs

or, without changing code, ``MINITENSOR_TUNE_PROCESS=1`` in the environment (read once,
when ``minitensor.kernels`` is imported). ``tuned()`` says what was applied; the bench
header prints it.

What it does (each part can be turned off by its argument):

    omp_passive        OMP_WAIT_POLICY=PASSIVE unless the user set it: idle OpenMP threads
                       (Numba's "omp" layer, torch's) sleep instead of spinning for ~ms
                       after each parallel region. Read by an OpenMP runtime once, when it
                       loads: call this before the first parallel kernel (and before torch).
    keep_freed_memory  glibc's malloc keeps freed blocks mapped (mmap/trim thresholds
                       raised, ``_malloc.py``): fewer page faults per step, at
                       the price of a process that never shrinks.
    threading_layer    Numba's threading layer ("workqueue", "omp", "tbb"); None leaves
                       Numba's choice. Only possible before Numba launches its threads.
"""
from __future__ import annotations

import os

ENV_VAR = "MINITENSOR_TUNE_PROCESS"

_applied: dict = {}


def tune_process(omp_passive: bool = True, keep_freed_memory: bool = True,
                 threading_layer: str | None = None) -> dict:
    """Apply the process-wide settings above (the user's own values win); returns
    ``tuned()``. Calling it again only adds what was not applied yet."""
    if omp_passive and "omp_wait_policy" not in _applied:
        if "OMP_WAIT_POLICY" not in os.environ:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
            _applied["omp_wait_policy"] = "PASSIVE"
        else:
            _applied["omp_wait_policy"] = f"left as the user set it ({os.environ['OMP_WAIT_POLICY']})"
    if keep_freed_memory and "keep_freed_memory" not in _applied:
        from . import _malloc  # glibc only; a no-op elsewhere
        _applied["keep_freed_memory"] = _malloc.keep_freed_memory()
    if threading_layer is not None:
        import numba
        from numba.np.ufunc import parallel
        if parallel._is_initialized:
            raise RuntimeError("tune_process(threading_layer=...): Numba's threads already "
                               f"run on {numba.threading_layer()!r}; call it earlier")
        numba.config.THREADING_LAYER = threading_layer
        _applied["threading_layer"] = threading_layer
    return tuned()


def tuned() -> dict:
    """What ``tune_process`` applied in this process ({} when it was never asked)."""
    return dict(_applied)


def tune_if_requested() -> None:
    """``tune_process()`` when the user set MINITENSOR_TUNE_PROCESS=1 (kernels' import)."""
    if os.environ.get(ENV_VAR, "").strip() not in ("", "0"):
        tune_process()
