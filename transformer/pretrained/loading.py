"""Read a BERT-family checkpoint folder (Hugging Face layout) into a ``BertEncoder``.

The folder holds ``config.json`` (the shape), ``model.safetensors`` (the weights) and
``tokenizer.json`` (read by tokenize.py). Hugging Face names each layer's pieces after
the BERT paper; this file renames them onto ``TransformerEncoderLayer``'s (torch's) names:

    encoder.layer.i.attention.self.{query,key,value}   -> encoder.layers.i.self_attn.in_proj_{weight,bias}
                                                          (stacked q, k, v: (3D, D) and (3D,))
    encoder.layer.i.attention.output.dense             -> encoder.layers.i.self_attn.out_proj
    encoder.layer.i.attention.output.LayerNorm         -> encoder.layers.i.norm1
    encoder.layer.i.intermediate.dense                 -> encoder.layers.i.linear1
    encoder.layer.i.output.dense                       -> encoder.layers.i.linear2
    encoder.layer.i.output.LayerNorm                   -> encoder.layers.i.norm2
    embeddings.LayerNorm                               -> embeddings.norm
    embeddings.position_ids                            (a buffer of 0..511: skipped)
    pooler.dense                                       -> pooler (or skipped)

Anything else is a folder this loader does not understand: it fails with one
``PretrainedError`` naming what is missing, unexpected or the wrong shape.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from minitensor.dtypes import as_dtype

from .bert import BertConfig, BertEncoder

CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE = "config.json", "model.safetensors", "tokenizer.json"
MODEL_TYPES = ("bert",)
ACTIVATIONS = ("gelu",)        # exact (erf) GELU; "gelu_new" (tanh) would need another activation
SKIPPED_KEYS = ("embeddings.position_ids",)

_LAYER_RENAMES = {
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.LayerNorm": "norm1",
    "intermediate.dense": "linear1",
    "output.dense": "linear2",
    "output.LayerNorm": "norm2",
}
_QKV = ("query", "key", "value")
_LAYER_KEY = re.compile(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")


class PretrainedError(ValueError):
    """A checkpoint folder this loader does not understand (the message says why)."""


def read_config(folder: str | os.PathLike) -> BertConfig:
    """``config.json`` -> BertConfig; refuses other model types and activations."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise PretrainedError(f"{folder}: no {CONFIG_FILE} (a BERT checkpoint folder holds "
                              f"{CONFIG_FILE}, {WEIGHTS_FILE} and {TOKENIZER_FILE})")
    raw = json.loads(path.read_text(encoding="utf-8"))
    model_type = raw.get("model_type")
    if model_type not in MODEL_TYPES:
        raise PretrainedError(f"{path}: model_type {model_type!r} is not supported; this loader "
                              f"reads {', '.join(MODEL_TYPES)}")
    if raw.get("hidden_act", "gelu") not in ACTIVATIONS:
        raise PretrainedError(f"{path}: hidden_act {raw['hidden_act']!r} is not supported "
                              f"(supported: {', '.join(ACTIVATIONS)})")
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise PretrainedError(f"{path}: position_embedding_type "
                              f"{raw['position_embedding_type']!r} is not supported (only 'absolute')")
    fields = BertConfig.__dataclass_fields__
    try:
        return BertConfig(**{k: raw[k] for k in fields if k in raw})
    except TypeError as exc:  # a required field is missing
        raise PretrainedError(f"{path}: {exc}") from None


def hf_to_project_keys(weights: dict[str, np.ndarray], num_layers: int,
                       keep_pooler: bool) -> dict[str, np.ndarray]:
    """Rename a Hugging Face BERT state dict onto ``BertEncoder``'s keys, packing q/k/v.

    Raises:
        PretrainedError: missing or unexpected keys (all named in one message).
    """
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}  # BertFor*-style prefixes
    out: dict[str, np.ndarray] = {}
    used: set[str] = set(k for k in SKIPPED_KEYS if k in weights)
    missing: list[str] = []

    def take(src: str, dst: str) -> None:
        if src in weights:
            out[dst] = weights[src]
            used.add(src)
        else:
            missing.append(src)

    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        take(f"embeddings.{name}.weight", f"embeddings.{name}.weight")
    for p in ("weight", "bias"):
        take(f"embeddings.LayerNorm.{p}", f"embeddings.norm.{p}")
    for i in range(num_layers):
        src, dst = f"encoder.layer.{i}.", f"encoder.layers.{i}."
        for p, packed in (("weight", "in_proj_weight"), ("bias", "in_proj_bias")):
            parts = [f"{src}attention.self.{n}.{p}" for n in _QKV]
            missing += [k for k in parts if k not in weights]
            if all(k in weights for k in parts):
                out[dst + "self_attn." + packed] = np.concatenate([weights[k] for k in parts], axis=0)
                used.update(parts)
        for hf, ours in _LAYER_RENAMES.items():
            for p in ("weight", "bias"):
                take(f"{src}{hf}.{p}", f"{dst}{ours}.{p}")
    for p in ("weight", "bias"):
        key = f"pooler.dense.{p}"
        if key in weights:
            used.add(key)
            if keep_pooler:
                out[f"pooler.{p}"] = weights[key]
        elif keep_pooler:
            missing.append(key)
    unexpected = sorted(set(weights) - used)
    extra_layers = sorted({int(m.group(1)) for k in unexpected if (m := _LAYER_KEY.match(k))})
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        hint = (f" (layers {extra_layers} beyond num_hidden_layers={num_layers})"
                if extra_layers else "")
        problems.append("unexpected keys" + hint + ": " + ", ".join(unexpected))
    if problems:
        raise PretrainedError("; ".join(problems))
    return out


def load_encoder(folder: str | os.PathLike, dtype="float32", dropout: float = 0.0,
                 with_pooler: bool = False) -> BertEncoder:
    """Build a ``BertEncoder`` from a checkpoint folder and load its weights.

    Args:
        folder: holds config.json and model.safetensors.
        dtype: parameter dtype ("float32" or "float64").
        dropout: dropout probability of the built model (0 for inference).
        with_pooler: load BERT's pooler too (else its weights are skipped by name).

    Raises:
        PretrainedError: missing file, unknown model_type, missing / unexpected keys or a
            shape that does not match config.json.
    """
    from safetensors.numpy import load_file  # the format's own reader (a dependency of the project)

    folder = Path(folder)
    cfg = read_config(folder)
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise PretrainedError(f"{folder}: no {WEIGHTS_FILE}")
    dtype = as_dtype(dtype)
    model = BertEncoder(cfg, dropout=dropout, with_pooler=with_pooler)
    try:
        state = hf_to_project_keys(load_file(str(weights_path)), cfg.num_hidden_layers, with_pooler)
    except PretrainedError as exc:
        raise PretrainedError(f"{weights_path}: {exc}") from None
    own = model.state_dict()
    wrong = [f"{k} {v.shape} (config.json says {own[k].shape})" for k, v in state.items()
             if v.shape != own[k].shape]
    if wrong:
        raise PretrainedError(f"{weights_path}: shapes that do not match {CONFIG_FILE}: " + ", ".join(wrong))
    model.to(dtype).load_state_dict(state)  # cast once, to the model's dtype
    return model.eval()
