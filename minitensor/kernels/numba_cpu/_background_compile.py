"""Parallel kernels compile in a background process the first time; serial twins work meanwhile.

Why. A kernel's ``parallel=True`` compilation costs 1.5-3x its serial twin's (Numba's
parfor passes, then the loop body outlined and compiled apart). With an empty cache the
first config-S step took 15.5 s at 2 threads against 7.7 s at 1 (bench/README.md, "Cold
start"): at 2 threads a step needs both twins (small calls take the serial one, big
calls the parallel one). The parallel code is an optimization, never needed for the
answer: every parallel kernel here has a serial twin that gives the same numbers.

How, at each call site of a parallel kernel (``launch`` and the linear-algebra ones):

    if parallel_ready(kernel, *args): kernel(*args)      else: the serial twin
    parallel_ready:
        kernel loaded in this process already           -> yes
        first call: Numba's disk cache has its code for these argument types
                                                        -> load it, yes
                    else: ask the background process to compile it; no
        asked before: the background process said it is done
                                                        -> yes (Numba loads it from the cache)
                      else                              -> no

The background process (``python -m minitensor.kernels.numba_cpu._background_compile``)
compiles each kernel it is sent, for the argument types it is sent, into the same
on-disk cache, and says so on its output. At exit this process closes its input, and it
ends once it has compiled what it was sent (a few seconds at most), so that a short run
still leaves the next one a complete cache instead of starting over each time. Until a kernel is there its work runs on the calling thread: the first steps of
the first run at 2 threads run at about one thread's speed while the other core
compiles; afterwards the parallel kernels load from the cache in milliseconds. One line
on stderr says that this is happening.

``compile_ahead(kernel, *args)`` sends the background process one more kind of request:
a kernel this process will call soon, whatever it is (Linear's weight gradient, asked for
at the first forward product). Nothing waits for it: if the code is not in the cache at
its first call, Numba compiles it here as usual; either way the same code runs.

``MINITENSOR_BACKGROUND_COMPILE=0`` turns it off: every kernel compiles in this process
when first called, as Numba does (the test suite does this, so that its parallel-kernel
tests always run the parallel code).
"""
from __future__ import annotations

import atexit
import os
import pickle
import subprocess
import sys
import threading

ENV_VAR = "MINITENSOR_BACKGROUND_COMPILE"

_ready: set = set()          # kernels whose parallel code is loaded (or may be) in this process
_pending: set = set()        # kernels sent to the background process, not done yet
_done: set = set()           # (module, name) the background process has compiled or given up on
_ahead: set = set()          # kernels compile_ahead was asked for (once each)
_worker = None               # the background process (subprocess.Popen)
_worker_pid = None           # the process that started it (a forked child starts its own)
_lock = threading.Lock()


def enabled() -> bool:
    """Whether parallel kernels missing from the cache compile in the background."""
    return os.environ.get(ENV_VAR, "1").strip() != "0"


def parallel_ready(kernel, *args) -> bool:
    """True when ``kernel(*args)`` may run its parallel code now; otherwise the caller runs
    the serial twin (and the parallel code is on its way, see the module docstring)."""
    if kernel in _ready:
        return True
    return _first_calls(kernel, args)


def asked_ahead(kernel) -> bool:
    """True once ``compile_ahead`` was called for ``kernel``: a call site checks this
    first, so that building the stand-in arguments costs nothing on later calls."""
    return kernel in _ahead


def compile_ahead(kernel, *args) -> None:
    """Ask the background process to compile ``kernel`` (any jitted function, not only a
    parallel one) for the types of ``args`` now, because this process will call it soon,
    unless it is loaded or cached. Never waits and changes no answer: if the code is not
    in the cache by the time of the call, Numba compiles it here as usual. Used for a
    kernel whose first call is predictable and comes seconds later (Linear's weight
    gradient: the first backward follows the first forward's compilations), so that a
    first step with an empty cache does not compile it on the critical path."""
    if kernel in _ahead:
        return
    _ahead.add(kernel)
    if not enabled():
        return
    sig = _signature(kernel, args)
    if sig is not None and not _loaded_or_cached(kernel, sig):
        _send(kernel, sig, first=True)


def _first_calls(kernel, args) -> bool:
    if kernel in _pending:
        if _key(kernel) not in _done:
            return False
        _pending.discard(kernel)          # compiled over there: Numba loads it at the call
        _ready.add(kernel)
        return True
    sig = _signature(kernel, args) if enabled() else None
    if sig is None or _loaded_or_cached(kernel, sig) or not _send(kernel, sig):
        _ready.add(kernel)                # (or: compile it here, now, as Numba would)
        return True
    _pending.add(kernel)
    return False


