"""lm: a character-level decoder-only language model over text files.

Loss: cross-entropy of the next character. Metric: perplexity. Predict: sampling.
"""
from __future__ import annotations

import numpy as np

from minitensor import functional as F

from .. import metrics as M
from ..config import ConfigError
from ..data import lm_loader, load_corpus
from ..decoding import sample
from ..task_models import TransformerLM
from .base import Problem, as_id_list


class LMProblem(Problem):
    """A character-level decoder-only language model over text files."""

    kind = "lm"
    score_key = "perplexity"

    def load_data(self):
        self.corpus = load_corpus(self.cfg.text or None, vocab=self.vocab if len(self.vocab) > 4 else None)
        self.vocab = self.corpus.vocab
        for split in ("train", "val"):
            n = len(getattr(self.corpus, split))
            if n < self.cfg.block_size + 1:
                raise ConfigError(f"the text's {split} split has {n} characters, fewer than "
                                  f"block_size + 1 = {self.cfg.block_size + 1}; give more text "
                                  "or a smaller --block-size")

    def train_loader(self, seed):
        return lm_loader(self.corpus.train, self.cfg.batch_size, self.cfg.block_size, seed=seed)

    def max_len(self):
        return self.cfg.block_size

    def model_config(self, overrides):
        return super().model_config({"tie_embeddings": True, **overrides, "num_encoder_layers": 0})

    def build_model(self, model_cfg):
        return TransformerLM(model_cfg)

    def loss(self, model, batch, label_smoothing):
        logits = model(batch.x)  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.y.reshape(-1),
                               label_smoothing=label_smoothing)

    def batch_tokens(self, batch):
        return int(batch.x.size)

    def evaluate(self, model, split, limit=None):
        ids = getattr(self.corpus, split)
        loader = lm_loader(ids, 2 * self.cfg.batch_size, self.cfg.block_size, shuffle=False)
        loss_sum, n = 0.0, 0
        for i, batch in enumerate(loader):
            if limit and i * loader.batch_size >= max(limit, loader.batch_size):
                break
            logits = model(batch.x)
            loss_sum += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.y.reshape(-1),
                                              reduction="sum").item())
            n += batch.y.size
        mean = loss_sum / max(n, 1)
        return {"loss": mean, "perplexity": M.perplexity(mean)}

    def generate(self, model, prompt: str, max_new_tokens: int = 200, temperature: float = 1.0,
                 top_k: int | None = None) -> str:
        ids = self.vocab.encode(prompt)
        if not ids:
            raise ValueError("the prompt is empty")
        # The KV cache covers max_len positions; past that, crop the context instead.
        fits = len(ids) + max_new_tokens <= model.cfg.max_len
        out = sample(model, np.array([ids], dtype=np.int64), max_new_tokens=max_new_tokens,
                     temperature=temperature, top_k=top_k, use_cache=fits)
        return self.vocab.decode(as_id_list(out)[len(ids):])

    def show(self, model, n):
        prompt = self.vocab.decode(self.corpus.val[: min(32, len(self.corpus.val))])
        text = self.generate(model, prompt, max_new_tokens=120, temperature=0.8, top_k=10)
        return [f"{prompt!r} -> {text!r}"]

    def attention_inputs(self, model):
        x = np.asarray(self.corpus.val[: min(24, self.cfg.block_size)], dtype=np.int64)[None]
        tok = [self.vocab.id_to_token(i) for i in x[0]]
        self.attention_caption = f"text {''.join(tok)!r} (validation split)"
        return (x,), {"": (tok, tok)}
