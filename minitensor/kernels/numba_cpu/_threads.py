"""Thread policy: when Numba kernels run on several threads, and which BLAS threads they use.

The machine has few cores. A kernel that runs ``prange`` over (batch, head) already keeps
every core busy; if each of those Numba threads then calls ``np.dot`` (which Numba sends
to SciPy's OpenBLAS) and OpenBLAS starts its own thread pool, the cores are
oversubscribed and everything slows down (and concurrent calls into a threaded
OpenBLAS are not something to rely on).

Policy:
    - Numba owns the parallelism: its thread count is left as it is
      (``numba.set_num_threads`` / NUMBA_NUM_THREADS are the user's knobs).
    - While a kernel that calls BLAS runs, the BLAS library Numba calls into (SciPy's;
      every loaded BLAS except NumPy's own copy) is limited to 1 thread
      (``blas_single_threaded()``), and restored afterwards. Big products are split
      over Numba's threads instead (``matmul_numba``).
    - NumPy's BLAS is never touched, and the Numba backend does not use it for float
      products: a multi-threaded OpenBLAS (pthreads build) keeps its idle threads
      spinning for a while after each call, and on a loaded 2-core machine those
      spinning threads took the cores from everything else (a Transformer training step
      measured 1.0-1.5 s with 2 BLAS threads instead of 0.19 s with 1).
    - The toggle calls OpenBLAS's own openblas_get/set_num_threads, found through
      threadpoolctl (the set skipped when already 1). Giving OpenBLAS its threads back
      wakes them (~7 us inside a training step), so blocks nest, and our bigger calls
      (the engine's backward pass, the trainer's step, decoding) open one block for all
      their products: an inner block costs a counter.
    - Small work runs on the calling thread (``launch``): waking an idle Numba thread
      costs ~5 us on a busy machine and ~30 us on an idle one (measured on 2 cores),
      more than a (64, 128) layer norm takes in total, and after a parallel region the
      threads of Numba's "omp" layer spin for a while under OpenMP's default wait
      policy (minitensor does not change it: ``kernels.tune_process`` is the user's
      opt-in), taking a core from other work. Every prange kernel is compiled
      twice (``parallel_kernel``): the serial twin enters no parallel region at all,
      which matters on Numba's "workqueue" layer, where even a one-thread region is
      two round trips to the worker threads (the main thread only waits): with it, a training step measured 132 ms on 2 threads
      against 100 ms on 1 on a loaded machine, and 88 against 87 with the twins.

If threadpoolctl is missing, the context manager does nothing (correct, possibly slower).
"""
from __future__ import annotations

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - threadpoolctl is a listed dependency
    ThreadpoolController = None

import os
import threading
import types

import numba
import numpy as np

from ._background_compile import parallel_ready

# Kernels given less work than this (in elements, each about as costly as a layer-norm
# element: ~0.4 ns on one core; costlier kernels count theirs several times) run on the
# calling thread alone. Timed alone on 2 idle cores, a (1024, 128) layer norm (131K
# elements) took 54 us on one thread and 65 us on two (waking the second thread costs
# ~30 us). Inside a training step the picture differs: the step's parallel kernels
# follow each other closely enough that the Numba threads are still awake, and the
# operands come from L3, where two cores fetch faster than one. Measured in the dates
# task's step (2 idle cores, 5 alternated processes, medians): 262,144 -> 16,384 took it
# from 15.2 to 14.2 ms (4,096: the same); config S unchanged (its kernels were above both).
PARALLEL_MIN_WORK = 1 << 14

_controls = None  # (get, set) thread-count functions of the BLAS libraries Numba may call
_local = threading.local()  # .depth: blas_single_threaded blocks open on this thread


def _numba_blas_libs():
    """threadpoolctl's controllers of the BLAS libraries Numba's np.dot may call: every
    loaded BLAS except NumPy's own copy. Scanning the loaded libraries costs ~ms: once."""
    libs = []
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
                libs.append(lib)
    return libs


