"""minitensor leaves the process as it found it: no environment variable, no malloc or
OpenMP setting, no Numba threading layer, unless the user opts in (kernels.tune_process,
MINITENSOR_TUNE_PROCESS=1).

Each case runs in a fresh interpreter with a clean environment: the settings in question
are read once per process (an OpenMP runtime reads OMP_WAIT_POLICY when it loads).
"""
import json
import os
import subprocess
import sys

import pytest

from minitensor import kernels

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Variables that would change what is tested (a user's own tuning, or the opt-in itself).
_DROP = ("OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER", "GLIBC_TUNABLES", "MINITENSOR_TUNE_PROCESS")

# Spies on every mallopt call made through ctypes, then imports minitensor, trains one
# step of a small encoder-decoder (forward, loss, backward, Adam) and reports.
_PROBE = """
import ctypes, json, os, sys
mallopt_calls = []
_CDLL = ctypes.CDLL
class SpyCDLL(_CDLL):
    def __getattr__(self, name):
        if name == "mallopt":
            return lambda *args: mallopt_calls.append(args) or 1
        return _CDLL.__getattr__(self, name)
ctypes.CDLL = SpyCDLL
before = dict(os.environ)
def blas_threads():  # every loaded BLAS library's thread count (SciPy's loaded first)
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot calls)
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
blas_before = blas_threads()

import minitensor as mt
import transformer
from minitensor import functional as F, kernels, optim
if sys.argv[1] == "call":
    kernels.tune_process()
kernels.set_backend(sys.argv[2])
mt.manual_seed(0)
cfg = transformer.TransformerConfig(d_model=16, nhead=2, num_encoder_layers=1,
                                    num_decoder_layers=1, dim_feedforward=32, dropout=0.1,
                                    src_vocab_size=20, tgt_vocab_size=20, max_len=16)
model = transformer.Seq2SeqTransformer(cfg)
opt = optim.Adam(model.parameters(), lr=1e-3)
src = mt.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
tgt = mt.tensor([[1, 2, 3], [4, 5, 6]])
logits = model(src, tgt)
loss = F.cross_entropy(logits.reshape(-1, 20), mt.tensor([2, 3, 4, 5, 6, 7]))
opt.zero_grad()
loss.backward()
opt.step()
import numba
changed = {k: (before.get(k), os.environ.get(k)) for k in set(before) | set(os.environ)
           if before.get(k) != os.environ.get(k)}
print(json.dumps({"changed": changed, "mallopt_calls": len(mallopt_calls),
                  "blas_before": blas_before, "blas_after": blas_threads(),
                  "threading_layer_setting": numba.config.THREADING_LAYER,
                  "tuned": kernels.tuned(), "loss": loss.item()}))
"""


def _probe(how: str, backend: str = "numba", **extra_env) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _DROP and not k.startswith("MALLOC_")}
    env["PYTHONPATH"] = ROOT
    env.update(extra_env)
    proc = subprocess.run([sys.executable, "-c", _PROBE, how, backend], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _backends():
    return ["numpy"] + (["numba"] if kernels.numba_available() else [])


@pytest.mark.parametrize("backend", _backends())
def test_import_and_a_training_step_leave_the_process_as_it_was(backend):
    out = _probe("default", backend)
    assert out["changed"] == {}                      # os.environ exactly as it was
    assert out["mallopt_calls"] == 0                 # glibc malloc untouched
    # every BLAS library at its own thread count again (held at 1 only inside our calls)
    assert out["blas_after"] == out["blas_before"]
    assert out["threading_layer_setting"] == "default"   # Numba chooses its own layer
    assert out["tuned"] == {}
    assert out["loss"] > 0


def _glibc() -> bool:
    import platform
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.parametrize("how,env", [("call", {}), ("default", {"MINITENSOR_TUNE_PROCESS": "1"})])
def test_tune_process_is_applied_when_asked(how, env):
    """Asked by a call or by the environment: Numba's workqueue layer and glibc's
    thresholds, and still no environment variable."""
    if not kernels.numba_available():
        pytest.skip("numba not installed")
    out = _probe(how, **env)
    assert out["changed"] == {}
    assert out["threading_layer_setting"] == "workqueue"
    assert out["tuned"]["threading_layer"] == "workqueue"
    if _glibc():
        assert out["mallopt_calls"] == 2 and out["tuned"]["keep_freed_memory"] is True


def test_tune_process_keeps_the_users_own_values():
    if not kernels.numba_available():
        pytest.skip("numba not installed")
    out = _probe("call", NUMBA_THREADING_LAYER="omp", MALLOC_TRIM_THRESHOLD_="1000000")
    assert out["changed"] == {}
    assert out["mallopt_calls"] == 0
    assert out["tuned"]["keep_freed_memory"] is False
    assert out["tuned"]["threading_layer"] == "left as the user set it (omp)"


def test_kernels_need_compiling_says_when_the_numba_cache_is_cold(tmp_path):
    """The library side of a "compiling kernels" message: True with an empty Numba cache,
    False once a process has compiled (and cached) a kernel there."""
    if not kernels.numba_available():
        pytest.skip("numba not installed")
    code = ("from minitensor import kernels\nimport numpy as np\n"
            "print(kernels.kernels_need_compiling())\n"
            "kernels.get().relu_forward(np.ones(4, np.float32))\n")
    env = dict(os.environ, PYTHONPATH=ROOT, NUMBA_CACHE_DIR=str(tmp_path), MINITENSOR_BACKEND="numba")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                           cwd=ROOT, timeout=600) for _ in range(2)]
    assert [r.stdout.split()[0] for r in runs] == ["True", "False"], runs[0].stderr[-2000:]
