"""Parallel kernels missing from Numba's cache compile in a background process while their
serial twins do the work (kernels/numba_cpu/_background_compile.py).

Each case is a fresh interpreter on its own NUMBA_CACHE_DIR (an empty cache is the case
in question), at 2 threads, calling the ReLU kernel on enough elements for its parallel
twin (a cheap kernel to compile)."""
import json
import os
import subprocess
import sys

import pytest

from minitensor import kernels

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_PROBE = """
import json, sys, time
import numpy as np
from minitensor import kernels
kernels.set_backend("numba")
from minitensor.kernels.numba_cpu import _background_compile as bg, pointwise
kernel = pointwise._relu_flat
x = np.random.default_rng(0).standard_normal(1 << 19).astype(np.float32)
report = {}
with kernels.threads(2):
    first, _ = pointwise.relu_forward(x)
    report["ready_at_first_call"] = kernel in bg._ready
    report["worker_started"] = bg._worker is not None
    deadline = time.monotonic() + 120
    while kernel in bg._pending and bg._key(kernel) not in bg._done and time.monotonic() < deadline:
        time.sleep(0.05)
    second, _ = pointwise.relu_forward(x)
    report["ready_after"] = kernel in bg._ready
    report["parallel_signatures"] = len(kernel.signatures)
    report["parallel_cache_hits"] = sum(kernel.stats.cache_hits.values())
    report["parallel_cache_misses"] = sum(kernel.stats.cache_misses.values())
expected = np.maximum(x, 0)
report["same_numbers"] = bool(np.array_equal(first, expected) and np.array_equal(second, expected))
print(json.dumps(report))
"""


def _child_env(cache_dir, background: str) -> dict:
    """A child process's environment: its own Numba cache, background compilation on
    ("1") or off ("0"), this checkout importable."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    env.update(NUMBA_CACHE_DIR=str(cache_dir), MINITENSOR_BACKGROUND_COMPILE=background,
               PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def _run(cache_dir, background: str, script: str = _PROBE):
    """(the JSON report the script printed last, its stderr)."""
    proc = subprocess.run([sys.executable, "-c", script], env=_child_env(cache_dir, background),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.fixture(autouse=True)
def _needs_numba():
    if not kernels.numba_available():
        pytest.skip("numba backend is not importable on this machine")


def test_an_uncached_parallel_kernel_compiles_in_the_background_then_loads(tmp_path):
    report, stderr = _run(tmp_path, "1")
    assert report["same_numbers"]
    assert not report["ready_at_first_call"] and report["worker_started"]   # serial twin ran
    assert report["ready_after"] and report["parallel_signatures"] == 1
    # The parallel code was compiled over there and loaded here from the cache.
    assert report["parallel_cache_hits"] == 1 and report["parallel_cache_misses"] == 0
    assert stderr.count("compiling kernels in a background process") == 1

    # The next process finds it in the cache: no background process, no message.
    report, stderr = _run(tmp_path, "1")
    assert report["same_numbers"] and report["ready_at_first_call"]
    assert not report["worker_started"] and "background" not in stderr
    assert report["parallel_cache_hits"] >= 1 and report["parallel_cache_misses"] == 0


def test_turned_off_it_compiles_here_as_numba_does(tmp_path):
    report, stderr = _run(tmp_path, "0")
    assert report["same_numbers"] and report["ready_at_first_call"]
    assert not report["worker_started"] and "background" not in stderr
    assert report["parallel_cache_misses"] == 1           # compiled in this process


_SHORT = """
import numpy as np
from minitensor import kernels
kernels.set_backend("numba")
from minitensor.kernels.numba_cpu import _background_compile as bg, pointwise
x = np.random.default_rng(0).standard_normal(1 << 19).astype(np.float32)
with kernels.threads(2):
    pointwise.relu_forward(x)
