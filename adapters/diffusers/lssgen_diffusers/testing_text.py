"""Tiny text encoders and tokenizers shared by several families' tiny pipelines, built offline.

Like :mod:`lssgen_diffusers.testing`: random weights from configs, vocabularies built in code,
nothing downloaded, deterministic given ``seed`` without touching torch's global random state.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    Mistral3Config,
    Mistral3ForConditionalGeneration,
    MistralConfig,
    PixtralVisionConfig,
    PreTrainedTokenizerFast,
    Qwen2TokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
)

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


#: Mistral's control tokens (Mistral Small 3's tekken vocabulary puts them first as well).
MISTRAL_SPECIAL_TOKENS = (
    "<unk>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[IMG]",
    "<pad>",
)

#: Mistral Small 3's chat template cut to text: a system prompt, then user / assistant turns, each
#: message's content a string or a list of ``{"type": "text", "text": ...}`` parts.
MISTRAL3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['content'] is string %}{% set text = message['content'] %}"
    "{% else %}{% set text = message['content'] | selectattr('type', 'equalto', 'text') "
    "| map(attribute='text') | join('') %}{% endif %}"
    "{% if message['role'] == 'system' %}{{ '[SYSTEM_PROMPT]' + text + '[/SYSTEM_PROMPT]' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST]' + text + '[/INST]' }}"
    "{% else %}{{ text + eos_token }}{% endif %}"
    "{% endfor %}"
)


def tiny_mistral3_tokenizer(model_max_length: int = 131072) -> PreTrainedTokenizerFast:
    """A byte-level Mistral-style tokenizer with no merges (265 tokens), built in memory.

    :data:`MISTRAL_SPECIAL_TOKENS` (ids 0-8; ``<pad>`` 8 pads on the left, as Mistral Small 3's
    processor), then the 256 byte-level symbols; the chat template is
    :data:`MISTRAL3_CHAT_TEMPLATE`. A plain tokenizer stands in for the stock ``AutoProcessor``
    (Pixtral's), which text-only prompts use only through ``apply_chat_template``.
    """
    vocab = {token: i for i, token in enumerate(MISTRAL_SPECIAL_TOKENS)}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(MISTRAL_SPECIAL_TOKENS))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="left",
        model_max_length=model_max_length,
    )
    tokenizer.chat_template = MISTRAL3_CHAT_TEMPLATE
    return tokenizer


def tiny_mistral3_encoder(
    tokenizer: PreTrainedTokenizerFast,
    seed: int = 0,
    *,
    num_hidden_layers: int = 2,
    hidden_size: int = 16,
) -> Mistral3ForConditionalGeneration:
    """A random ``Mistral3ForConditionalGeneration`` over ``tokenizer``: a Mistral text model
    ``hidden_size`` wide (2 heads of 8, one key/value head) of ``num_hidden_layers`` layers, and
    a one-layer Pixtral vision tower (16 wide, 16-px patches) that text-only prompts never run."""
    config = Mistral3Config(
        text_config=MistralConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            intermediate_size=2 * hidden_size,
            num_hidden_layers=num_hidden_layers,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=8,
            max_position_embeddings=131072,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            use_cache=False,
        ),
        vision_config=PixtralVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            head_dim=8,
            image_size=64,
            patch_size=16,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"),
        spatial_merge_size=2,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Mistral3ForConditionalGeneration(config).eval()
