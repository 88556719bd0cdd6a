"""Tiny text encoders and tokenizers shared by several families' tiny pipelines, built offline.

* Qwen3 (Z-Image's text encoder; FLUX.2 Klein's too): :func:`tiny_qwen3_tokenizer`, a byte-level
  tokenizer with Qwen's chat markers and a chat template, and :func:`tiny_qwen3_encoder`, a
  two-layer ``Qwen3Model`` (the pipelines read ``hidden_states[-2]``, so it needs two layers).

Deterministic given ``seed``, built without touching torch's global random state, in ``eval()``
mode, float32, on the CPU. Nothing here imports :mod:`lssgen_diffusers.testing`, which imports
the family builders that use it.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

__all__ = ["QWEN3_CHAT_TEMPLATE", "tiny_qwen3_encoder", "tiny_qwen3_tokenizer"]

#: Qwen3's chat template, cut to what text-to-image pipelines use (user turns, the generation
#: prompt, and the empty think block Qwen3 adds when ``enable_thinking=False``).
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)

_QWEN3_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")


def tiny_qwen3_tokenizer(model_max_length: int = 32768) -> PreTrainedTokenizerFast:
    """A byte-level Qwen2/3-style tokenizer built in memory (261 tokens).

    The 256 byte-level symbols, then ``<|endoftext|>`` (256, the pad token, as Qwen's),
    ``<|im_start|>``, ``<|im_end|>`` (the end-of-turn token), ``<think>`` and ``</think>``; no
    BOS (Qwen adds none), padding on the right, and :data:`QWEN3_CHAT_TEMPLATE`.
    """
    vocab = {symbol: i for i, symbol in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    for token in _QWEN3_SPECIALS:
        vocab[token] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(_QWEN3_SPECIALS))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        padding_side="right",
        model_max_length=model_max_length,
    )
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    return tokenizer


def tiny_qwen3_encoder(
    tokenizer: PreTrainedTokenizerFast, seed: int = 0, hidden_size: int = 32
) -> Qwen3Model:
    """A random two-layer ``Qwen3Model`` over ``tokenizer``'s vocabulary, ``hidden_size`` wide
    (2 heads x ``hidden_size // 2``, one key/value head), its weights seeded by ``seed``."""
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=hidden_size // 2,
        max_position_embeddings=8192,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        use_cache=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Qwen3Model(config).eval()
