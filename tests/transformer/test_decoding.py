"""Decoding: KV cache == full recomputation (tokens and float64 logits), beam search
with width 1 == greedy, beam scores, sampling (top_k=1 == greedy), eval/no-grad
handling, and attention capture."""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt
import transformer as T
from transformer.decoding import length_penalty_factor

BOS, EOS, PAD = 1, 2, 0
V = 13


def _cfg(**kw):
    base = dict(d_model=16, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                dim_feedforward=32, dropout=0.0, src_vocab_size=11, tgt_vocab_size=V,
                max_len=32, pad_id=PAD)
    base.update(kw)
    return T.TransformerConfig(**base)


def _seq2seq(seed=0, eos_bias=0.0, **kw):
    """A random float64 model; ``eos_bias`` raises the EOS logit. The seeds and biases
    used below were picked so that rows finish at different steps (some at once, some
    never), which exercises the EOS handling."""
    mt.manual_seed(seed)
    model = T.Seq2SeqTransformer(_cfg(**kw)).double()
    model.generator.bias.data[EOS] += eos_bias
    return model


def _batch(seed=0, B=4, S=6):
    rng = np.random.default_rng(seed)
    src = rng.integers(3, 11, (B, S))
    src[1, 4:] = PAD
    src[B - 1, 3:] = PAD
    return src, T.padding_mask(src, PAD)


def _teacher_forced_logprob(model, src, mask, hyp):
    """Sum of log p(token) of hyp (BOS + tokens, trailing PAD ignored) under the model."""
    ids = [t for t in hyp[1:]]
    while ids and ids[-1] == PAD:
        ids.pop()
    with mt.no_grad():
        logits = model(src[None], np.array([[BOS] + ids[:-1]]), src_pad_mask=mask[None]).data[0]
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return logp[np.arange(len(ids)), ids].sum(), len(ids)


# ----------------------------------------------------------------------------- greedy + cache

@pytest.mark.parametrize("norm_first", [False, True])
def test_greedy_cache_equals_full_recomputation(norm_first):
    model = _seq2seq(seed=3, norm_first=norm_first)
    src, mask = _batch(3)
    tok_c, log_c = T.greedy_decode(model, src, 12, BOS, EOS, mask, use_cache=True, return_logits=True)
    tok_f, log_f = T.greedy_decode(model, src, 12, BOS, EOS, mask, use_cache=False, return_logits=True)
    np.testing.assert_array_equal(tok_c, tok_f)
    np.testing.assert_allclose(log_c, log_f, rtol=1e-10, atol=1e-12)
    assert tok_c.dtype == np.int64 and np.all(tok_c[:, 0] == BOS)
    # after EOS only PAD; decoding stopped once every row had finished (or at max_len)
    for row in tok_c:
        hits = np.flatnonzero(row == EOS)
        if hits.size:
            assert np.all(row[hits[0] + 1:] == PAD)
    finished_all = all((row == EOS).any() for row in tok_c)
    assert tok_c.shape[1] <= 13 and (not finished_all or tok_c.shape[1] < 13 or
                                     (tok_c[:, -1] == EOS).any())


def test_greedy_stops_early_and_finished_rows_pad():
    model = _seq2seq(eos_bias=4.0)
    src, mask = _batch()
    tokens = T.greedy_decode(model, src, 20, BOS, EOS, mask)
    assert tokens.shape[1] < 21  # everyone produced EOS well before max_len
    assert all((row == EOS).any() for row in tokens)


def test_decoding_restores_mode_and_builds_no_graph():
    model = _seq2seq(dropout=0.3)
    model.train()
    src, mask = _batch()
    a = T.greedy_decode(model, src, 8, BOS, EOS, mask)
    assert model.training and model.transformer.decoder.layers[0].dropout1.training
    ref = _seq2seq(dropout=0.0)
    ref.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(a, T.greedy_decode(ref, src, 8, BOS, EOS, mask))  # dropout off
    assert all(p.grad is None for p in model.parameters())


# ----------------------------------------------------------------------------- beam search

@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("alpha,style", [(1.0, "gnmt"), (0.0, "gnmt"), (0.6, "simple")])
def test_beam_width_one_equals_greedy(use_cache, alpha, style):
    model = _seq2seq(seed=3)
    src, mask = _batch(3)
    greedy = T.greedy_decode(model, src, 10, BOS, EOS, mask, use_cache=use_cache)
    beam, scores = T.beam_search(model, src, 1, 10, BOS, EOS, mask, length_penalty=alpha,
                                 penalty_style=style, use_cache=use_cache)
    np.testing.assert_array_equal(beam, greedy)
    assert scores.shape == (4,)


