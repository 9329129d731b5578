"""Kernel backends: the arithmetic behind the ops, on plain NumPy arrays.

Two packages implement the same functions with the same signatures, in files of the
same names (one kernel family per file: rows, pointwise, embedding, linalg, attention,
adam):

    numpy_ref/  plain NumPy, written to be read: the specification.
    numba_cpu/  @njit twins, the fast path (default when numba imports).

Ops never import a backend directly; they call ``kernels.get().<name>(...)`` so the
backend can be switched at run time::

    from minitensor import kernels
    kernels.set_backend("numpy")          # or "numba"
    with kernels.use("numpy"):            # temporarily
        ...
    with kernels.threads(1):              # Numba's and the BLAS libraries' threads
        ...
    kernels.tune_process()                # opt-in process-wide tuning (process.py)

The fast backend takes its big output arrays from ``buffers`` (buffers.py), a pool of
freed arrays reused step after step instead of fresh pages from the allocator each time
(``buffers.clear()`` gives the free ones back; MINITENSOR_BUFFER_POOL=0 turns it off).

The starting backend comes from the environment variable MINITENSOR_BACKEND
(``numba`` or ``numpy``); without it, numba is used when it imports.
Nothing here prints, and importing it compiles nothing (Numba compiles lazily).
"""
from __future__ import annotations

import contextlib
import os
from types import ModuleType

from . import numpy_ref, process
from .process import tune_process, tuned

# Nothing process-wide is set here: no environment variable, no allocator or OpenMP
# setting, no Numba threading layer. Those change every other library in the process;
# they are the user's opt-in (tune_process() or MINITENSOR_TUNE_PROCESS=1, process.py).
process.tune_if_requested()

BACKENDS = ("numba", "numpy")
_loaded: dict[str, ModuleType] = {"numpy": numpy_ref}
_active: ModuleType | None = None
_active_name: str | None = None


def _load(name: str) -> ModuleType:
    if name not in BACKENDS:
        raise ValueError(f"unknown kernel backend {name!r}; choose one of {BACKENDS}")
    if name not in _loaded:  # "numba", the first time
        # Imported here, not at the top: numba is optional (ImportError -> the numpy
        # backend) and heavy (it loads LLVM); `import minitensor` stays fast and works
        # without numba.
        from . import numba_cpu
        _loaded[name] = numba_cpu
    return _loaded[name]


def numba_available() -> bool:
    """True when the numba backend can be imported on this machine."""
    try:
        _load("numba")
        return True
    except ImportError:
        return False


def kernels_need_compiling() -> bool:
    """True when the numba backend is active and its on-disk cache is cold (empty, or
    compiled from other sources): the first steps will spend seconds compiling. For a
    visible "compiling kernels" message; False on the numpy backend."""
    return get().cache_is_cold()


def set_backend(name: str) -> None:
    """Make ``name`` ("numba" or "numpy") the backend every op uses from now on."""
    global _active, _active_name
    _active = _load(name)
    _active_name = name


def get() -> ModuleType:
    """The active backend package (numpy_ref or numba_cpu)."""
    if _active is None:
        _init_from_environment()
    return _active


def backend_name() -> str:
    """Name of the active backend: "numba" or "numpy"."""
    get()
    return _active_name


@contextlib.contextmanager
def use(name: str):
    """Context manager: run the block with backend ``name``, then restore the previous one."""
    previous = backend_name()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def _init_from_environment() -> None:
    requested = os.environ.get("MINITENSOR_BACKEND", "").strip().lower()
    if requested:
        set_backend(requested)  # an explicit request that fails should fail loudly
        return
    set_backend("numba" if numba_available() else "numpy")


@contextlib.contextmanager
def threads(n: int):
    """Limit Numba's and every BLAS library's threads to ``n`` inside the block (0: no change).

    The one thread control of the project (the trainer's ``--threads``, the benches).
    With small matrices on a few cores that other processes also use, extra threads
    mostly wait for each other: a step can be several times slower with 2 threads than
    with 1. Both settings are restored on exit.
    """
    if n <= 0:
        yield
        return
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
            stack.enter_context(threadpool_limits(limits=n))
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            pass
        try:
            import numba
        except ImportError:  # the numpy backend alone: nothing more to limit
            yield
            return
        before = numba.get_num_threads()
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        try:
            yield
        finally:
            numba.set_num_threads(before)