print(pointwise._relu_flat in bg._pending)
"""


def test_a_run_that_ends_first_still_leaves_the_kernel_in_the_cache(tmp_path):
    """The process exits at once; the helper finishes what it was sent, so the next run
    loads the parallel kernel instead of starting its compilation over."""
    import time
    env = _child_env(tmp_path, "1")

    def short_run() -> bool:                      # True: the kernel was still pending at exit
        proc = subprocess.run([sys.executable, "-c", _SHORT], env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip() == "True"

    assert short_run()                            # an empty cache: sent to the helper
    deadline = time.monotonic() + 120
    while short_run():                            # each run ends before the helper is done;
        assert time.monotonic() < deadline, "the parallel kernel never reached the cache"
        time.sleep(1)                             # the helper outlives it and finishes
    report, stderr = _run(tmp_path, "1")
    assert report["ready_at_first_call"] and not report["worker_started"]
    assert report["same_numbers"]


_AHEAD = """
import json, time
import numpy as np
from minitensor import kernels
kernels.set_backend("numba")
from minitensor.kernels.numba_cpu import _background_compile as bg, weight_grad as W
g = np.random.default_rng(0).standard_normal((40, 64)).astype(np.float32)
x = np.random.default_rng(1).standard_normal((40, 32)).astype(np.float32)
dw = np.empty((64, 32), np.float32)
bg.compile_ahead(W.weight_grad, g, x, dw)
report = {"worker_started": bg._worker is not None}
deadline = time.monotonic() + 120
while bg._key(W.weight_grad) not in bg._done and time.monotonic() < deadline:
    time.sleep(0.05)
W.weight_grad(g, x, dw)
report["cache_hits"] = sum(W.weight_grad.stats.cache_hits.values())
report["cache_misses"] = sum(W.weight_grad.stats.cache_misses.values())
report["same_numbers"] = bool(np.allclose(dw, g.T @ x, rtol=1e-5, atol=1e-4))
print(json.dumps(report))
"""


def test_compile_ahead_leaves_the_kernel_in_the_cache_for_its_first_call(tmp_path):
    """A kernel asked for ahead is compiled over there; its first call here loads it."""
    report, _ = _run(tmp_path, "1", _AHEAD)
    assert report["worker_started"] and report["same_numbers"]
    assert report["cache_hits"] == 1 and report["cache_misses"] == 0


_SERIAL_AHEAD = """
import json, time
import numpy as np
from minitensor import kernels
kernels.set_backend("numba")
from minitensor.kernels.numba_cpu import _background_compile as bg, linear_act
kernel = linear_act._relu_grad_flat.serial      # a parallel kernel's serial twin
g = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
y = np.maximum(np.random.default_rng(1).standard_normal(1000).astype(np.float32), 0)
dh = np.empty_like(g)
bg.compile_ahead(kernel, g, y, np.float32(1), dh)
deadline = time.monotonic() + 120
while bg._key(kernel) not in bg._done and time.monotonic() < deadline:
    time.sleep(0.05)
kernel(g, y, np.float32(1), dh)
print(json.dumps({"cache_hits": sum(kernel.stats.cache_hits.values()),
                  "cache_misses": sum(kernel.stats.cache_misses.values()),
                  "same_numbers": bool(np.array_equal(dh, np.where(y > 0, g, 0)))}))
"""


def test_compile_ahead_finds_a_serial_twin(tmp_path):
    """A serial twin lives on its parallel kernel (``<kernel>_serial``), not in the module:
    the background process finds it there, and the first call here loads it."""
    report, _ = _run(tmp_path, "1", _SERIAL_AHEAD)
    assert report["same_numbers"]
    assert report["cache_hits"] == 1 and report["cache_misses"] == 0


def test_the_background_process_takes_compile_ahead_requests_first(tmp_path):
    """Requests marked ``first`` (compile_ahead's: the asking process will soon need them)
    go before the parallel kernels asked earlier that are still waiting."""
    import pickle
    from numba import types
    from minitensor.kernels.numba_cpu import _background_compile as bg
    a2, a1 = types.Array(types.float32, 2, "C"), types.Array(types.float32, 1, "C")
    module = "minitensor.kernels.numba_cpu.linalg"
    asked = [(1, module, "_dot", (a2, a2, a2)),
             (1, module, "_column_sums", (a2, a1)),
             (0, module, "_add_bias", (a2, a1, types.intp, types.intp))]
    env = _child_env(tmp_path, "0")
    payload = b"".join(len(r).to_bytes(8, "little") + r for r in map(pickle.dumps, asked))
    proc = subprocess.run([sys.executable, "-m", bg.__name__], input=payload, env=env,
                          capture_output=True, timeout=600)
    replies = [line.split("\t") for line in proc.stdout.decode().splitlines()]
    assert [status for status, *_ in replies] == ["done"] * 3
    order = [name for *_, name in replies]
    # _add_bias, asked last, is not left behind _column_sums (_dot may already be compiling
    # when it arrives); the parallel kernels keep the order they were asked in
    assert order.index("_add_bias") < order.index("_column_sums")
    assert order.index("_dot") < order.index("_column_sums")