@pytest.mark.parametrize("norm_first", [False, True])
def test_beam_cache_equals_no_cache_and_scores_are_logprobs(norm_first):
    model = _seq2seq(seed=2, eos_bias=1.0, norm_first=norm_first)
    src, mask = _batch(2)
    tok_c, sc_c = T.beam_search(model, src, 3, 9, BOS, EOS, mask, length_penalty=0.7)
    tok_f, sc_f = T.beam_search(model, src, 3, 9, BOS, EOS, mask, length_penalty=0.7,
                                use_cache=False)
    np.testing.assert_array_equal(tok_c, tok_f)
    np.testing.assert_allclose(sc_c, sc_f, rtol=1e-10, atol=1e-12)
    for b in range(len(src)):
        logp, n = _teacher_forced_logprob(model, src[b], mask[b], tok_c[b])
        assert sc_c[b] == pytest.approx(logp / length_penalty_factor(n, 0.7), rel=1e-9, abs=1e-10)


def test_wider_beam_finds_a_sequence_at_least_as_likely_here():
    # Not a theorem for beam search in general, but with alpha = 0 and K large enough to
    # cover the greedy path it holds; a smoke test that the search explores.
    model = _seq2seq(seed=2, eos_bias=1.0)
    src, mask = _batch(2)
    _, s1 = T.beam_search(model, src, 1, 6, BOS, EOS, mask, length_penalty=0.0)
    _, s4 = T.beam_search(model, src, 4, 6, BOS, EOS, mask, length_penalty=0.0)
    assert np.all(s4 >= s1 - 1e-12)


def test_length_penalty_formulas():
    assert length_penalty_factor(7, 1.0) == pytest.approx(2.0)
    assert length_penalty_factor(7, 0.0) == 1.0
    assert length_penalty_factor(4, 0.5, "simple") == pytest.approx(2.0)
    with pytest.raises(ValueError):
        length_penalty_factor(3, 1.0, "other")


# ----------------------------------------------------------------------------- LM sampling

def _lm(seed=0, **kw):
    mt.manual_seed(seed)
    return T.TransformerLM(_cfg(**kw)).double()


def _lm_greedy_full(lm, prompt, n):
    tokens = prompt.copy()
    with mt.no_grad():
        for _ in range(n):
            nxt = lm(tokens).data[:, -1].argmax(-1)
            tokens = np.concatenate([tokens, nxt[:, None]], axis=1)
    return tokens


@pytest.mark.parametrize("norm_first", [False, True])
def test_lm_cache_logits_equal_full(norm_first):
    lm = _lm(norm_first=norm_first).eval()
    rng = np.random.default_rng(4)
    x = rng.integers(1, V, (3, 9))
    with mt.no_grad():
        full = lm(x).data
        cache = lm.init_cache()
        parts = [lm(x[:, :4], cache=cache).data]            # a prompt, then one at a time
        parts += [lm(x[:, t:t + 1], cache=cache).data for t in range(4, 9)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), full, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("use_cache", [True, False])
def test_sample_top_k_one_equals_greedy(use_cache):
    lm = _lm(1, tie_embeddings=True)
    prompt = np.random.default_rng(5).integers(1, V, (2, 3))
    ref = _lm_greedy_full(lm.eval(), prompt, 8)
    out = T.sample(lm, prompt, 8, temperature=0.7, top_k=1, use_cache=use_cache, seed=0)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(T.sample(lm, prompt, 8, temperature=0.0), ref)


def test_sample_cache_matches_no_cache_and_is_seeded():
    lm = _lm(2)
    prompt = np.random.default_rng(6).integers(1, V, (3, 2))
    a = T.sample(lm, prompt, 10, temperature=1.3, top_k=5, seed=7, use_cache=True)
    b = T.sample(lm, prompt, 10, temperature=1.3, top_k=5, seed=7, use_cache=False)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 12) and np.array_equal(a[:, :2], prompt)
    c = T.sample(lm, prompt, 10, temperature=1.3, top_k=5, seed=8)
    assert not np.array_equal(a, c)


def test_sample_top_k_restricts_support():
    lm = _lm(3)
    prompt = np.ones((64, 1), np.int64)
    out = T.sample(lm, prompt, 1, temperature=5.0, top_k=2, seed=0)
    with mt.no_grad():
        logits = lm.eval()(prompt[:1]).data[0, -1]
    allowed = set(np.argsort(logits)[-2:].tolist())
    assert set(out[:, 1].tolist()) <= allowed


