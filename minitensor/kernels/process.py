"""Opt-in process-wide tuning: settings minitensor never applies unless the user asks.

minitensor is correct without any of them, and each one changes how other libraries in
the process behave (PyTorch measured up to 2x slower or faster under the OpenMP wait
policy, depending on the machine's load). So a library must not set them behind the
user's back; a program that runs mostly minitensor on a small, busy machine (a training
script, the project's CLI) may want them:

    import minitensor
    minitensor.kernels.tune_process()        # before the first numba kernel runs

or, without changing code, ``MINITENSOR_TUNE_PROCESS=1`` in the environment (read once,
when ``minitensor.kernels`` is imported). ``tuned()`` says what was applied; the bench
header prints it.

What it does (each part can be turned off or changed by its argument):

    threading_layer    "workqueue" (default): Numba's own thread pool, whose idle threads
                       sleep, instead of its "omp" layer, whose idle OpenMP threads spin
                       for ~ms after each parallel region under OpenMP's default policy.
                       On a loaded 2-core machine a config-S step measured 0.8-2.6 s on
                       "omp" and 0.14-0.40 s on "workqueue" (alternated processes). It is
                       a setting of Numba's, for every Numba user in the process (the
                       workqueue layer does not support parallel kernels launched from
                       several threads at once), hence opt-in. Left alone when the user
                       set NUMBA_THREADING_LAYER; possible only before Numba launches
                       its threads (the first parallel kernel). None: Numba's choice.
    keep_freed_memory  glibc's malloc keeps freed blocks mapped (mmap/trim thresholds
                       raised, ``_malloc.py``): fewer page faults per step, at the price
                       of a process that never shrinks. Skipped when the user tunes
                       malloc (MALLOC_*_ variables, GLIBC_TUNABLES).
    omp_passive        off by default: OMP_WAIT_POLICY=PASSIVE in os.environ (unless the
                       user set it), read by an OpenMP runtime when it loads; only
                       useful with the "omp" layer, and it reaches every OpenMP user
                       (torch too).
"""
from __future__ import annotations

import os

ENV_VAR = "MINITENSOR_TUNE_PROCESS"

_applied: dict = {}


def tune_process(threading_layer: str | None = "workqueue", keep_freed_memory: bool = True,
                 omp_passive: bool = False) -> dict:
    """Apply the process-wide settings above (the user's own values win); returns
    ``tuned()``. Calling it again only adds what was not applied yet."""
    if threading_layer is not None and "threading_layer" not in _applied:
        _applied["threading_layer"] = _set_threading_layer(threading_layer)
    if keep_freed_memory and "keep_freed_memory" not in _applied:
        from . import _malloc  # glibc only; a no-op elsewhere
        _applied["keep_freed_memory"] = _malloc.keep_freed_memory()
    if omp_passive and "omp_wait_policy" not in _applied:
        if "OMP_WAIT_POLICY" not in os.environ:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
            _applied["omp_wait_policy"] = "PASSIVE"
        else:
            _applied["omp_wait_policy"] = f"left as the user set it ({os.environ['OMP_WAIT_POLICY']})"
    return tuned()


def _set_threading_layer(layer: str) -> str:
    import numba
    from numba.np.ufunc import parallel
    if "NUMBA_THREADING_LAYER" in os.environ:
        return f"left as the user set it ({os.environ['NUMBA_THREADING_LAYER']})"
    if parallel._is_initialized:
        raise RuntimeError("tune_process(threading_layer=...): Numba's threads already run "
                           f"on {numba.threading_layer()!r}; call it before the first kernel")
    numba.config.THREADING_LAYER = layer
    return layer


def tuned() -> dict:
    """What ``tune_process`` applied in this process ({} when it was never asked)."""
    return dict(_applied)


def tune_if_requested() -> None:
    """``tune_process()`` when the user set MINITENSOR_TUNE_PROCESS=1 (kernels' import)."""
    if os.environ.get(ENV_VAR, "").strip() not in ("", "0"):
        tune_process()
