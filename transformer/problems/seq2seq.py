"""seq2seq: copy / reverse / sort / add / dates, an encoder-decoder maps a string to a string.

Loss: label-smoothed cross-entropy over the target tokens (PAD ignored). Metrics: token
accuracy (teacher forcing), exact match of greedy decodes, BLEU for dates.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from minitensor import functional as F

from .. import metrics as M
from ..data import BOS_ID, EOS_ID, PAD_ID, make_splits, pad_sequences, seq2seq_loader
from ..decoding import beam_search, greedy_decode
from ..task_models import Seq2SeqTransformer
from .base import Problem, as_array


def _first_eos_cut(ids: Sequence[int]) -> list[int]:
    out = []
    for i in ids:
        i = int(i)
        if i == EOS_ID:
            break
        if i not in (BOS_ID, PAD_ID):
            out.append(i)
    return out


class Seq2SeqProblem(Problem):
    """copy / reverse / sort / add / dates: an encoder-decoder maps a string to a string."""

    kind = "seq2seq"
    score_key = "exact_match"

    def load_data(self) -> None:
        c = self.cfg
        self.splits = make_splits(self.task, c.n_train, c.n_val, c.n_test, seed=c.seed)

    def _loader(self, examples, batch_size, seed, shuffle):
        return seq2seq_loader(examples, self.vocab, batch_size, seed=seed, shuffle=shuffle)

    def train_loader(self, seed):
        return self._loader(self.splits.train, self.cfg.batch_size, seed, True)

    def max_len(self) -> int:
        longest = max(max(len(self.vocab.encode(s)), len(self.vocab.encode(t)))
                      for part in (self.splits.train, self.splits.val, self.splits.test) for s, t in part)
        return longest + 8  # room for BOS/EOS and slightly longer inputs at inference

    def model_config(self, overrides):
        overrides = {"share_vocab": True, "tie_embeddings": True, **overrides}
        return super().model_config(overrides)

    def build_model(self, model_cfg):
        return Seq2SeqTransformer(model_cfg)

    def loss(self, model, batch, label_smoothing):
        logits = model(batch.src, batch.tgt_in, src_pad_mask=batch.src_pad_mask,
                       tgt_pad_mask=batch.tgt_pad_mask)  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.tgt_out.reshape(-1),
                               ignore_index=PAD_ID, label_smoothing=label_smoothing)

    def batch_tokens(self, batch):
        return int((~batch.src_pad_mask).sum()) + batch.ntokens

    def decode(self, model, sources: Sequence[str], beam: int = 1, batch_size: int = 256) -> list[str]:
        """Greedy (beam == 1) or beam-search translations of source strings.

        Inputs are decoded in padded batches with their padding mask, each row with its
        own length limit, so every input gets exactly the answer it gets alone.
        """
        enc = [self.vocab.encode(s) for s in sources]
        if any(len(e) == 0 for e in enc):
            raise ValueError("cannot translate an empty input")
        # Decoder positions: BOS + generated tokens must fit in the model's max_len.
        hint = self._target_len_hint()
        limits = np.array([min(model.cfg.max_len - 1, max(len(e) + 8, hint)) for e in enc], np.int64)
        out: list[str] = []
        for start in range(0, len(enc), batch_size):
            rows = slice(start, start + batch_size)
            src = pad_sequences(enc[rows], PAD_ID)                           # (B, S)
            mask = src == PAD_ID                                             # (B, S)
            if beam > 1:
                ids, _ = beam_search(model, src, beam_size=beam, max_len=limits[rows], bos_id=BOS_ID,
                                     eos_id=EOS_ID, src_pad_mask=mask)
            else:
                ids = greedy_decode(model, src, max_len=limits[rows], bos_id=BOS_ID, eos_id=EOS_ID,
                                    src_pad_mask=mask)
            out += [self.vocab.decode(_first_eos_cut(r)) for r in as_array(ids)]
        return out

    def _target_len_hint(self) -> int:
        if self.splits is None:
            return 0
        return max(len(t) for t in (e[1] for e in self.splits.train[:2000])) + 2

    def evaluate(self, model, split, limit=None):
        examples = self.examples(split)
        loss_sum, n_tok, correct_tok = 0.0, 0, 0
        for batch in self.eval_batches(examples, 2 * self.cfg.batch_size):
            logits = model(batch.src, batch.tgt_in, src_pad_mask=batch.src_pad_mask,
                           tgt_pad_mask=batch.tgt_pad_mask)
            flat = logits.reshape(-1, logits.shape[-1])
            loss_sum += float(F.cross_entropy(flat, batch.tgt_out.reshape(-1), ignore_index=PAD_ID,
                                              reduction="sum").item())
            c, t = M.token_accuracy(logits.data.argmax(-1), batch.tgt_out, PAD_ID)
            correct_tok, n_tok = correct_tok + c, n_tok + t
        decoded = examples[:limit] if limit else examples
        preds = self.decode(model, [s for s, _ in decoded])
        refs = [t for _, t in decoded]
        out = {"loss": loss_sum / max(n_tok, 1), "token_accuracy": correct_tok / max(n_tok, 1),
               "exact_match": M.exact_match(preds, refs), "n_decoded": len(decoded)}
        if self.task_name == "dates" and M.bleu_available():
            out["bleu"] = M.bleu(preds, refs)
        return out

    def show(self, model, n):
        examples = self.splits.test[:n]
        preds = self.decode(model, [s for s, _ in examples])
        width = max(len(s) for s, _ in examples)
        return [f"{s:<{width}} -> {p or '(empty)'}  {'✓' if p == t else '✗ (expected ' + t + ')'}"
                for (s, t), p in zip(examples, preds)]

    def attention_inputs(self, model):
        src_text, _ = self.splits.test[0]
        pred = self.decode(model, [src_text])[0]
        src = np.array([self.vocab.encode(src_text)], dtype=np.int64)
        tgt_in = np.array([[BOS_ID, *self.vocab.encode(pred)][: model.cfg.max_len]], dtype=np.int64)
        s_tok = [self.vocab.id_to_token(i) for i in src[0]]
        t_tok = [self.vocab.id_to_token(i) for i in tgt_in[0]]
        labels = {"encoder": (s_tok, s_tok), "self_attn": (t_tok, t_tok), "multihead_attn": (t_tok, s_tok)}
        self.attention_caption = f"input {src_text!r} -> output {pred!r}"
        return (src, tgt_in), labels