def test_sample_errors_and_eos():
    lm = _lm(4)
    with pytest.raises(ValueError, match="max_len"):
        T.sample(lm, np.ones((1, 30), np.int64), 5)
    long = T.sample(lm, np.ones((1, 30), np.int64), 5, use_cache=False, seed=0)  # crops context
    assert long.shape == (1, 35)
    prompt = np.ones((2, 2), np.int64)
    first = int(_lm_greedy_full(lm.eval(), prompt, 1)[0, -1])
    out = T.sample(lm, prompt, 6, top_k=1, eos_id=first)
    assert out.shape == (2, 3)  # the first greedy token is declared EOS: stop at once


# ----------------------------------------------------------------------------- capture

def test_capture_attention_all_layers_and_heads():
    model = _seq2seq(seed=5)
    src, mask = _batch(5, B=2, S=5)
    tgt = np.array([[BOS, 4, 5], [BOS, 6, 7]])
    weights = T.capture_attention(model, src, tgt, src_pad_mask=mask)
    names = {f"transformer.encoder.layers.{i}.self_attn" for i in range(2)} | \
        {f"transformer.decoder.layers.{i}.{m}" for i in range(2) for m in ("self_attn", "multihead_attn")}
    assert set(weights) == names
    enc = weights["transformer.encoder.layers.0.self_attn"]
    cross = weights["transformer.decoder.layers.1.multihead_attn"]
    dec = weights["transformer.decoder.layers.0.self_attn"]
    assert enc.shape == (2, 4, 5, 5) and cross.shape == (2, 4, 3, 5) and dec.shape == (2, 4, 3, 3)
    np.testing.assert_allclose(enc.sum(-1), 1.0, rtol=1e-12)
    assert np.all(enc[1][..., mask[1]] == 0) and np.all(cross[1][..., mask[1]] == 0)
    assert np.all(np.triu(dec, 1) == 0)  # causal
    for _, m in model.named_modules():  # nothing left behind on the modules
        if isinstance(m, T.MultiheadAttention):
            assert "_capture_hook" not in m.__dict__
    # the capture matches what the module itself returns with need_weights=True
    layer = model.transformer.encoder.layers[0]
    with mt.no_grad():
        x = model.src_pos(model.src_embed(src) * np.sqrt(16))
        _, w = layer.self_attn(x, x, x, key_padding_mask=mask, average_attn_weights=False)
    np.testing.assert_allclose(enc, w.data, rtol=1e-12, atol=1e-14)


def test_recording_attention_during_cached_decoding():
    model = _seq2seq(seed=6)
    src, mask = _batch(6, B=2, S=5)
    with T.recording_attention(model) as rec:
        tokens = T.greedy_decode(model, src, 4, BOS, EOS, mask)
    steps = rec["transformer.decoder.layers.0.self_attn"]
    assert len(steps) == tokens.shape[1] - 1
    assert [s.shape for s in steps] == [(2, 4, 1, t + 1) for t in range(len(steps))]


def test_decoding_holds_blas_at_one_thread_only_inside_its_own_call(monkeypatch):
    """greedy_decode opens one BLAS block for the whole call (numba backend) and gives the
    library its count back; the public inference_mode, which may wrap the user's own
    code, leaves the BLAS library as it is."""
    pytest.importorskip("threadpoolctl")
    from minitensor import kernels
    if kernels.backend_name() != "numba":
        pytest.skip("the BLAS block is the numba backend's")
    from minitensor.kernels.numba_cpu import _threads
    controls = _threads._blas_controls()
    if not controls:
        pytest.skip("no BLAS library besides NumPy's is loaded")
    get, set_ = controls[0]
    own = get()
    set_(2)
    try:
        model = _seq2seq()
        src, mask = _batch()
        seen = []
        backend = kernels.get()
        linear = backend.linear

        def spy(*args):                                 # every Linear product of the call
            seen.append(get())
            return linear(*args)
        monkeypatch.setattr(backend, "linear", spy)
        T.greedy_decode(model, src, 5, BOS, EOS, src_pad_mask=mask)
        monkeypatch.undo()
        assert seen and set(seen) == {1}                # inside the call: one thread
        assert get() == 2                               # after it: the count it had
        with T.inference_mode(model):
            assert get() == 2
    finally:
        set_(own)
