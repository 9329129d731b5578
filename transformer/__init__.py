"""transformer: "Attention Is All You Need" on minitensor.

    import transformer
    mha = transformer.MultiheadAttention(512, 8, batch_first=True)  # torch.nn's API and keys
    model = transformer.Seq2SeqTransformer(transformer.TransformerConfig(...))
    tokens = transformer.greedy_decode(model, src, max_len=50, bos_id=1, eos_id=2)

The model: masks, positional, attention, layers, stacks (torch.nn-compatible
TransformerEncoder/Decoder/Transformer), task_models (the ready-made models), config,
decoding, capture. The data: ``data`` (vocabularies, tasks, batches; its public names
are re-exported here). Training: config, problems/, schedule, trainer, runs,
checkpoint, train (``train()``), cli (``python -m transformer``).
"""
from .attention import KVCache, MultiheadAttention
from .capture import capture_attention, recording_attention
from .config import TransformerConfig
from .data import (
    BOS_ID, DATE_FORMATS, EOS_ID, PAD_ID, SPAN_SEPARATOR, SPECIAL_TOKENS, TASKS, UNK_ID, AddTask,
    BatchLoader, BatchStream, BracketsTask, ClassifyBatch, CopyTask, DatesTask, EncodedSpan, KvSpanTask, LMBatch,
    LMCorpus, ReverseTask, Seq2SeqBatch, SortTask, SpanBatch, SpanExample, Splits, Task, Vocab,
    bucket_indices, classify_loader, collate_classify, collate_seq2seq, collate_span, default_text,
    encode_span, is_balanced, lm_loader, lm_windows, load_corpus, make_splits, make_task,
    pad_sequences, read_text_file, read_texts, sample_lm_batch, seq2seq_loader, span_loader,
    tokenize_words,
)
from .decoding import beam_search, greedy_decode, inference_mode, length_penalty_factor, sample
from .layers import TransformerDecoderLayer, TransformerEncoderLayer
from .masks import causal_mask, padding_mask, square_subsequent_mask
from .positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding, sinusoid_table
from .stacks import LayerCaches, Transformer, TransformerDecoder, TransformerEncoder
from .task_models import (MASKED_LOGIT, Seq2SeqTransformer, SpanHead, SpanQAModel, TransformerClassifier,
                          TransformerLM, best_span, make_model, span_loss)
