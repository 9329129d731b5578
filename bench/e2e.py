"""End-to-end rows: one training step (forward, backward, Adam) of an encoder-decoder.

Three implementations of the same model, same sizes, same batch:

    minitensor numba   transformer.Seq2SeqTransformer, kernels backend "numba"
    minitensor numpy   the same model object, kernels backend "numpy"
    torch              torch.nn.Transformer(batch_first=True) + embeddings * sqrt(d_model)
                       + sinusoidal positions + dropout + Linear generator

All in train mode (dropout 0.1 active), cross-entropy on the next-token targets,
Adam(lr=1e-4). A step is: forward -> loss -> zero_grad -> backward -> optimizer step.
The causal target mask is built inside the step on both sides (as a training loop
does). Tokens are drawn from 1..V-1 (no padding, so no padding masks). Target tokens/s
is batch * tgt_len / step time.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from . import harness, protocol


@dataclass(frozen=True)
class E2EConfig:
    """Model and batch sizes of one end-to-end row."""

    name: str
    d_model: int
    nhead: int
    layers: int          # encoder layers = decoder layers
    dim_ff: int
    vocab: int
    batch: int
    length: int          # source length = target length
    dropout: float = 0.1

    def describe(self) -> str:
        return (f"d{self.d_model} h{self.nhead} L{self.layers}+{self.layers} ff{self.dim_ff} "
                f"V{self.vocab} B{self.batch} T{self.length}")


CONFIGS = {
    "S": E2EConfig("S", 128, 4, 2, 512, 1000, 32, 32),
    "M": E2EConfig("M", 256, 8, 3, 1024, 1000, 32, 64),
    "toy": E2EConfig("toy", 16, 2, 1, 32, 50, 2, 8),
}


def make_batch(cfg: E2EConfig, seed: int = 0):
    """src (B, T), tgt_in (B, T), tgt_out (B, T) int64 token ids in 1..V-1."""
    rng = np.random.default_rng(seed)
    src = rng.integers(1, cfg.vocab, (cfg.batch, cfg.length))
    tgt = rng.integers(1, cfg.vocab, (cfg.batch, cfg.length + 1))
    return src, tgt[:, :-1], tgt[:, 1:]


# ----------------------------------------------------------------------- minitensor

def build_model(cfg: E2EConfig):
    """The config's encoder-decoder in minitensor, in training mode (seed first)."""
    import transformer

    tcfg = transformer.TransformerConfig(
        d_model=cfg.d_model, nhead=cfg.nhead, num_encoder_layers=cfg.layers,
        num_decoder_layers=cfg.layers, dim_feedforward=cfg.dim_ff, dropout=cfg.dropout,
        src_vocab_size=cfg.vocab, tgt_vocab_size=cfg.vocab, max_len=max(512, cfg.length))
    model = transformer.Seq2SeqTransformer(tcfg)
    model.train()
    return model


def build_ours(cfg: E2EConfig, seed: int = 0):
    """(model, step(backend) -> loss float) for minitensor + transformer."""
    import minitensor as mt
    from minitensor import functional as F
    from minitensor import kernels, optim

    mt.manual_seed(seed)
    model = build_model(cfg)
    opt = optim.Adam(model.parameters(), lr=1e-4)
    src, tgt_in, tgt_out = make_batch(cfg, seed)
    target = mt.tensor(tgt_out.reshape(-1))

    def step(backend: str = "numba") -> float:
        with kernels.use(backend):
            logits = model(src, tgt_in)                                   # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, cfg.vocab), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss.item()
    return model, step


def count_params_ours(model) -> int:
    return sum(int(np.prod(p.shape)) for p in model.parameters())


# ---------------------------------------------------------------------------- torch

