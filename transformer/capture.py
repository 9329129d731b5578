"""Attention capture: every layer's and head's attention weights for one input.

    weights = capture_attention(model, src, tgt_in)
    weights["transformer.encoder.layers.0.self_attn"]   # (B, H, Tq, Tk) ndarray

Nothing is stored on the modules for good: while the context manager is open, each
``MultiheadAttention`` gets a temporary instance attribute ``_capture_hook`` that makes
it compute per-head weights (the materialized attention path) and hand them to a
recorder; on exit the attribute is deleted and the class default (None) is back.
"""
from __future__ import annotations

import contextlib

import numpy as np

from .attention import MultiheadAttention
from .decoding import inference_mode


@contextlib.contextmanager
def recording_attention(model):
    """Context manager yielding ``{module name: [weights (B, H, Tq, Tk), ...]}``, one
    ndarray per call of that module while the block runs (several with incremental
    decoding)."""
    records: dict[str, list[np.ndarray]] = {}
    hooked = []
    for name, module in model.named_modules():
        if isinstance(module, MultiheadAttention):
            records[name] = []
            module._capture_hook = _recorder(records[name])
            hooked.append(module)
    try:
        yield records
    finally:
        for module in hooked:
            del module._capture_hook


def _recorder(store: list):
    def hook(module, weights: np.ndarray) -> None:
        store.append(np.array(weights, copy=True))
    return hook


def capture_attention(model, *inputs, **kwargs) -> dict[str, np.ndarray]:
    """Run ``model(*inputs, **kwargs)`` once (eval mode, no grad) and return each
    attention module's weights (B, H, Tq, Tk), keyed by its dotted module name.

    Modules that did not run are left out; a module that ran more than once maps to
    the list of its arrays (their shapes may differ).
    """
    with inference_mode(model), recording_attention(model) as records:
        model(*inputs, **kwargs)
    return {name: (ws[0] if len(ws) == 1 else ws) for name, ws in records.items() if ws}
