"""A tiny random-weight Gemma 3 checkpoint, so every recipe can be tested end to end in seconds.

Same architecture family as the default model (``Gemma3ForCausalLM``: sliding and full
attention layers, tied embeddings), a few layers, a small hidden size, and a small BPE tokenizer
trained on edgebench's prompt text. Its outputs are meaningless; its shapes and code paths are
real.
"""

from __future__ import annotations

import json
from pathlib import Path

VOCAB = 512
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]  # ids 0-3, as in Gemma's vocabulary


def _tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from edgebench.harness.prompt import prompt_text

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([prompt_text()] * 4, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", SPECIALS.index("<bos>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(out)
    # transformers 5 writes its internal class name, which 4.x converters cannot import
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
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
        sliding_window=32, max_position_embeddings=1024, pad_token_id=0, eos_token_id=1,
        bos_token_id=2, tie_word_embeddings=True,
        layer_types=["sliding_attention"] * (layers - 1) + ["full_attention"],
    )
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(config).to(torch.float32)
    model.generation_config.do_sample = False
    model.save_pretrained(out)
    return out
