"""Thread policy for kernels that call BLAS from inside Numba-parallel regions.

The machine has few cores. A kernel that runs ``prange`` over (batch, head) already keeps
every core busy; if each of those Numba threads then calls ``np.dot`` (which Numba sends
to SciPy's OpenBLAS) and OpenBLAS starts its own thread pool, the cores are
oversubscribed and everything slows down (and concurrent calls into a threaded
OpenBLAS are not something to rely on).

Policy:
    - Numba owns the parallelism: its thread count is left as it is
      (``numba.set_num_threads`` / NUMBA_NUM_THREADS are the user's knobs).
    - While a Numba-parallel kernel that calls BLAS per block runs, the BLAS library
      Numba calls into (SciPy's; every loaded BLAS except NumPy's own copy) is limited
      to 1 thread (``blas_single_threaded()``), and restored afterwards. NumPy's BLAS is
      never touched, so plain np.matmul on big 2-D products keeps its threads.
    - The toggle costs a few microseconds (direct openblas_set_num_threads calls through
      threadpoolctl's per-library controllers, skipped when already 1).

If threadpoolctl is missing, the context manager does nothing (correct, possibly slower).
"""
from __future__ import annotations

import contextlib

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - threadpoolctl is a listed dependency
    ThreadpoolController = None

import os

import numpy as np

_libs = None  # threadpoolctl controllers of the BLAS libraries Numba may call


def _numba_blas_libs():
    # Scanning the loaded libraries costs ~ms: do it once, lazily.
    global _libs
    if _libs is None:
        _libs = []
        if ThreadpoolController is not None:
            try:  # Numba's np.dot calls SciPy's BLAS, loaded lazily: load it so it is seen
                import scipy.linalg.cython_blas  # noqa: F401
            except ImportError:  # pragma: no cover
                pass
            numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
            numpy_dirs = (os.path.join(numpy_dir, "numpy") + os.sep,
                          os.path.join(numpy_dir, "numpy.libs") + os.sep)
            for lib in ThreadpoolController().select(user_api="blas").lib_controllers:
                if not str(lib.filepath).startswith(numpy_dirs):
                    _libs.append(lib)
    return _libs


@contextlib.contextmanager
def blas_single_threaded():
    """Limit the BLAS Numba calls into to one thread for the duration of the block."""
    libs = _numba_blas_libs()
    previous = [lib.get_num_threads() for lib in libs]
    for lib, n in zip(libs, previous):
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libs, previous):
            if n != 1:
                lib.set_num_threads(n)


def reset() -> None:
    """Forget the cached library list (call after loading a new BLAS library)."""
    global _libs
    _libs = None
