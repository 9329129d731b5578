"""Inference: greedy decoding, beam search and sampling, with or without a KV cache.

Model protocol (``Seq2SeqTransformer`` implements it):
    ``encode(src, src_pad_mask) -> memory (B, S, D)``,
    ``decode(tgt, memory, src_pad_mask, tgt_pad_mask, cache=None) -> logits (B, T, V)``,
    ``init_cache() -> LayerCaches``.
Language models (``TransformerLM``): ``lm(tokens, cache=None) -> logits (B, T, V)``
and ``init_cache()``.

With ``use_cache=True`` each step feeds only the newest token: the decoder's
self-attention keys/values grow by one position per step, and the cross-attention
keys/values are projected from the encoder output once (see ``attention.KVCache``).
Without it every step recomputes the whole prefix; both give the same tokens and,
in float64, the same logits up to rounding.

Everything runs under ``mt.no_grad()`` with the model in eval mode (dropout off); the
model's previous mode is restored afterwards.
"""
from __future__ import annotations

import contextlib

import numpy as np

import minitensor as mt
from minitensor import kernels
from minitensor import random as mt_random


@contextlib.contextmanager
def inference_mode(model):
    """``no_grad`` + ``model.eval()``, restoring each submodule's training flag after."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with mt.no_grad():
            yield
    finally:
        for m, flag in flags:
            object.__setattr__(m, "training", flag)


@contextlib.contextmanager
def _decoding(model):
    """``inference_mode`` for the decoding functions here. A decoding call is one call of
    ours, so the kernels' BLAS settings are made once for all of it (``blas_scope``), not
    once per product; ``inference_mode`` itself is public and may wrap the user's own
    code, which keeps the BLAS library as the user has it."""
    with inference_mode(model), kernels.get().blas_scope():
        yield


def _pad_id(model, pad_id, fallback):
    if pad_id is not None:
        return pad_id
    cfg = getattr(model, "cfg", None)
    return cfg.pad_id if cfg is not None else fallback


def _ids(x) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, mt.Tensor) else x, dtype=np.int64)


def _source_mask(model, src: np.ndarray, mask) -> np.ndarray | None:
    """The (B, S) source padding mask: the one given, else True where ``src`` is the
    model's PAD id (None when nothing is padded).

    A padded batch decoded without its mask would let the encoder and the
    cross-attention read the PAD positions, and each row's answer would depend on the
    longest input of the batch; deriving the mask makes that mistake impossible.
    """
    if mask is not None:
        return np.asarray(mask.data if isinstance(mask, mt.Tensor) else mask, dtype=bool)
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        return None
    padded = src == cfg.pad_id
    return padded if padded.any() else None


def _row_limits(fn: str, max_len, batch: int) -> np.ndarray:
    """``max_len`` as one limit per row: (B,) int64 (an int applies to every row).

    Per-row limits let one padded batch hold inputs whose answers may have different
    lengths: each row stops at its own limit, exactly as it would decoded alone, and
    the batch is not split into groups of equal limits (one decoder pass per step for
    all of them instead of one per group).
    """
    limits = np.asarray(max_len)
    if limits.dtype.kind not in "iu" or limits.ndim > 1 or (limits.ndim == 1 and limits.shape[0] != batch):
        raise ValueError(f"{fn}: max_len must be an int or one int per source row ({batch},), "
                         f"got {limits.dtype} of shape {limits.shape}")
    if (limits < 0).any():
        raise ValueError(f"{fn}: max_len must be >= 0, got {limits.min()}")
    return np.broadcast_to(limits.astype(np.int64), (batch,))


def _rows_of(memory, mask, index: np.ndarray, n: int):
    """(memory (n, S, D), mask (n, S) | None) restricted to the batch rows ``index``."""
    if len(index) == n:
        return memory, mask
    # (indexing with an array made a fresh copy: wrap it, no second copy)
    return mt.as_tensor(memory.data[index]), (None if mask is None else mask[index])


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# ----------------------------------------------------------------------------- greedy

def greedy_decode(model, src, max_len: int, bos_id: int, eos_id: int, src_pad_mask=None,
                  use_cache: bool = True, pad_id: int | None = None, return_logits: bool = False):
    """Pick the most likely next token at every step, for a batch.

    Args:
        model: an encoder-decoder (see the module docstring).
        src: (B, S) source ids.
        max_len: most tokens generated per sequence (EOS included): an int, or (B,)
            ints, one limit per row (each row's answer is then the one it gets decoded
            alone with its own limit).
        bos_id, eos_id: first decoder input; token that ends a sequence.
        src_pad_mask: (B, S) bool, True at PAD (default: ``src == model.cfg.pad_id``).
        use_cache: incremental decoding with KV caches.
        pad_id: fills positions after a sequence's EOS (default ``model.cfg.pad_id``).
        return_logits: also return the logits of every step.
    Returns:
        tokens (B, 1 + T) int64 starting with BOS, T <= max(max_len) (decoding stops
        once every sequence has produced EOS or reached its limit; later positions are
        ``pad_id``); with ``return_logits``, also logits
        (B, T, V) (NaN where a row had already ended: ended rows leave the batch).
    """
    src = _ids(src)
    src_pad_mask = _source_mask(model, src, src_pad_mask)
    pad_id = _pad_id(model, pad_id, eos_id)
    with _decoding(model):
        memory = model.encode(src, src_pad_mask)                             # (B, S, D)
        B = memory.shape[0]
        limits = _row_limits("greedy_decode", max_len, B)                   # (B,)
        ys = np.full((B, 1), bos_id, dtype=np.int64)                         # (B, 1)
        # Rows still decoding (indices into the batch). A row that ends (EOS or its
        # limit) leaves the batch: later steps compute only the rows that remain, with
        # their memory, mask and cache rows.
        live = np.flatnonzero(limits > 0)                                    # (L,)
        memory, mask = _rows_of(memory, src_pad_mask, live, B)
        cache = model.init_cache() if use_cache else None
        step_logits = []
        for t in range(int(limits.max(initial=0))):
            inp = ys[live, -1:] if use_cache else ys[live]                   # (L, 1) | (L, t)
            logits = model.decode(inp, memory, mask, None, cache=cache)
            last = logits.data[:, -1]                                        # (L, V)
            nxt = np.full(B, pad_id, dtype=np.int64)                         # (B,)
            nxt[live] = last.argmax(axis=-1)
            ys = np.concatenate([ys, nxt[:, None]], axis=1)                  # (B, t + 1)
            if return_logits:
                full = np.full((B, last.shape[-1]), np.nan, last.dtype)      # (B, V)
                full[live] = last
                step_logits.append(full)
            going = (nxt[live] != eos_id) & (limits[live] > t + 1)           # (L,)
            if not going.all():
                if not going.any():
                    break
                keep = np.flatnonzero(going)
                live = live[keep]
                memory, mask = _rows_of(memory, mask, keep, len(going))
                if cache is not None:
                    cache.reorder(keep)
    if return_logits:
        return ys, np.stack(step_logits, axis=1)
    return ys


# ----------------------------------------------------------------------------- beam search

def length_penalty_factor(length: int, alpha: float, style: str = "gnmt") -> float:
    """The divisor of a hypothesis' log-probability.

    * "gnmt" (Wu et al. 2016): ((5 + length) / 6) ** alpha
    * "simple": length ** alpha
    alpha = 0 ranks by raw log-probability. ``length`` counts generated tokens
    (EOS included, BOS not).
    """
    if style == "gnmt":
        return ((5.0 + length) / 6.0) ** alpha
    if style == "simple":
        return float(length) ** alpha
    raise ValueError(f"length penalty style must be 'gnmt' or 'simple', got {style!r}")


def beam_search(model, src, beam_size: int, max_len: int, bos_id: int, eos_id: int,
                src_pad_mask=None, length_penalty: float = 1.0, penalty_style: str = "gnmt",
                use_cache: bool = True, pad_id: int | None = None):
    """Beam search over a batch of source sequences.

    At each step every live beam is extended by every token; of the 2K best candidates
    per input, those ending in EOS *and ranked within the top K* become finished
    hypotheses (kept, scored by log-prob / length penalty), and the best K others stay
    alive. An input is done once it has K finished hypotheses (so all beams finished);
    at ``max_len`` the live beams are finished as they are. With K = 1 this is exactly
    greedy decoding.

    Args:
        model: an encoder-decoder (see the module docstring).
        src: (B, S) source ids; src_pad_mask: (B, S) bool, True at PAD (default:
            ``src == model.cfg.pad_id``). Each row's result is the one it gets alone.
        beam_size: K.
        max_len: most tokens generated per hypothesis (EOS included): an int, or (B,)
            ints, one limit per input.
        bos_id, eos_id: first decoder input; end token.
        length_penalty: alpha of ``length_penalty_factor``; penalty_style: "gnmt" | "simple".
        use_cache: incremental decoding; caches are reordered to follow the beams.
        pad_id: fills the output after EOS (default ``model.cfg.pad_id``).
    Returns:
        (tokens (B, 1 + T) int64 best hypothesis per input starting with BOS, padded;
        scores (B,) float64 their length-normalized log-probabilities).
    """
    if beam_size < 1:
        raise ValueError(f"beam_search: beam_size must be >= 1, got {beam_size}")
    src = _ids(src)
    src_pad_mask = _source_mask(model, src, src_pad_mask)
    pad_id = _pad_id(model, pad_id, eos_id)
    K = beam_size
    with _decoding(model):
        memory = model.encode(src, src_pad_mask)                             # (B, S, D)
        B = memory.shape[0]
        rep = np.repeat(np.arange(B), K)                                     # (B*K,)
        memory = mt.as_tensor(memory.data[rep])                              # (B*K, S, D)
        mem_mask = None if src_pad_mask is None else src_pad_mask[rep]       # (B*K, S)
        tokens = np.full((B * K, 1), bos_id, dtype=np.int64)                 # (B*K, 1)
        scores = np.full((B, K), -np.inf)                                    # (B, K)
        scores[:, 0] = 0.0                                                   # one live beam at first
        finished: list[list[tuple]] = [[] for _ in range(B)]                 # (norm score, ids)
        limits = _row_limits("beam_search", max_len, B)                     # (B,)
        done = np.zeros(B, dtype=bool)
        cache = model.init_cache() if use_cache else None
        for t in range(int(limits.max(initial=0)) + 1):
            for b in np.flatnonzero(~done & (limits == t)):  # its limit: finish its live beams
                _finish_live_beams(finished[b], tokens[b * K:(b + 1) * K, 1:], scores[b],
                                   length_penalty, penalty_style)
                done[b] = True
                scores[b] = -np.inf
            if done.all():
                break
            inp = tokens[:, -1:] if use_cache else tokens                    # (B*K, 1) | (B*K, t+1)
            logits = model.decode(inp, memory, mem_mask, None, cache=cache)
            logp = _log_softmax(logits.data[:, -1].astype(np.float64))       # (B*K, V)
            V = logp.shape[-1]
            cand = (scores.reshape(B * K, 1) + logp).reshape(B, K * V)       # (B, K*V)
            top = np.argsort(-cand, axis=1, kind="stable")[:, :2 * K]        # (B, 2K)
            parent = np.repeat(np.arange(B) * K, K) + np.tile(np.arange(K), B)  # (B*K,)
            new_tok = np.full(B * K, pad_id, dtype=np.int64)                 # (B*K,)
            new_scores = np.full((B, K), -np.inf)                            # (B, K)
            for b in np.flatnonzero(~done):
                alive = 0
                for rank, c in enumerate(top[b]):
                    s = cand[b, c]
                    if s == -np.inf or alive == K:
                        break
                    beam, tok = divmod(int(c), V)
                    if tok == eos_id:
                        if rank < K:
                            ids = tokens[b * K + beam, 1:].tolist() + [eos_id]
                            finished[b].append((s / length_penalty_factor(t + 1, length_penalty,
                                                                          penalty_style), ids))
                        continue
                    parent[b * K + alive] = b * K + beam
                    new_tok[b * K + alive] = tok
                    new_scores[b, alive] = s
                    alive += 1
                if len(finished[b]) >= K:
                    done[b] = True
                    new_scores[b] = -np.inf
            tokens = np.concatenate([tokens[parent], new_tok[:, None]], axis=1)  # (B*K, t+2)
            scores = new_scores
            if cache is not None and not done.all():
                cache.reorder(parent)
    best = [max(f, key=lambda h: h[0]) for f in finished]
    T = max(len(ids) for _, ids in best)
    out = np.full((B, 1 + T), pad_id, dtype=np.int64)
    out[:, 0] = bos_id
    for b, (_, ids) in enumerate(best):
        out[b, 1:1 + len(ids)] = ids
    return out, np.array([s for s, _ in best], dtype=np.float64)


def _finish_live_beams(finished: list, tokens: np.ndarray, scores: np.ndarray,
                       length_penalty: float, penalty_style: str) -> None:
    """At an input's length limit: its live beams (tokens (K, t), scores (K,), -inf for
    none) become finished hypotheses as they are, scored like those that ended in EOS."""
    for k in np.flatnonzero(scores > -np.inf):
        ids = tokens[k].tolist()
        finished.append((scores[k] / length_penalty_factor(len(ids), length_penalty, penalty_style), ids))


# ----------------------------------------------------------------------------- sampling

def sample(lm, prompt, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
           eos_id: int | None = None, use_cache: bool = True, seed: int | None = None):
    """Generate from a language model by sampling softmax(logits / temperature).

    Args:
        lm: a language model (``lm(tokens, cache=None) -> logits``), e.g. TransformerLM.
        prompt: (B, T0) ids (all rows the same length).
        max_new_tokens: tokens appended per row.
        temperature: > 0; 0 means greedy (argmax).
        top_k: sample only among the k most likely tokens (top_k=1 is greedy).
        eos_id: rows stop at EOS (later positions repeat EOS); generation ends early
            when every row has stopped.
        use_cache: incremental decoding; then T0 + max_new_tokens must fit in the
            model's max_len. Without a cache the context is cropped to the last
            ``lm.cfg.max_len`` tokens.
        seed: seed of a private generator; None uses minitensor's global generator
            (``mt.manual_seed``).
    Returns:
        (B, T0 + n) int64 ids, prompt included, n <= max_new_tokens.
    """
    if temperature < 0:
        raise ValueError(f"sample: temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"sample: top_k must be >= 1, got {top_k}")
    rng = np.random.default_rng(seed) if seed is not None else mt_random.generator()
    tokens = _ids(prompt)
    if tokens.ndim != 2:
        raise ValueError(f"sample: prompt must be (B, T0) ids, got shape {tokens.shape}")
    cfg = getattr(lm, "cfg", None)
    max_ctx = cfg.max_len if cfg is not None else None
    if use_cache and max_ctx is not None and tokens.shape[1] + max_new_tokens > max_ctx:
        raise ValueError(f"sample: prompt ({tokens.shape[1]}) + max_new_tokens ({max_new_tokens}) "
                         f"exceeds the model's max_len ({max_ctx}); use use_cache=False to crop "
                         "the context instead")
    finished = np.zeros(tokens.shape[0], dtype=bool)
    with _decoding(lm):
        cache = lm.init_cache() if use_cache else None
        inp = tokens
        for _ in range(max_new_tokens):
            if not use_cache and max_ctx is not None:
                inp = inp[:, -max_ctx:]
            logits = lm(inp, cache=cache).data[:, -1].astype(np.float64)     # (B, V)
            nxt = _pick_token(logits, temperature, top_k, rng)               # (B,)
            if eos_id is not None:
                nxt = np.where(finished, eos_id, nxt)
                finished |= nxt == eos_id
            tokens = np.concatenate([tokens, nxt[:, None]], axis=1)          # (B, t + 1)
            inp = nxt[:, None] if use_cache else tokens
            if eos_id is not None and finished.all():
                break
    return tokens


def _pick_token(logits: np.ndarray, temperature: float, top_k: int | None,
                rng: np.random.Generator) -> np.ndarray:
    """One token per row of logits (B, V): argmax, or a draw from the tempered top-k."""
    if temperature == 0:
        return logits.argmax(axis=-1)
    z = logits / temperature                                                 # (B, V)
    if top_k is not None and top_k < z.shape[-1]:
        kth = np.partition(z, -top_k, axis=-1)[:, -top_k][:, None]           # (B, 1)
        z = np.where(z < kth, -np.inf, z)                                    # (B, V)
    p = np.exp(z - z.max(axis=-1, keepdims=True))                            # (B, V)
    p /= p.sum(axis=-1, keepdims=True)
    u = 1.0 - rng.random((p.shape[0], 1))                                    # (B, 1) in (0, 1]
    idx = (np.cumsum(p, axis=-1) < u).sum(axis=-1)                           # inverse CDF
    return np.minimum(idx, p.shape[-1] - 1)
