"""The kernel backend's thread policy: no spinning OpenMP threads whatever the import order.

Each case runs in a fresh interpreter, because the threading layer is fixed for the
life of a process once Numba runs its first parallel kernel.
"""
import os
import subprocess
import sys

import pytest

from minitensor import kernels

pytestmark = pytest.mark.skipif(not kernels.numba_available(), reason="numba not installed")

_PROBE = """
import sys
if sys.argv[1] == "torch_first":
    import torch
import numba, numpy as np
import minitensor as mt
from minitensor import kernels, functional as F
kernels.set_backend("numba")
F.softmax(mt.randn(64, 64))          # runs a prange kernel: the threading layer is now fixed
print(numba.threading_layer(), __import__("os").environ.get("OMP_WAIT_POLICY"))
"""


def _probe(order: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER")}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", _PROBE, order], capture_output=True, text=True,
                         env=env, timeout=300, check=True)
    return out.stdout.split()


def test_minitensor_first_uses_openmp_with_passive_waiting():
    layer, policy = _probe("minitensor_first")
    assert policy == "PASSIVE"
    assert layer in ("omp", "tbb", "workqueue")


def test_torch_first_avoids_torchs_spinning_openmp_runtime():
    pytest.importorskip("torch")
    layer, _ = _probe("torch_first")
    assert layer == "workqueue"
