"""``SentenceClassifier``: a pretrained (or freshly initialised) BERT encoder, mean pooling
over the real tokens, dropout and a Linear head: token ids (B, T) -> class logits (B, C).
"""
from __future__ import annotations

import numpy as np

from minitensor import Tensor, nn

from .bert import BertEncoder, mean_pool


class SentenceClassifier(nn.Module):
    """Encoder + mean pooling + Linear.

    Args:
        encoder: a BertEncoder (``load_encoder`` for a pretrained one).
        num_classes: C.
        dropout: before the head.
    """

    def __init__(self, encoder: BertEncoder, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.cfg.hidden_size, num_classes,
                              dtype=encoder.embeddings.norm.weight.dtype)

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> Tensor:
        hidden = self.encoder(input_ids, attention_mask)          # (B, T, D)
        pooled = mean_pool(hidden, attention_mask)                 # (B, D)
        return self.head(self.dropout(pooled))                     # (B, C)
