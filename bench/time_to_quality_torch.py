"""PyTorch twin of ``python -m transformer train`` on the default task (dates, small preset):
wall time until validation exact match reaches the target.

    python -m bench.time_to_quality_torch [--seed 0] [--threads 2] [--target 0.99]
                                          [--eval-every 50] [--steps N]

Same everything as our trainer, taken from the project itself where it is data, not
arithmetic: the task's splits, vocabulary, batches and their order
(``transformer.problems.make_problem``, the loader seeded ``seed + 1``), the model's
sizes (``TransformerConfig`` from the preset: d_model 64, 4 heads, 2 + 2 layers, d_ff
256, dropout 0, post-norm, ReLU, shared and tied embeddings, sinusoidal positions,
embeddings * sqrt(d_model), xavier_uniform_ on every matrix), the schedule (``transformer.schedule.lr_at``: warmup 200,
cosine over the preset's 2500 steps), AdamW (betas 0.9/0.98, eps 1e-9, weight decay
0.01 on matrices only), gradient clipping at 1.0, label smoothing 0.1, batch 64.
Evaluation every ``eval_every`` steps: greedy decoding of the first ``eval_examples``
(500) validation examples, exact match, with the trainer's length limit. Stops at the
first evaluation >= target. Importing ``transformer`` here loads minitensor but no
kernel backend (Numba is not imported) and changes nothing in the process.

Prints one JSON line: seconds to target (training + evaluations, the time a user
waits), steps, evaluations, the last exact match.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np


def _configs(seed: int, target: float, eval_every: int, steps: int | None):
    from transformer.config import resolve_configs
    over = {"seed": seed, "target": target, "eval_every": eval_every, "progress": False,
            "plots": False}
    if steps:
        over["steps"] = steps
    return resolve_configs("dates", "small", over)


def build(torch, mcfg):
    """The seq2seq model of ``transformer.task_models.Seq2SeqTransformer`` in torch.nn."""
    nn = torch.nn

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            d = mcfg.d_model
            self.embed = nn.Embedding(mcfg.src_vocab_size, d, padding_idx=mcfg.pad_id)  # shared
            pos = np.arange(mcfg.max_len)[:, None]
            div = np.exp(np.arange(0, d, 2) * (-math.log(10000.0) / d))
            pe = np.zeros((mcfg.max_len, d), np.float32)
            pe[:, 0::2], pe[:, 1::2] = np.sin(pos * div), np.cos(pos * div)
            self.register_buffer("pe", torch.from_numpy(pe))
            self.drop = nn.Dropout(mcfg.dropout)
            self.transformer = nn.Transformer(
                d, mcfg.nhead, mcfg.num_encoder_layers, mcfg.num_decoder_layers,
                mcfg.dim_feedforward, mcfg.dropout, mcfg.activation,
                layer_norm_eps=mcfg.layer_norm_eps, batch_first=True, norm_first=mcfg.norm_first)
            self.generator = nn.Linear(d, mcfg.tgt_vocab_size)
            self.generator.weight = self.embed.weight                      # tied
            self.scale = math.sqrt(d)

        def _in(self, ids):
            return self.drop(self.embed(ids) * self.scale + self.pe[:ids.shape[1]])

        def encode(self, src, src_pad):
            return self.transformer.encoder(self._in(src), src_key_padding_mask=src_pad)

        def decode(self, tgt, memory, src_pad, tgt_pad=None):
            T = tgt.shape[1]
            mask = nn.Transformer.generate_square_subsequent_mask(T)
            h = self.transformer.decoder(self._in(tgt), memory, tgt_mask=mask, tgt_is_causal=True,
                                         tgt_key_padding_mask=tgt_pad,
                                         memory_key_padding_mask=src_pad)
            return self.generator(h)

        def forward(self, src, tgt, src_pad, tgt_pad):
            return self.decode(tgt, self.encode(src, src_pad), src_pad, tgt_pad)

    model = Seq2Seq()
    # The same initialization as ours (transformer.task_models._init_weights):
    # xavier_uniform_ on every matrix, the shared embedding included, and a zero padding
    # row. torch's default N(0, 1) embedding times sqrt(d_model) = 8 swamps the positions
    # and the tied output layer; with it this twin reached ~52% exact match in 2500 steps.
    for p in model.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
    with torch.no_grad():
        model.embed.weight[mcfg.pad_id] = 0
    return model


def load_ours(torch, model, state: dict) -> None:
    """Give the twin our model's weights (``Seq2SeqTransformer.state_dict()``): the same
    names under ``transformer.``, our shared embedding as ``embed`` and the tied
    generator. Used to check that the twin trains the same model: from the same weights
    and batches the two losses agree to float32 rounding (tests/test_bench_time_to_quality.py)."""
    own = model.state_dict()
    renamed = {"embed.weight": "src_embed.weight", "generator.weight": "src_embed.weight"}
    model.load_state_dict({k: own[k] if k == "pe" else torch.from_numpy(np.array(state[renamed.get(k, k)]))
                           for k in own})


def adamw(torch, model, cfg):
    """AdamW as the trainer builds it: weight decay on matrices only."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr,
                             betas=(cfg.beta1, cfg.beta2), eps=cfg.adam_eps)


