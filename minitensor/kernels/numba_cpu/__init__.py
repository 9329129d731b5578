"""Numba kernels: @njit twins of ``numpy_ref``, same file names, function names,
signatures and caches' meaning.

    _math.py      the jitted helpers every kernel shares: the one exp, erf, tanh, row
                  reductions, the LLVM intrinsics behind them
    _threads.py   serial twin or prange per call (``launch``), BLAS held to one thread
    _tiles.py     tile copies, mask compaction and packed layouts of the attention kernels
    _cache.py     clears Numba's on-disk cache when any file here changed
    _background_compile.py
                  a parallel kernel missing from the cache compiles in a helper process
                  while its serial twin does the work (``parallel_ready``)
    rows.py, pointwise.py, embedding.py, linalg.py, linear_act.py, attention.py, adam.py,
    add_norm.py:
                  the kernels
    weight_grad.py
                  Linear's dW = dY^T X on 512-bit registers, read in place (linalg's backward)
    narrow_product.py
                  Linear's forward X W^T + b and dX = dY W on the same register tile, W
                  packed in 32-column panels (linalg's and linear_act's, where it fits)

Each public function is a plain-Python wrapper that makes the arrays contiguous, views
them as (rows, C) or flat and calls a jitted core; the cores run ``prange`` over rows
(rows write disjoint memory) with scalar loops inside that LLVM can vectorize. Each core
is compiled twice (``_threads.parallel_kernel``) and ``_threads.launch`` runs small
inputs on the calling thread, where waking a second thread would cost more than it
saves. See ``numpy_ref`` for the contract; the tests hold the two packages together.

Output arrays of 64 KiB and more come from ``..buffers`` (reused, not fresh pages).
Every jitted function is cached on disk (``cache=True``: a second process pays no
compile time). Numba's cache does not see edits to helpers in other files; ``_cache``
handles that when this package loads. Debug with ``NUMBA_DISABLE_JIT=1``;
``python -m minitensor.kernels.parallel_check`` prints the parallel diagnostics.
"""
from __future__ import annotations

import os

from . import _cache
from .adam import adam_step
from .add_norm import (add_dropout_backward, add_dropout_forward, add_norm_backward,
                       add_norm_forward)
from .attention import (attention_backward, attention_forward, attention_weights_backward,
                        attention_weights_forward)
from .embedding import embedding_backward, embedding_forward
from .linalg import blas_scope, linear, linear_backward, matmul, matmul_tiled
from .linear_act import linear_act_backward, linear_act_forward
from .pointwise import (dropout_backward, dropout_forward, gelu_backward, gelu_forward,
                        relu_backward, relu_forward)
from .rows import (cross_entropy_backward, cross_entropy_forward, layer_norm_backward,
                   layer_norm_forward, log_softmax_backward, log_softmax_forward,
                   softmax_backward, softmax_forward)

# Before any kernel runs (Numba reads its cache at a kernel's first call, not at import):
# drop cached machine code compiled from other versions of these files.
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_cleared = _cache.clear_stale_caches(_PACKAGE_DIR)


def cache_is_cold() -> bool:
    """True when Numba's on-disk cache holds no kernels compiled from these sources yet:
    the first training steps will compile them (seconds to a minute; an application can
    say so, e.g. "compiling kernels, first run only"). Decided when this package loaded."""
    return _COLD


_COLD = _cache.is_cold(_PACKAGE_DIR, _cleared)

