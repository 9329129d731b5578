"""``minitensor.nn.functional``: the functional API under its ``torch.nn.functional`` path.

``from minitensor.nn import functional as F`` gives the same functions as
``minitensor.functional`` (this file only re-exports them, each listed by name).
"""
from ..functional import (abs, add, amax, amin, broadcast_to, cast,
                          cat, chunk, clamp, clone, cross_entropy, div, dropout, embedding,
                          exp, expand, flatten, gelu, getitem, index_put, layer_norm,
                          linear, log, log_softmax, logsumexp, masked_fill, matmul, maximum,
                          mean, minimum, mse_loss, mul, multi_head_attention, neg, nll_loss,
                          one_hot, permute, pow, relu, reshape,
                          scaled_dot_product_attention, sigmoid, softmax, split, sqrt,
                          squeeze, stack, std, sub, sum, tanh, transpose, unsqueeze, var,
                          where)
# torch.nn.functional's losses, padding and vector functions (functional/losses.py,
# padding.py, vectors.py).
from ..functional import (binary_cross_entropy_with_logits, cosine_similarity, kl_div,
                          normalize, pad, silu)

# No __all__: this module holds nothing but these names, so ``import *`` gives exactly them.
