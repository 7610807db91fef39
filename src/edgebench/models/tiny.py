"""A tiny random-weight Gemma 3 checkpoint, so every recipe can be tested end to end in seconds.

Same architecture family as the default model (``Gemma3ForCausalLM``: sliding and full
attention layers, tied embeddings), a few layers, a small hidden size, and a small SentencePiece
BPE tokenizer trained on edgebench's prompt text. Its outputs are meaningless; its shapes and
code paths are real.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

VOCAB = 512
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]  # ids 0-3, as in Gemma's vocabulary


def _tokenizer(out: Path) -> None:
    """A SentencePiece BPE model (``tokenizer.model``, as Gemma ships) and the same tokenizer
    as ``tokenizer.json``: llama.cpp's converter reads the first (a freshly trained
    ``tokenizer.json`` alone has a pre-tokenizer it cannot identify), every other converter
    and runtime the second, and both split every text into the same tokens."""
    import sentencepiece as spm
    from tokenizers import processors
    from transformers import GemmaTokenizer
    from transformers.tokenization_utils_base import generate_merges

    from edgebench.harness.prompt import prompt_text

    model = io.BytesIO()
    lines = [line for line in prompt_text().splitlines() if line.strip()]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 4), model_writer=model, vocab_size=VOCAB,
        model_type="bpe", byte_fallback=True, hard_vocab_limit=False, minloglevel=2,
        # spaces kept as they are (no dummy prefix, no folding), like Gemma's own model
        add_dummy_prefix=False, remove_extra_whitespaces=False,
        normalization_rule_name="identity", num_threads=1,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3,  # SPECIALS, named as Gemma names them
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
    )
    (out / "tokenizer.model").write_bytes(model.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    fast = GemmaTokenizer(vocab=vocab, merges=generate_merges(vocab), mask_token=None)
    fast._tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", SPECIALS.index("<bos>"))])
    fast.save_pretrained(out)
    # transformers 5 writes its internal class name, which 4.x converters cannot import
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.update(tokenizer_class="PreTrainedTokenizerFast", add_bos_token=True)
    cfg.pop("mask_token", None)
    cfg_path.write_text(json.dumps(cfg, indent=2))


def make_tiny_gemma3(out: str | Path, seed: int = 0, hidden: int = 64) -> Path:
    """Write a tiny Gemma 3 checkpoint (config, safetensors, tokenizer) to ``out``.

    Six layers, like one period of Gemma 3's pattern (five sliding-window layers, then one
    full-attention layer): converters that assume the pattern (mlx-lm does) see a real one.
    """
    layers = 6
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _tokenizer(out)
    config = Gemma3TextConfig(
        vocab_size=VOCAB, hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
        # scores scaled by 1/sqrt(head_dim), as in Gemma 3 270M (256 = 256): llama.cpp assumes
        # it, and transformers' default (256) would make this model differ from its GGUF
        query_pre_attn_scalar=32,
        sliding_window=32, max_position_embeddings=1024, pad_token_id=0, eos_token_id=1,
        bos_token_id=2, tie_word_embeddings=True,
        layer_types=["sliding_attention"] * (layers - 1) + ["full_attention"],
    )
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(config).to(torch.float32)
    model.generation_config.do_sample = False
    model.save_pretrained(out)
    return out
