"""The two kernel packages as packages: the same public names with the same signatures,
the same file names, a fresh Numba cache kept and a stale one cleared, and the Adam
kernel pair (bit-identical twins)."""
from __future__ import annotations

import inspect
import os
import shutil
from types import ModuleType

import numpy as np
import pytest

from minitensor.kernels import numpy_ref

numba_cpu = pytest.importorskip("minitensor.kernels.numba_cpu")
from minitensor.kernels.numba_cpu import _cache  # noqa: E402


def _public(package):
    """name -> signature of every public function the package's __init__ imports."""
    out = {}
    for name, obj in vars(package).items():
        if name.startswith("_") or isinstance(obj, ModuleType) or not callable(obj):
            continue
        fn = getattr(obj, "py_func", obj)        # a Numba dispatcher: its Python function
        out[name] = inspect.signature(fn)
    return out


def test_backends_export_the_same_names_with_the_same_signatures():
    ref, nb = _public(numpy_ref), _public(numba_cpu)
    assert sorted(ref) == sorted(nb)
    for name in ref:
        # parameter names, kinds and defaults; annotations may differ (numba_cpu's are sparser)
        strip = [p.replace(annotation=inspect.Parameter.empty) for p in ref[name].parameters.values()]
        strip_nb = [p.replace(annotation=inspect.Parameter.empty) for p in nb[name].parameters.values()]
        assert strip == strip_nb, name
    # every kernel the ops call is there
    for name in ("softmax_forward", "cross_entropy_backward", "linear", "linear_backward", "matmul",
                 "attention_forward", "attention_weights_backward", "embedding_backward", "adam_step"):
        assert name in ref


def test_backends_have_the_same_kernel_files():
    def files(package):
        d = os.path.dirname(package.__file__)
        return sorted(f for f in os.listdir(d) if f.endswith(".py") and not f.startswith("_"))
    assert files(numpy_ref) == files(numba_cpu)


# ------------------------------------------------------------------ the Numba cache


def _fake_cache(directory):
    os.makedirs(directory, exist_ok=True)
    names = ["rows._softmax_rows-10.py311.nbi", "rows._softmax_rows-10.py311.1.nbc"]
    for name in names:
        with open(os.path.join(directory, name), "w") as f:
            f.write("cached")
    return [os.path.join(directory, n) for n in names]


def test_a_stale_cache_is_removed_and_a_fresh_one_kept(tmp_path):
    cache = str(tmp_path / "__pycache__")
    files = _fake_cache(cache)
    # no stamp: compiled from sources of unknown age -> cleared, then stamped
    assert _cache.clear_if_stale(cache, "hash-a")
    assert not any(os.path.exists(f) for f in files)
    # Numba fills it again; the stamp matches the sources: kept
    files = _fake_cache(cache)
    assert not _cache.clear_if_stale(cache, "hash-a")
    assert all(os.path.exists(f) for f in files)
    # a helper file changed (another hash): cleared again
    assert _cache.clear_if_stale(cache, "hash-b")
    assert not any(os.path.exists(f) for f in files)
    assert open(os.path.join(cache, _cache.STAMP)).read().strip() == "hash-b"


def test_editing_a_helper_file_changes_the_source_hash(tmp_path):
    """In a copy of the package: an edit to _math.py (a file Numba's cache does not watch
    for the kernels using it) changes the hash, so the package's cache gets cleared."""
    package = os.path.dirname(numba_cpu.__file__)
    copy = tmp_path / "numba_cpu"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = _cache.source_hash(str(copy))
    assert before == _cache.source_hash(package)
    files = _fake_cache(str(copy / "__pycache__"))
    assert _cache.clear_stale_caches(str(copy))            # first load: no stamp yet
    files = _fake_cache(str(copy / "__pycache__"))
    assert _cache.clear_stale_caches(str(copy)) == []      # unchanged sources: cache kept
    assert all(os.path.exists(f) for f in files)
    with open(copy / "_math.py", "a") as f:
        f.write("\n# an edit\n")
    assert _cache.source_hash(str(copy)) != before
    assert _cache.clear_stale_caches(str(copy)) == [str(copy / "__pycache__")]
    assert not any(os.path.exists(f) for f in files)


def test_the_package_cache_is_stamped_with_its_sources():
    package = os.path.dirname(numba_cpu.__file__)
    stamps = [os.path.join(d, _cache.STAMP) for d in _cache.cache_dirs(package)]
    source = _cache.source_hash(package)
    assert any(os.path.exists(s) and open(s).read().strip() == source for s in stamps)


# ---------------------------------------------------------------------- adam_step


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [(0.0, False, False, False), (0.01, False, True, False),
                                     (0.1, True, False, True), (0.3, True, True, True)],
                         ids=["plain", "l2,amsgrad", "adamw,maximize", "adamw,amsgrad,maximize"])
def test_adam_step_numba_equals_numpy_ref(options, dtype):
    """Bit for bit, parameters and state, over several steps (contiguous: the fused pass;
    a strided parameter: numba_cpu falls back to the NumPy step)."""
    weight_decay, decoupled, amsgrad, maximize = options
    rng = np.random.default_rng(3)
    start = rng.standard_normal((5, 7)).astype(dtype)
    for layout in ("C", "F"):                     # F: not C-contiguous, not fused
        runs = []
        for mod in (numba_cpu, numpy_ref):
            p = np.array(start, order=layout)
            state = {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}
            if amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(p)
            grads = np.random.default_rng(4)
            for _ in range(3):
                g = (grads.standard_normal(p.shape) * 10.0 ** grads.integers(-4, 4, p.shape)).astype(dtype)
                mod.adam_step(p, g, state, 0.01, 0.9, 0.999, 1e-8, weight_decay, amsgrad, decoupled,
                              maximize)
            runs.append((p, state))
        (p_nb, s_nb), (p_ref, s_ref) = runs
        np.testing.assert_array_equal(p_nb, p_ref)
        assert s_nb["step"] == s_ref["step"] == 3
        for key in s_ref:
            np.testing.assert_array_equal(s_nb[key], s_ref[key], err_msg=key)
