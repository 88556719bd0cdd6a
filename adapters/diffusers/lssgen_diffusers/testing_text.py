"""Tiny text encoders and tokenizers shared by several families' tiny pipelines, built offline.

Like :mod:`lssgen_diffusers.testing`: random weights from configs, vocabularies built in code,
nothing downloaded, deterministic given ``seed`` without touching torch's global random state.
"""

from __future__ import annotations

import torch
from tokenizers import pre_tokenizers
from transformers import Qwen2TokenizerFast, Qwen3Config, Qwen3ForCausalLM

#: Qwen's special tokens (chat turns, end of text, the thinking block of Qwen3's template).
QWEN_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")

#: Qwen3's chat template cut to what text-to-image pipelines use: user / assistant turns, the
#: generation prompt, and the empty thinking block ``enable_thinking=False`` adds (as Qwen3's).
QWEN3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}"
    "{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}{% endif %}"
)


def tiny_qwen3_tokenizer(model_max_length: int = 32768) -> Qwen2TokenizerFast:
    """A byte-level Qwen2/Qwen3 tokenizer with no merges (261 tokens), built in memory.

    The 256 byte-level symbols, then :data:`QWEN_SPECIAL_TOKENS` (``<|endoftext|>`` 256 is also
    the pad token, padding on the right as Qwen's); the chat template is
    :data:`QWEN3_CHAT_TEMPLATE`. Any text tokenizes (one token per byte).
    """
    vocab = {symbol: i for i, symbol in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    for token in QWEN_SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    tokenizer = Qwen2TokenizerFast(
        vocab=vocab,
        merges=[],
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=model_max_length,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])})
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    return tokenizer


def tiny_qwen3_encoder(
    tokenizer: Qwen2TokenizerFast,
    seed: int = 0,
    *,
    num_hidden_layers: int = 2,
    hidden_size: int = 16,
) -> Qwen3ForCausalLM:
    """A random ``Qwen3ForCausalLM`` over ``tokenizer``: ``hidden_size`` wide (2 heads of 8, one
    key/value head), ``num_hidden_layers`` layers (pipelines that read given hidden-state layers
    need at least the deepest of them), in ``eval()`` mode."""
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=32768,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
        use_cache=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Qwen3ForCausalLM(config).eval()
