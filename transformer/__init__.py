"""transformer: "Attention Is All You Need" on minitensor.

    import transformer
    mha = transformer.MultiheadAttention(512, 8, batch_first=True)  # torch.nn's API and keys
    model = transformer.Seq2SeqTransformer(transformer.TransformerConfig(...))
    tokens = transformer.greedy_decode(model, src, max_len=50, bos_id=1, eos_id=2)

Modules: masks, positional, attention, layers, model (torch.nn-compatible stacks),
models (ready-made task models), config, decoding, capture; ``data`` (datasets and
batching) when present.
"""
import importlib.util as _importlib_util

from .attention import KVCache, MultiheadAttention
from .capture import capture_attention, recording_attention
from .config import TransformerConfig
from .decoding import beam_search, greedy_decode, inference_mode, length_penalty_factor, sample
from .layers import TransformerDecoderLayer, TransformerEncoderLayer
from .masks import causal_mask, padding_mask, square_subsequent_mask
from .model import LayerCaches, Transformer, TransformerDecoder, TransformerEncoder
from .models import (MASKED_LOGIT, Seq2SeqTransformer, SpanHead, SpanQAModel, make_model,
                     TransformerClassifier, TransformerLM, best_span, span_loss)
from .positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding, sinusoid_table

if _importlib_util.find_spec(__name__ + ".data") is not None:
    # Re-export the data API (vocabularies, tasks, batches): its public names, not its
    # submodules (transformer.data.tasks stays transformer.data.tasks).
    import types as _types

    from . import data
    globals().update({_k: _v for _k, _v in vars(data).items()
                      if not _k.startswith("_") and not isinstance(_v, _types.ModuleType)})