def _key(kernel) -> tuple:
    return kernel.py_func.__module__, kernel.py_func.__name__


def _signature(kernel, args):
    """Numba's types of ``args`` (what a compilation is for), or None if it cannot tell."""
    try:
        return tuple(kernel.typeof_pyval(a) for a in args)
    except Exception:
        return None


def _loaded_or_cached(kernel, sig) -> bool:
    """True when the parallel code for ``sig`` is in memory, or is in Numba's disk cache
    (then it is loaded now), or when this cannot be told (then it compiles here)."""
    try:
        if sig in kernel.overloads:
            return True
        cache = getattr(kernel, "_cache", None)
        if cache is None or type(cache).__name__ == "NullCache":
            return True                   # nothing is cached: a background compile would be lost
        if cache.load_overload(sig, kernel.targetctx) is None:
            return False
        kernel.compile(sig)               # in the cache: Numba's own path loads it and keeps it
        return True
    except Exception:                     # Numba internals changed: do as Numba does
        return True


def _send(kernel, sig, first: bool = False) -> bool:
    """Ask the background process to compile ``kernel`` for ``sig`` (started at the first
    request); ``first``: before the parallel kernels it was asked for (compile_ahead's
    kernels are on this process's critical path, parallel code is not). False when it
    cannot be asked."""
    global _worker, _worker_pid
    try:
        # Numba types travel pickled (its own cache index pickles them too) over a pipe
        # between this process and the child it started; nothing is read from disk.
        request = pickle.dumps((0 if first else 1, *_key(kernel), sig))
    except Exception:
        return False
    with _lock:
        if _worker is None or _worker_pid != os.getpid():
            _worker, _worker_pid = _start_worker(), os.getpid()
        if _worker is None or _worker.poll() is not None:
            return False
        try:
            _worker.stdin.write(len(request).to_bytes(8, "little") + request)
            _worker.stdin.flush()
        except OSError:
            return False
    return True


def _start_worker():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env[ENV_VAR] = "0"
    try:
        worker = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    except OSError:
        return None
    print("minitensor: compiling kernels in a background process (first use of this Numba "
          "cache); until each parallel kernel is ready, its work runs on one thread",
          file=sys.stderr, flush=True)
    threading.Thread(target=_read_replies, args=(worker,), daemon=True,
                     name="minitensor-compile-replies").start()
    atexit.register(_stop, worker)
    return worker


def _read_replies(worker) -> None:
    """Mark each kernel the background process reports; if it dies, mark every pending
    kernel (each then compiles in this process at its next call)."""
    for line in worker.stdout:
        module, name = line.decode().rstrip("\n").split("\t")[1:3]
        _done.add((module, name))
    for kernel in list(_pending):
        _done.add(_key(kernel))


def _stop(worker) -> None:
    """At exit: no more requests. The background process finishes those it has (so the
    next run finds them in the cache) and ends; this process does not wait for it."""
    try:
        worker.stdin.close()
    except OSError:
        pass
    worker.returncode = 0     # not waited for on purpose (Popen would warn at exit)


def _resolve(module, name: str):
    """The jitted function ``name`` of ``module``; a parallel kernel's serial twin
    (``_threads.parallel_kernel``) is named ``<kernel>_serial`` and lives on the kernel."""
    if hasattr(module, name) or not name.endswith("_serial"):
        return getattr(module, name)
    return getattr(module, name[:-len("_serial")]).serial


def _serve() -> None:
    """The background process: compile each (module, name, signature) read from stdin,
    the compile_ahead ones first (see _send), otherwise in the order asked."""
    import importlib
    import queue
    requests = queue.PriorityQueue()     # (priority, arrival, (module, name, sig) | None: the end)

    def read(stdin=sys.stdin.buffer):
        arrival = 0
        while True:
            header = stdin.read(8)
            if len(header) < 8:
                requests.put((2, arrival, None))
                return
            priority, *request = pickle.loads(stdin.read(int.from_bytes(header, "little")))
            requests.put((priority, arrival, request))
            arrival += 1

    threading.Thread(target=read, daemon=True).start()
    stdout = sys.stdout.buffer
    while True:
        _, _, request = requests.get()
        if request is None:
            return
        module, name, sig = request
        try:
            _resolve(importlib.import_module(module), name).compile(sig)
            status = "done"
        except Exception:                 # the caller then compiles it itself
            status = "failed"
        try:
            stdout.write(f"{status}\t{module}\t{name}\n".encode())
            stdout.flush()
        except OSError:           # the asking process has ended: finish the queue anyway
            pass


if __name__ == "__main__":
    _serve()