def _thread_count_functions(lib):
    """(get, set) for one BLAS library: OpenBLAS's own C functions where threadpoolctl
    finds them (the ones it would call), else threadpoolctl's methods. Called directly,
    a get + set + set costs ~0.5 us; through threadpoolctl's Python layers ~4-10 us
    inside a training step, which enters this ~60 times."""
    if getattr(lib, "internal_api", None) == "openblas":
        names = (("omp_get_max_threads", "omp_set_num_threads")
                 if getattr(lib, "threading_layer", None) == "openmp"
                 else ("openblas_get_num_threads", "openblas_set_num_threads"))
        try:
            get, set_ = (lib._get_symbol(name) for name in names)
        except Exception:  # threadpoolctl's internals changed: use its public methods
            get = set_ = None
        if get is not None and set_ is not None:
            return get, set_
    return lib.get_num_threads, lib.set_num_threads


def _blas_controls():
    global _controls
    if _controls is None:
        _controls = [_thread_count_functions(lib) for lib in _numba_blas_libs()]
    return _controls


class _BlasSingleThreaded:
    """Context manager: the BLAS libraries Numba calls run on 1 thread inside the block,
    and at their previous count again after it.

    A class rather than a @contextmanager generator: it is entered around every GEMM
    (60+ times per training step). Blocks nest: inside an open block (the autograd
    engine opens one around a whole backward pass) entering costs nothing.
    """

    __slots__ = ("controls", "previous")

    def __enter__(self):
        depth = getattr(_local, "depth", 0)
        _local.depth = depth + 1
        self.previous = None
        if depth == 0:
            self.controls = controls = _controls if _controls is not None else _blas_controls()
            previous = [get() for get, _ in controls]
            for (_, set_), n in zip(controls, previous):
                if n != 1:
                    set_(1)
            self.previous = previous
        return self

    def __exit__(self, *exc):
        _local.depth -= 1
        if self.previous is not None:
            for (_, set_), n in zip(self.controls, self.previous):
                if n != 1:
                    set_(n)
        return False


def blas_single_threaded() -> _BlasSingleThreaded:
    """Limit the BLAS Numba calls into to one thread for the duration of a ``with`` block."""
    return _BlasSingleThreaded()


def parallel_kernel(**jit_options):
    """Decorator for a ``prange`` kernel: its ``parallel=True`` compilation, carrying as
    ``.serial`` the same body compiled without it (prange then runs as range, on the
    calling thread). ``launch`` picks one per call.

    The serial twin is compiled from a copy of the function under its own name:
    Numba names the on-disk cache after the function, and its cache index does not
    record the parallel flag, so two compilations of one function would overwrite (or
    load) each other's cached code.
    """
    def compile_both(fn):
        twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial",
                                  fn.__defaults__, fn.__closure__)
        twin.__qualname__ = fn.__qualname__ + "_serial"
        twin.__module__ = fn.__module__
        twin.__doc__ = fn.__doc__
        kernel = numba.njit(parallel=True, **jit_options)(fn)
        kernel.serial = numba.njit(**jit_options)(twin)
        return kernel
    return compile_both


def launch(kernel, work: int, *args):
    """``kernel(*args)`` for a ``parallel_kernel``: on the Numba threads when ``work``
    (elements, or an equivalent count) reaches PARALLEL_MIN_WORK and more than one
    thread is allowed and its parallel code is compiled (_background_compile.py), else
    its serial twin on the calling thread."""
    # get_num_threads() first, always: it also starts Numba's threading layer, so which
    # layer runs (numba.threading_layer()) is settled by the first kernel call either way.
    if numba.get_num_threads() > 1 and work >= PARALLEL_MIN_WORK and parallel_ready(kernel, *args):
        return kernel(*args)
    return kernel.serial(*args)


def reset() -> None:
    """Forget the cached library list (call after loading a new BLAS library)."""
    global _controls
    _controls = None
