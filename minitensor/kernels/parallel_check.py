"""Print Numba's parallel diagnostics for the ``prange`` kernels of the ``numba_cpu`` package.

    python -m minitensor.kernels.parallel_check            # every prange kernel
    python -m minitensor.kernels.parallel_check softmax    # names containing "softmax"

For each kernel this compiles one float32 signature on a small input and prints
``parallel_diagnostics(level=3)``: which loops became parallel, what was fused or
hoisted, and why a loop was not parallelized. A kernel whose ``prange`` is reported as
serial has lost its parallelism.

Debugging tip: run any code with ``NUMBA_DISABLE_JIT=1`` and every ``@njit`` function in
``numba_cpu`` runs as plain Python (``prange`` becomes ``range``; the small helpers of
``_math.py`` such as ``_exp`` fall back to their NumPy bodies), so ``print``, ``pdb`` and tracebacks work
inside kernels. ``NUMBA_NUM_THREADS`` / ``numba.set_num_threads`` set the thread count.
"""
from __future__ import annotations

import sys

import numpy as np
from numba import njit

from minitensor.kernels import numba_cpu as nb
from minitensor.kernels.numba_cpu import adam, attention, embedding, linalg, pointwise, rows

KERNEL_FILES = (rows, pointwise, embedding, linalg, attention, adam)


def _run_everything():
    """Call every kernel once (float32) so each prange core has a compiled signature."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 24)).astype(np.float32)
    d = rng.standard_normal((16, 24)).astype(np.float32)
    for name in ("softmax", "log_softmax"):
        _, cache = getattr(nb, name + "_forward")(x)
        getattr(nb, name + "_backward")(d, cache)
    _, cache = nb.cross_entropy_forward(x, rng.integers(0, 24, 16), -100, 0.1, "mean")
    nb.cross_entropy_backward(np.asarray(1.0, np.float32), cache)
    _, cache = nb.layer_norm_forward(x, x[0], x[1], 1e-5)
    nb.layer_norm_backward(d, cache)
    for approximate in ("none", "tanh"):
        _, cache = nb.gelu_forward(x, approximate)
        nb.gelu_backward(d, cache)
    _, cache = nb.dropout_forward(x, 0.5, 0)
    nb.dropout_backward(d, cache)
    _, cache = nb.embedding_forward(x, rng.integers(0, 16, (3, 4)))
    nb.embedding_backward(rng.standard_normal((3, 4, 24)).astype(np.float32), cache, None)


def main(argv: list[str]) -> None:
    _run_everything()
    wanted = argv[0] if argv else ""
    kernels = sorted((module.__name__.rsplit(".", 1)[1], name, obj)
                     for module in KERNEL_FILES for name, obj in vars(module).items()
                     if hasattr(obj, "parallel_diagnostics") and obj.targetoptions.get("parallel")
                     and wanted in name)
    for file, name, fn in kernels:
        print("=" * 100)
        print(f"numba_cpu.{file}.{name}")
        print("=" * 100)
        # A kernel loaded from Numba's on-disk cache carries no diagnostics, so compile an
        # uncached twin with the same options for the signatures the kernel has seen.
        options = {k: v for k, v in fn.targetoptions.items() if k not in ("cache", "nopython")}
        twin = njit(**options)(fn.py_func)
        for sig in fn.signatures:
            twin.compile(sig)
            twin.parallel_diagnostics(sig, level=3)


if __name__ == "__main__":
    main(sys.argv[1:])