def train_step(torch, model, opt, batch, cfg, step: int) -> float:
    """One step exactly as the trainer's: forward, label-smoothed loss, backward,
    clipping at ``cfg.clip_grad``, the schedule's lr for ``step``, AdamW. Returns the loss."""
    from transformer.data import PAD_ID
    from transformer.schedule import lr_at
    logits = model(torch.from_numpy(batch.src), torch.from_numpy(batch.tgt_in),
                   torch.from_numpy(batch.src_pad_mask), torch.from_numpy(batch.tgt_pad_mask))
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), torch.from_numpy(batch.tgt_out).reshape(-1),
        ignore_index=PAD_ID, label_smoothing=cfg.label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
    for g in opt.param_groups:
        g["lr"] = lr_at(step, cfg)
    opt.step()
    return loss.item()


def greedy(torch, model, src, src_pad, max_len, bos, eos):
    """Greedy decoding of a batch (recomputes the decoder each step, as a plain loop)."""
    memory = model.encode(src, src_pad)
    ys = torch.full((src.shape[0], 1), bos, dtype=torch.long)
    done = torch.zeros(src.shape[0], dtype=torch.bool)
    for _ in range(max_len):
        nxt = model.decode(ys, memory, src_pad)[:, -1].argmax(-1)
        ys = torch.cat([ys, nxt[:, None]], 1)
        done |= nxt == eos
        if bool(done.all()):
            break
    return ys[:, 1:].numpy()


def exact_match(torch, model, problem, examples) -> float:
    from transformer.data import BOS_ID, EOS_ID, PAD_ID
    from transformer.problems.seq2seq import _first_eos_cut
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(examples), 256):                   # the trainer's decode batches
            chunk = examples[i:i + 256]
            enc = [problem.vocab.encode(s) for s, _ in chunk]
            width = max(len(e) for e in enc)
            src = np.full((len(enc), width), PAD_ID, np.int64)
            for j, e in enumerate(enc):
                src[j, :len(e)] = e
            max_len = min(model.pe.shape[0] - 1, max(width + 8, problem._target_len_hint()))
            ids = greedy(torch, model, torch.from_numpy(src), torch.from_numpy(src == PAD_ID),
                         max_len, BOS_ID, EOS_ID)
            preds += [problem.vocab.decode(_first_eos_cut(r)) for r in ids]
    model.train()
    return sum(p == t for p, (_, t) in zip(preds, examples)) / len(examples)


def run(seed: int, threads: int, target: float, eval_every: int, steps: int | None) -> dict:
    import torch
    torch.set_num_threads(threads)
    from transformer.data.stream import BatchStream
    from transformer.problems import make_problem

    t_start = time.perf_counter()
    cfg, model_over = _configs(seed, target, eval_every, steps)
    problem = make_problem(cfg)
    problem.load_data()
    mcfg = problem.model_config(model_over)
    torch.manual_seed(seed)
    model = build(torch, mcfg)
    model.train()
    opt = adamw(torch, model, cfg)
    stream = BatchStream(problem.train_loader(seed=cfg.seed + 1))
    val = problem.splits.val[:cfg.eval_examples]
    t0 = time.perf_counter()
    score, evals, step = 0.0, 0, 0
    while step < cfg.steps:
        step += 1
        train_step(torch, model, opt, stream.next(), cfg, step)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            score, evals = exact_match(torch, model, problem, val), evals + 1
            if score >= target:
                break
    end = time.perf_counter()
    return {"lib": "torch", "seed": seed, "threads": threads, "seconds": end - t0,
            "setup_s": t0 - t_start, "steps": step, "evaluations": evals,
            "exact_match": score, "reached": score >= target, "torch": torch.__version__}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.time_to_quality_torch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--steps", type=int, default=None, help="cap (default: the preset's 2500)")
    a = p.parse_args(argv)
    print(json.dumps(run(a.seed, a.threads, a.target, a.eval_every, a.steps)))


if __name__ == "__main__":
    main()
