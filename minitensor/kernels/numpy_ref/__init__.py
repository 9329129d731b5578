"""Plain-NumPy kernels: the readable specification of every kernel.

One kernel family per file; ``numba_cpu`` has the same files, and a twin of each
function here with the same name and signature; the tests hold the two together and
hold this package to PyTorch.

    rows.py       softmax, log_softmax, cross_entropy, layer_norm (over the last axis)
    pointwise.py  gelu, relu, dropout
    embedding.py  embedding
    linalg.py     matmul, linear (x W^T + b), matmul_tiled
    linear_act.py linear_act (dropout(act(x W^T + b)), the feed-forward block's first half)
    attention.py  attention fused (no weights kept), attention_weights (heads merged,
                  weights kept and returned, dropout)
    adam.py       adam_step (one Adam/AdamW update)
    add_norm.py   add_norm (LayerNorm(x + dropout(y)), post-norm's Add & Norm), add_dropout
                  (x + dropout(y), pre-norm's residual)

The contract, in brief:

* NumPy arrays in, NumPy arrays out; no Tensors and no autograd. Inputs may be
  non-contiguous. The dtype (float32 or float64) is kept: the output has the input's
  dtype and the arithmetic runs in it.
* ``<name>_forward(...) -> (out, cache)`` and ``<name>_backward(dout, cache) -> grads``.
  The cache is a tuple of the cheapest things backward needs (softmax keeps its output;
  layer norm keeps a reference to ``x`` plus one mean and one rstd per row). It may hold
  references to the inputs, not copies: do not change them in place before backward.
* Row kernels (softmax, log-softmax, cross-entropy, layer norm) work over the last axis.
  A softmax/log-softmax row that is entirely -inf gives NaN, as in PyTorch; -inf entries
  in other rows get probability exactly 0.
* Shapes, dtypes and index bounds are checked by the caller (the functional layer);
  kernels do no checking.

Only numpy and math are needed here, on purpose: this package is also the fallback
backend.
"""
from __future__ import annotations

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


def cache_is_cold() -> bool:
    """Always False: plain NumPy compiles nothing (the numba backend's twin says whether
    its on-disk cache of compiled kernels is empty)."""
    return False