def build_torch(torch, cfg: E2EConfig, seed: int = 0):
    """(model, step() -> loss float) for the torch.nn equivalent."""
    nn = torch.nn
    torch.manual_seed(seed)

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed = nn.Embedding(cfg.vocab, cfg.d_model, padding_idx=0)
            self.tgt_embed = nn.Embedding(cfg.vocab, cfg.d_model, padding_idx=0)
            self.register_buffer("pe", torch.from_numpy(_sinusoid(max(512, cfg.length), cfg.d_model)))
            self.src_drop = nn.Dropout(cfg.dropout)
            self.tgt_drop = nn.Dropout(cfg.dropout)
            self.transformer = nn.Transformer(cfg.d_model, cfg.nhead, cfg.layers, cfg.layers,
                                              cfg.dim_ff, cfg.dropout, batch_first=True)
            self.generator = nn.Linear(cfg.d_model, cfg.vocab)

        def forward(self, src, tgt):
            scale = math.sqrt(cfg.d_model)
            s = self.src_drop(self.src_embed(src) * scale + self.pe[:src.shape[1]])  # (B, S, D)
            t = self.tgt_drop(self.tgt_embed(tgt) * scale + self.pe[:tgt.shape[1]])  # (B, T, D)
            mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])     # (T, T)
            h = self.transformer(s, t, tgt_mask=mask, tgt_is_causal=True)           # (B, T, D)
            return self.generator(h)                                                # (B, T, V)

    model = Seq2Seq()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    src, tgt_in, tgt_out = (torch.from_numpy(a) for a in make_batch(cfg, seed))
    target = tgt_out.reshape(-1)

    def step() -> float:
        logits = model(src, tgt_in)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()
    return model, step


def _sinusoid(n: int, d: int) -> np.ndarray:
    """The paper's table: PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(...)."""
    pos = np.arange(n)[:, None]
    div = np.exp(np.arange(0, d, 2) * (-math.log(10000.0) / d))
    pe = np.zeros((n, d), np.float32)
    pe[:, 0::2] = np.sin(pos * div)
    pe[:, 1::2] = np.cos(pos * div)
    return pe


# ------------------------------------------------------------------------ children

def _rss_mb(field: str) -> float:
    """VmRSS / VmHWM of this process from /proc (Linux), in MB; NaN elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def _reset_peak_rss() -> None:
    """Start VmHWM again from the current RSS (Linux >= 4.0), so the peak is the steps'."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _time_steps(step, warmup: int, steps: int) -> dict:
    import gc
    import statistics
    import time
    for _ in range(warmup):
        step()
    gc.collect()
    before = _rss_mb("VmRSS")
    _reset_peak_rss()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = _rss_mb("VmHWM")
    return {"median_ms": statistics.median(times) * 1e3, "steps_ms": [t * 1e3 for t in times],
            "peak_rss_mb": peak, "step_rss_mb": peak - before}


