"""Decoding a batch of inputs of different lengths gives what decoding each input alone gives.

The bug this guards against (issue 12): a padded source row reached `beam_search` without
its padding mask, so the encoder and the cross-attention read the PAD positions and beam
search on a batch answered differently (and wrongly) from one input at a time.
"""
from __future__ import annotations

import numpy as np
import pytest

import minitensor as mt
import transformer as T
from transformer.config import TrainConfig
from transformer.problems import make_problem

BOS, EOS, PAD = 1, 2, 0
V = 13
LENGTHS = [6, 2, 4, 1]


def _model(seed=0):
    mt.manual_seed(seed)
    cfg = T.TransformerConfig(d_model=16, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                              dim_feedforward=32, dropout=0.0, src_vocab_size=V, tgt_vocab_size=V,
                              max_len=32, pad_id=PAD)
    model = T.Seq2SeqTransformer(cfg).double()
    model.generator.bias.data[EOS] += 1.5  # some hypotheses end early, some run to max_len
    return model


def _rows(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(3, V, n) for n in LENGTHS]


def _padded(rows):
    src = np.full((len(rows), max(len(r) for r in rows)), PAD, dtype=np.int64)
    for i, r in enumerate(rows):
        src[i, :len(r)] = r
    return src


def _strip(row):
    """Generated ids without the trailing PAD (BOS kept)."""
    row = list(row)
    while row and row[-1] == PAD:
        row.pop()
    return row


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("beam", [1, 2, 3, 4])
def test_beam_on_a_batch_equals_one_input_at_a_time(beam, use_cache):
    model, rows = _model(), _rows()
    src = _padded(rows)
    tokens, scores = T.beam_search(model, src, beam, 10, BOS, EOS, src_pad_mask=src == PAD,
                                   use_cache=use_cache)
    for b, r in enumerate(rows):
        one, one_score = T.beam_search(model, r[None], beam, 10, BOS, EOS, use_cache=use_cache)
        assert _strip(tokens[b]) == _strip(one[0]), f"row {b} (length {len(r)}), beam {beam}"
        np.testing.assert_allclose(scores[b], one_score[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("beam", [1, 3])
def test_padded_batch_without_a_mask_is_masked_by_the_models_pad_id(beam):
    # A caller who pads a batch and forgets the mask gets the right answer: the mask
    # defaults to ``src == model.cfg.pad_id``.
    model, rows = _model(1), _rows(1)
    src = _padded(rows)
    masked, s1 = T.beam_search(model, src, beam, 10, BOS, EOS, src_pad_mask=src == PAD)
    unmasked, s2 = T.beam_search(model, src, beam, 10, BOS, EOS)
    np.testing.assert_array_equal(masked, unmasked)
    np.testing.assert_allclose(s1, s2, rtol=1e-12)
    g1 = T.greedy_decode(model, src, 10, BOS, EOS, src_pad_mask=src == PAD)
    g2 = T.greedy_decode(model, src, 10, BOS, EOS)
    np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_on_a_batch_equals_one_input_at_a_time_and_beam_one(use_cache):
    model, rows = _model(2), _rows(2)
    src = _padded(rows)
    greedy = T.greedy_decode(model, src, 10, BOS, EOS, src_pad_mask=src == PAD, use_cache=use_cache)
    beam1, _ = T.beam_search(model, src, 1, 10, BOS, EOS, src_pad_mask=src == PAD, use_cache=use_cache)
    for b, r in enumerate(rows):
        one = T.greedy_decode(model, r[None], 10, BOS, EOS, use_cache=use_cache)
        assert _strip(greedy[b]) == _strip(one[0])
        assert _strip(beam1[b]) == _strip(greedy[b])


def _reverse_problem_and_model(seed=0):
    cfg = TrainConfig(task="reverse", task_options={"max_len": 8}, n_train=50, n_val=5, n_test=5, seed=seed)
    problem = make_problem(cfg)
    problem.load_data()
    mt.manual_seed(seed)
    model_cfg = problem.model_config({"d_model": 16, "nhead": 2, "num_encoder_layers": 1,
                                      "num_decoder_layers": 1, "dim_feedforward": 32})
    model = problem.build_model(model_cfg).double()
    return problem, model


@pytest.mark.parametrize("beam", [1, 2, 3, 4])
def test_problem_decode_batch_equals_one_at_a_time(beam):
    problem, model = _reverse_problem_and_model()
    texts = ["ab", "abcdefgh", "h", "dcba", "gfedcbaa"]
    batch = problem.decode(model, texts, beam=beam)
    alone = [problem.decode(model, [t], beam=beam)[0] for t in texts]
    assert batch == alone
    if beam == 1:
        assert batch == problem.decode(model, texts)  # beam 1 is greedy


def _problem_and_model(task, options, seed=0, **extra):
    cfg = TrainConfig(task=task, task_options=options, n_train=40, n_val=5, n_test=5, seed=seed, **extra)
    problem = make_problem(cfg)
    problem.load_data()
    mt.manual_seed(seed)
    model_cfg = problem.model_config({"d_model": 16, "nhead": 2, "num_encoder_layers": 1,
                                      "num_decoder_layers": 1, "dim_feedforward": 32})
    return problem, problem.build_model(model_cfg).double()


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_classify_batch_equals_one_at_a_time(pooling):
    problem, model = _problem_and_model("brackets", {}, pooling=pooling)
    texts = ["()", "([]{})(())", "(", "{[()]}"]
    batch = problem.predict(model, texts)
    for text, (label, prob) in zip(texts, batch):
        alone_label, alone_prob = problem.predict(model, [text])[0]
        assert label == alone_label
        assert prob == pytest.approx(alone_prob, rel=1e-9)


def test_answer_batch_equals_one_at_a_time():
    problem, model = _problem_and_model("kv_span", {})
    contexts = ["a=17;qx=5;b=203", "k=1", "zz=90;y=4"]
    queries = ["qx", "k", "y"]
    batch = problem.answer(model, contexts, queries)
    assert batch == [problem.answer(model, [c], [q])[0] for c, q in zip(contexts, queries)]


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("beam", [1, 2, 3])
def test_one_length_limit_per_row_equals_each_row_alone_with_its_limit(beam, use_cache):
    # Problem.decode sends one padded batch with a limit per row (not one group per
    # limit): each row must stop at its own limit, as it does alone.
    model, rows = _model(3), _rows(3)
    model.generator.bias.data[EOS] -= 3.0  # most hypotheses run to their limit
    src = _padded(rows)
    limits = np.array([3, 7, 0, 5])
    if beam == 1:
        batch = T.greedy_decode(model, src, limits, BOS, EOS, use_cache=use_cache)
    else:
        batch, scores = T.beam_search(model, src, beam, limits, BOS, EOS, use_cache=use_cache)
    for b, r in enumerate(rows):
        if beam == 1:
            one = T.greedy_decode(model, r[None], int(limits[b]), BOS, EOS, use_cache=use_cache)
        else:
            one, one_score = T.beam_search(model, r[None], beam, int(limits[b]), BOS, EOS,
                                           use_cache=use_cache)
            np.testing.assert_allclose(scores[b], one_score[0], rtol=1e-9, atol=1e-12)
        assert _strip(batch[b]) == _strip(one[0]), f"row {b}, limit {limits[b]}"
        assert len(_strip(batch[b])) <= 1 + limits[b]
    assert len(_strip(batch[1])) == 1 + 7  # the long limit was used


def test_row_limits_are_checked():
    model, rows = _model(), _rows()
    src = _padded(rows)
    with pytest.raises(ValueError, match=r"greedy_decode: max_len must be an int or one int per source row \(4,\)"):
        T.greedy_decode(model, src, np.array([3, 4]), BOS, EOS)
    with pytest.raises(ValueError, match="beam_search: max_len must be >= 0"):
        T.beam_search(model, src, 2, np.array([3, -1, 2, 2]), BOS, EOS)
