"""The functional API (``minitensor.functional``, usually imported as ``F``).

Every function here checks its inputs, raises an error that names the op and the
shapes/dtypes involved, and then calls one op's ``apply`` (or composes a few). Kernels
never see bad input. ``Tensor`` methods are one-line calls into this package.

One file per op family, mirroring ``ops/`` file for file (``_checks.py`` holds the
input checks they share):

    elementwise  add sub mul div neg pow exp log sqrt tanh sigmoid abs maximum minimum
                 clamp where masked_fill cast clone
    reduce       sum mean amax amin var std logsumexp
    shape        reshape permute transpose expand squeeze unsqueeze flatten getitem
                 index_put cat stack split chunk
    linalg       matmul linear linear_activation
    fused        relu gelu softmax log_softmax cross_entropy nll_loss mse_loss layer_norm
                 dropout embedding one_hot
    attention    scaled_dot_product_attention multi_head_attention
    add_norm     add_norm (LayerNorm(x + dropout(y)), post-norm's Add & Norm) add_dropout
                 (x + dropout(y), pre-norm's residual): the Transformer's box as one op

and the torch.X functions of issue 15 (elementwise: sin cos rsqrt square sign; reduce: norm):

    selection    max min argmax argmin topk sort (named pairs: ``return_types``)
    indexing     gather scatter index_select index_fill masked_select nonzero
                 repeat_interleave repeat flip unbind
    products     einsum bmm mm outer t tril triu
    cumulative   cumsum
    sampling     multinomial randperm (and the fills behind normal_/uniform_)

and torch.nn.functional's functions composed from the ops above (no Function of their own):

    losses       cross_entropy nll_loss mse_loss (torch's full signatures, weights; they
                 call fused's for the unweighted case) kl_div binary_cross_entropy_with_logits
    padding      pad
    vectors      silu normalize cosine_similarity

Axes follow NumPy's spelling (``axis``, ``keepdims``); PyTorch's ``dim``/``keepdim``
are accepted as aliases.
"""
from .elementwise import (abs, add, cast, clamp, clone, div, exp, log, masked_fill, maximum,
                          minimum, mul, neg, pow, sigmoid, sqrt, sub, tanh, where)
from .reduce import amax, amin, logsumexp, mean, std, sum, var
from .shape import (broadcast_to, cat, chunk, expand, flatten, getitem, index_put, permute,
                    reshape, split, squeeze, stack, transpose, unsqueeze)
from .linalg import linear, linear_activation, matmul
from .fused import dropout, embedding, gelu, layer_norm, log_softmax, one_hot, relu, softmax
from .attention import multi_head_attention, scaled_dot_product_attention
from .add_norm import add_dropout, add_norm
from .elementwise import cos, rsqrt, sign, sin, square
from .reduce import norm
from . import return_types
from .selection import argmax, argmin, max, min, sort, topk
from .indexing import (flip, gather, index_fill, index_select, masked_select, nonzero, repeat,
                       repeat_interleave, scatter, unbind)
from .products import bmm, einsum, mm, outer, t, tril, triu
from .cumulative import cumsum
from .sampling import multinomial, randperm

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "tanh", "sigmoid",
    "abs", "cast", "clone", "maximum", "minimum", "clamp", "where", "masked_fill", "sum",
    "mean", "amax", "amin", "var", "std", "logsumexp", "reshape", "permute", "transpose",
    "expand", "broadcast_to", "squeeze", "unsqueeze", "flatten", "getitem", "index_put",
    "cat", "stack", "split", "chunk", "matmul", "linear", "linear_activation", "relu", "gelu",
    "softmax",
    "log_softmax", "cross_entropy", "nll_loss", "mse_loss", "layer_norm", "dropout",
    "embedding", "one_hot", "scaled_dot_product_attention", "multi_head_attention",
    "add_norm", "add_dropout",
    # issue 15
    "sin", "cos", "rsqrt", "square", "sign", "norm", "return_types", "max", "min", "argmax",
    "argmin", "topk", "sort", "gather", "scatter", "index_select", "index_fill",
    "masked_select", "nonzero", "repeat_interleave", "repeat", "flip", "unbind", "einsum",
    "bmm", "mm", "outer", "t", "tril", "triu", "cumsum", "multinomial", "randperm",
]

# torch.nn.functional's losses, padding and vector functions, composed from the ops above.
from .losses import (binary_cross_entropy_with_logits, cross_entropy, kl_div, mse_loss,
                     nll_loss)
from .padding import pad
from .vectors import cosine_similarity, normalize, silu

__all__ += ["binary_cross_entropy_with_logits", "kl_div", "pad", "cosine_similarity",
            "normalize", "silu"]
