"""Tokenization for BERT-family checkpoints, through the ``tokenizers`` library.

``tokenizer.json`` bakes in sentence-transformers' training-time settings (truncate at
128, pad every sequence to exactly 128). At inference sentence-transformers truncates at
the model's ``max_seq_length`` (256 for all-MiniLM-L6-v2) and pads each batch only to its
longest sequence; so does this file: the file's truncation and padding are overridden.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .loading import TOKENIZER_FILE, PretrainedError

MAX_LENGTH = 256   # sentence_bert_config.json's max_seq_length
PAD_ID = 0         # [PAD]


@dataclass
class Batch:
    """Token ids and masks of a padded batch: all (B, T) int64, T = the longest."""

    input_ids: np.ndarray
    attention_mask: np.ndarray   # 1 = real token, 0 = padding
    token_type_ids: np.ndarray   # all 0 for single sentences


class WordPieceTokenizer:
    """Text -> token ids (with [CLS] ... [SEP]) -> padded batches.

    Args:
        folder: a checkpoint folder holding ``tokenizer.json``.
        max_length: truncate longer texts to this many tokens, [CLS] and [SEP] included.
    """

    def __init__(self, folder: str | os.PathLike, max_length: int = MAX_LENGTH):
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise PretrainedError("the 'tokenizers' package is needed to read tokenizer.json: "
                                  "pip install tokenizers (or the project's [pretrained] extra)") from None
        path = Path(folder) / TOKENIZER_FILE
        if not path.is_file():
            raise PretrainedError(f"{folder}: no {TOKENIZER_FILE}")
        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.no_padding()                          # we pad per batch, to the longest
        self.tokenizer.enable_truncation(max_length=max_length)
        self.max_length = max_length

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        """One list of ids per text, [CLS] ... [SEP], at most max_length long."""
        if isinstance(texts, str):
            raise TypeError("WordPieceTokenizer.ids: expected a list of strings, got one string")
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def tokens(self, text: str) -> list[str]:
        """The word pieces of one text (for display)."""
        return self.tokenizer.encode(text).tokens

    @staticmethod
    def pad(ids: Sequence[Sequence[int]]) -> Batch:
        """Pad id lists to the longest with PAD_ID; the attention mask marks real tokens."""
        longest = max(len(seq) for seq in ids)
        input_ids = np.full((len(ids), longest), PAD_ID, dtype=np.int64)   # (B, T)
        mask = np.zeros((len(ids), longest), dtype=np.int64)                # (B, T)
        for row, seq in enumerate(ids):
            input_ids[row, :len(seq)] = seq
            mask[row, :len(seq)] = 1
        return Batch(input_ids, mask, np.zeros_like(input_ids))

    def __call__(self, texts: Sequence[str]) -> Batch:
        return self.pad(self.ids(texts))
