"""Tiny text encoders and tokenizers shared by several families' tiny pipelines, built offline.

* The Qwen tokenizer (Qwen2.5-VL's and Qwen3's are the same byte-level BPE with the same chat
  markers): :func:`tiny_qwen3_tokenizer`.
* Qwen3 (Z-Image's text encoder): :func:`tiny_qwen3_encoder`, a two-layer ``Qwen3Model`` (the
  pipelines read ``hidden_states[-2]``, so it needs two layers); FLUX.2 [klein]'s:
  :func:`tiny_qwen3_causal_lm`, a ``Qwen3ForCausalLM``.
* Mistral Small 3 (FLUX.2 [dev]'s): :func:`tiny_mistral3_tokenizer` and
  :func:`tiny_mistral3_encoder`, a ``Mistral3ForConditionalGeneration``.
* Qwen2.5-VL (Qwen-Image's text encoder): :func:`tiny_qwen2_5_vl_encoder`, a two-layer
  ``Qwen2_5_VLForConditionalGeneration`` with a one-block vision tower (text-to-image pipelines
  feed it text only).
* Qwen3-VL (Krea 2's text encoder): :func:`tiny_qwen3_vl_encoder`, a ``Qwen3VLModel`` of the
  same size.
* Llama 3 (HiDream's fourth text encoder): :func:`tiny_llama_tokenizer` and
  :func:`tiny_llama_encoder`, a ``LlamaForCausalLM``.

Deterministic given ``seed``, built without touching torch's global random state, in ``eval()``
mode, float32, on the CPU. Nothing here imports :mod:`lssgen_diffusers.testing`, which imports
the family builders that use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    LlamaForCausalLM,
    Mistral3ForConditionalGeneration,
    MistralConfig,
    PixtralVisionConfig,
    PreTrainedTokenizerFast,
    Qwen2_5_VLForConditionalGeneration,
    Qwen3ForCausalLM,
    Qwen3Model,
    Qwen3VLModel,
)

from lssgen_diffusers.testing_build import configured, tiny_module, vocabulary
from lssgen_diffusers.tiny_configs import tiny_config

__all__ = [
    "QWEN3_CHAT_TEMPLATE",
    "byte_alphabet",
    "byte_level_tokenizer",
    "numbered",
    "tiny_llama_encoder",
    "tiny_llama_tokenizer",
    "tiny_mistral3_encoder",
    "tiny_mistral3_tokenizer",
    "tiny_qwen2_5_vl_encoder",
    "tiny_qwen3_causal_lm",
    "tiny_qwen3_encoder",
    "tiny_qwen3_tokenizer",
    "tiny_qwen3_vl_encoder",
    "tiny_tokenizer",
]

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


def byte_alphabet() -> list[str]:
    """The 256 byte-level symbols in a fixed order."""
    return sorted(pre_tokenizers.ByteLevel.alphabet())


def numbered(tokens: list[str]) -> dict[str, int]:
    """A vocabulary giving each token its position as id."""
    return {token: i for i, token in enumerate(tokens)}


def byte_level_tokenizer(
    vocab: dict[str, int],
    specials: list[str],
    prefix: Sequence[str] = (),
    *,
    model_max_length: int,
    unk_token: str | None = None,
    **special_tokens: str,
) -> PreTrainedTokenizerFast:
    """A merge-free byte-level BPE tokenizer over ``vocab`` (e.g. :func:`numbered` over
    :func:`byte_alphabet` and the special tokens) that puts the ``prefix`` tokens in front of
    every sequence; ``special_tokens`` (``pad_token``, ``eos_token``, ..., ``padding_side``) go
    to ``PreTrainedTokenizerFast``."""
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=unk_token))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(specials)
    if prefix:
        marks = " ".join(prefix)
        backend.post_processor = processors.TemplateProcessing(
            single=f"{marks} $A",
            pair=f"{marks} $A $B",
            special_tokens=[(token, vocab[token]) for token in prefix],
        )
    if unk_token is not None:
        special_tokens["unk_token"] = unk_token
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=model_max_length, **special_tokens
    )


def tiny_tokenizer(
    name: str, model_max_length: int, chat_template: str | None = None
) -> PreTrainedTokenizerFast:
    """The byte-level tokenizer ``name`` of ``tokenizers.json`` (its special tokens before or
    after :func:`byte_alphabet`, its prefix and special-token roles), with ``chat_template``."""
    spec = tiny_config("tokenizers", name)
    specials: list[str] = spec["specials"]
    ordered = (
        [*specials, *byte_alphabet()] if spec["specials_first"] else [*byte_alphabet(), *specials]
    )
    tokenizer = byte_level_tokenizer(
        numbered(ordered),
        specials,
        spec.get("prefix", ()),
        model_max_length=model_max_length,
        **spec["roles"],
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def tiny_qwen3_tokenizer(model_max_length: int = 32768) -> PreTrainedTokenizerFast:
    """A byte-level Qwen2/3-style tokenizer built in memory (261 tokens).

    The 256 byte-level symbols, then ``<|endoftext|>`` (256, the pad token, as Qwen's),
    ``<|im_start|>``, ``<|im_end|>`` (the end-of-turn token), ``<think>`` and ``</think>``; no
    BOS (Qwen adds none), padding on the right, and :data:`QWEN3_CHAT_TEMPLATE`.
    """
    return tiny_tokenizer("qwen3", model_max_length, QWEN3_CHAT_TEMPLATE)


def _qwen_text_config(
    tokenizer: PreTrainedTokenizerFast, hidden_size: int, num_layers: int = 2
) -> dict[str, Any]:
    """A Qwen text decoder of ``num_layers`` layers, ``hidden_size`` wide (2 heads, one
    key/value head), with the multimodal rotary embedding of the VL models (its sections sum to
    half a head)."""
    head_dim = hidden_size // 2
    half = head_dim // 2  # rotary pairs, split over (time, height, width) as Qwen's 16/24/24
    spatial = half * 3 // 8
    config = tiny_config(
        "text_encoders",
        "qwen_vl_text",
        hidden_size=hidden_size,
        intermediate_size=hidden_size,
        num_hidden_layers=num_layers,
        head_dim=head_dim,
        **vocabulary(tokenizer, "pad", "eos"),
    )
    config["rope_parameters"]["mrope_section"] = [half - 2 * spatial, spatial, spatial]
    return config


def tiny_qwen3_encoder(
    tokenizer: PreTrainedTokenizerFast, seed: int = 0, hidden_size: int = 32
) -> Qwen3Model:
    """A random two-layer ``Qwen3Model`` over ``tokenizer``'s vocabulary, ``hidden_size`` wide
    (2 heads x ``hidden_size // 2``, one key/value head), its weights seeded by ``seed``."""
    return tiny_module(
        Qwen3Model,
        "text_encoders",
        "qwen3",
        seed,
        hidden_size=hidden_size,
        intermediate_size=hidden_size,
        head_dim=hidden_size // 2,
        **vocabulary(tokenizer, "pad", "eos"),
    )


def _flux2_text_fields(
    tokenizer: PreTrainedTokenizerFast, hidden_size: int, num_hidden_layers: int, *special: str
) -> dict[str, Any]:
    """The layout FLUX.2's tiny text encoders share: ``hidden_size`` wide with an MLP twice as
    wide, ``num_hidden_layers`` deep, over ``tokenizer`` (its ``special`` token ids)."""
    return {
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_hidden_layers": num_hidden_layers,
        **vocabulary(tokenizer, *special),
    }


def tiny_qwen3_causal_lm(
    tokenizer: PreTrainedTokenizerFast,
    seed: int = 0,
    *,
    num_hidden_layers: int = 2,
    hidden_size: int = 16,
) -> Qwen3ForCausalLM:
    """FLUX.2 [klein]'s text encoder: a random ``Qwen3ForCausalLM`` over ``tokenizer``,
    ``hidden_size`` wide (2 heads of 8, one key/value head), ``num_hidden_layers`` layers
    (pipelines that read given hidden-state layers need at least the deepest of them)."""
    return tiny_module(
        Qwen3ForCausalLM,
        "text_encoders",
        "qwen3_causal_lm",
        seed,
        **_flux2_text_fields(tokenizer, hidden_size, num_hidden_layers, "pad", "eos"),
    )


def tiny_qwen2_5_vl_encoder(
    tokenizer: PreTrainedTokenizerFast, seed: int = 0, hidden_size: int = 32
) -> Qwen2_5_VLForConditionalGeneration:
    """A random ``Qwen2_5_VLForConditionalGeneration`` over ``tokenizer``'s vocabulary: the text
    decoder of :func:`_qwen_text_config` and a one-block vision tower (unused by text prompts),
    its weights seeded by ``seed``."""
    return tiny_module(
        Qwen2_5_VLForConditionalGeneration,
        "text_encoders",
        "qwen2_5_vl",
        seed,
        text_config=_qwen_text_config(tokenizer, hidden_size),
        vision_config=tiny_config(
            "text_encoders", "qwen2_5_vl_vision", out_hidden_size=hidden_size
        ),
    )


def tiny_qwen3_vl_encoder(
    tokenizer: PreTrainedTokenizerFast, seed: int = 0, hidden_size: int = 32, num_layers: int = 2
) -> Qwen3VLModel:
    """A random ``Qwen3VLModel`` over ``tokenizer``'s vocabulary: the text decoder of
    :func:`_qwen_text_config` (interleaved multimodal rotary sections, as Qwen3-VL's) with
    ``num_layers`` layers and a one-block vision tower, its weights seeded by ``seed``."""
    text = _qwen_text_config(tokenizer, hidden_size, num_layers)
    text["rope_parameters"]["mrope_interleaved"] = True
    return tiny_module(
        Qwen3VLModel,
        "text_encoders",
        "qwen3_vl",
        seed,
        text_config=text,
        vision_config=tiny_config("text_encoders", "qwen3_vl_vision", out_hidden_size=hidden_size),
    )


def tiny_llama_tokenizer(model_max_length: int = 131072) -> PreTrainedTokenizerFast:
    """A byte-level Llama-3-style tokenizer built in memory (258 tokens).

    The 256 byte-level symbols, then ``<|begin_of_text|>`` (256) and ``<|end_of_text|>`` (257,
    also the eos token). Like Llama 3's tokenizer it prefixes every sequence with
    ``<|begin_of_text|>`` (so the empty string gives one token) and has no pad token of its own
    (HiDream's pipeline pads with the eos token); any text tokenizes (one token per byte).
    """
    return tiny_tokenizer("llama", model_max_length)


def tiny_llama_encoder(
    tokenizer: PreTrainedTokenizerFast, seed: int = 0, num_layers: int = 2
) -> LlamaForCausalLM:
    """A random ``LlamaForCausalLM`` over ``tokenizer`` (32 wide, ``num_layers`` layers, grouped
    query attention), its weights drawn from ``seed``.

    A causal LM, not the bare model: HiDream loads Llama 3.1 Instruct as ``LlamaForCausalLM`` and
    reads the hidden states of every layer (``output_hidden_states=True``).
    """
    return tiny_module(
        LlamaForCausalLM,
        "text_encoders",
        "llama",
        seed,
        num_hidden_layers=num_layers,
        pad_token_id=tokenizer.eos_token_id,
        **vocabulary(tokenizer, "bos", "eos"),
    )


#: Mistral's control tokens (Mistral Small 3's tekken vocabulary puts them first as well).
MISTRAL_SPECIAL_TOKENS = tuple(tiny_config("tokenizers", "mistral3")["specials"])

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
    return tiny_tokenizer("mistral3", model_max_length, MISTRAL3_CHAT_TEMPLATE)


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
    fields = _flux2_text_fields(tokenizer, hidden_size, num_hidden_layers, "pad", "bos", "eos")
    text = tiny_config("text_encoders", "mistral_text", **fields)
    return tiny_module(
        Mistral3ForConditionalGeneration,
        "text_encoders",
        "mistral3",
        seed,
        text_config=MistralConfig(**text),
        vision_config=configured(PixtralVisionConfig, "text_encoders", "pixtral_vision"),
        image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"),
    )