def child(lib: str, config: str, threads: int, warmup: int, steps: int) -> dict:
    """One process of the protocol: ``lib`` ("ours" or "torch") only, as its users run it."""
    import os
    cfg = CONFIGS[config]
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)
        _, step = build_torch(torch, cfg)
        out = _time_steps(step, warmup, steps)
        out["version"] = torch.__version__
    else:
        from minitensor import kernels
        with kernels.threads(threads):
            _, step = build_ours(cfg)
            out = _time_steps(lambda: step("numba"), warmup, steps)
        out["tuned"] = kernels.tuned()
    out["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    return out


def _child_main(argv: list) -> None:
    import argparse
    import json
    p = argparse.ArgumentParser(prog="python -m bench.e2e --child")
    p.add_argument("--child", required=True, choices=["ours", "torch"])
    p.add_argument("--config", default="S", choices=sorted(CONFIGS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    a = p.parse_args(argv)
    print(json.dumps(child(a.child, a.config, a.threads, a.warmup, a.steps)))


# ----------------------------------------------------------------------------- parent

def variants(config: str, threads: int, warmup: int, steps: int, torch: bool = True,
             tuned: bool = True) -> dict:
    """The protocol's processes for one row (see protocol.py)."""
    args = ["--config", config, "--threads", str(threads), "--warmup", str(warmup),
            "--steps", str(steps)]
    v = {"minitensor": ("bench.e2e", ["--child", "ours", *args], {})}
    if tuned:
        v["minitensor+tune"] = ("bench.e2e", ["--child", "ours", *args],
                                {"MINITENSOR_TUNE_PROCESS": "1"})
    if torch:
        v["torch"] = ("bench.e2e", ["--child", "torch", *args], {})
        v["torch PASSIVE"] = ("bench.e2e", ["--child", "torch", *args],
                              {"OMP_WAIT_POLICY": "PASSIVE"})
    return v


def run_row(config: str, threads: int, rounds: int, warmup: int, steps: int,
            torch: bool = True, tuned: bool = True, log=print) -> dict:
    """One table row: every variant ``rounds`` times, alternated; medians and spreads."""
    cfg = CONFIGS[config]
    log(f"  train step {config}, {threads} thread(s):")
    runs = protocol.alternate(variants(config, threads, warmup, steps, torch, tuned),
                              rounds, log)
    s = {name: protocol.summary(r) for name, r in runs.items()}
    row = {"section": "e2e", "name": f"train step {config}", "shape": cfg.describe(),
           "threads": threads, "rounds": rounds, "steps": steps, "config": asdict(cfg),
           "variants": s, "notes": []}
    row["ours"] = protocol.spread(s["minitensor"])
    row["ours_ms"] = s["minitensor"]["median_ms"]
    row["ours_tok_s"] = cfg.batch * cfg.length / (row["ours_ms"] / 1e3)
    if tuned:
        row["tuned"] = protocol.spread(s["minitensor+tune"])
        row["untuned_over_tuned"] = harness.ratio(row["ours_ms"], s["minitensor+tune"]["median_ms"])
    if torch:
        row["torch_default"] = protocol.spread(s["torch"])
        row["torch_passive"] = protocol.spread(s["torch PASSIVE"])
        ref = min(("torch", "torch PASSIVE"), key=lambda n: s[n]["median_ms"])
        row["reference"] = "default" if ref == "torch" else "PASSIVE"
        row["torch_ms"] = s[ref]["median_ms"]
        row["torch_over_ours"] = harness.ratio(row["torch_ms"], row["ours_ms"])
        row["rss_ours_mb"] = s["minitensor"]["peak_rss_mb"]
        row["rss_torch_mb"] = s[ref]["peak_rss_mb"]
        row["step_rss_ours_mb"] = s["minitensor"]["step_rss_mb"]
        row["step_rss_torch_mb"] = s[ref]["step_rss_mb"]
    return row


def configs_for(size: str) -> list:
    """Which configs a run of ``size`` times."""
    return {"full": ["S", "M"], "quick": ["S"], "toy": ["toy"]}[size]


def run(settings, torch=None, log=print, thread_counts=(2, 1)) -> list:
    """Every e2e row for ``settings.size`` at each thread count; a failure becomes a row
    note. ``torch``: whether the torch variants run (the module object or None)."""
    rounds = {"full": 5, "quick": 3, "toy": 1}[settings.size]
    steps, warmup = {"full": (10, 3), "quick": (5, 2), "toy": (1, 1)}[settings.size]
    rows = []
    for key in configs_for(settings.size):
        for n in thread_counts:
            try:
                rows.append(run_row(key, n, rounds, warmup, steps, torch is not None,
                                    settings.size != "toy", log))
            except Exception as e:  # the model code is still moving: report, don't crash
                rows.append({"section": "e2e", "name": f"train step {key}", "threads": n,
                             "shape": CONFIGS[key].describe(), "notes": [],
                             "error": f"{type(e).__name__}: {e}"})
    return rows


E2E_COLUMNS = [("name", "row", ""), ("threads", "threads", "d"), ("shape", "config", ""),
               ("ours", "minitensor ms", ""), ("torch_default", "torch ms (OMP default)", ""),
               ("torch_passive", "torch ms (PASSIVE)", ""), ("reference", "reference", ""),
               ("torch_over_ours", "torch/minitensor", ".2f"),
               ("tuned", "minitensor+tune_process ms", ""),
               ("ours_tok_s", "minitensor tok/s", ".0f")]
MEMORY_COLUMNS = [("name", "row", ""), ("threads", "threads", "d"),
                  ("rss_ours_mb", "minitensor peak RSS MB", ".0f"),
                  ("rss_torch_mb", "torch peak RSS MB", ".0f"),
                  ("step_rss_ours_mb", "minitensor step +MB", ".0f"),
                  ("step_rss_torch_mb", "torch step +MB", ".0f")]


if __name__ == "__main__":
    import sys
    if "--child" in sys.argv:
        _child_main(sys.argv[1:])
