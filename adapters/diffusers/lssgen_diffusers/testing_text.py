"""Tiny random text encoders and their tokenizers, shared by several families' tiny pipelines.

Built in code from in-memory vocabularies and configs, as in :mod:`lssgen_diffusers.testing`:
nothing is downloaded, weights are random, and building does not disturb torch's global random
state.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

__all__ = ["tiny_llama_encoder", "tiny_llama_tokenizer"]

# Llama 3's special tokens that a text-to-image prompt meets (begin and end of text).
_LLAMA_SPECIALS = ("<|begin_of_text|>", "<|end_of_text|>")


def tiny_llama_tokenizer(model_max_length: int = 131072) -> PreTrainedTokenizerFast:
    """A byte-level Llama-3-style tokenizer built in memory (258 tokens).

    The 256 byte-level symbols, then ``<|begin_of_text|>`` (256) and ``<|end_of_text|>`` (257,
    also the eos token). Like Llama 3's tokenizer it prefixes every sequence with
    ``<|begin_of_text|>`` (so the empty string gives one token) and has no pad token of its own
    (HiDream's pipeline pads with the eos token); any text tokenizes (one token per byte).
    """
    vocab = {symbol: i for i, symbol in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    for token in _LLAMA_SPECIALS:
        vocab[token] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(_LLAMA_SPECIALS))
    bos = _LLAMA_SPECIALS[0]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, vocab[bos])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=_LLAMA_SPECIALS[1],
        padding_side="right",
        model_max_length=model_max_length,
    )


def tiny_llama_encoder(
    tokenizer: PreTrainedTokenizerFast, seed: int = 0, num_layers: int = 2
) -> LlamaForCausalLM:
    """A random ``LlamaForCausalLM`` over ``tokenizer`` (32 wide, ``num_layers`` layers, grouped
    query attention), in ``eval()`` mode, its weights drawn from ``seed``.

    A causal LM, not the bare model: HiDream loads Llama 3.1 Instruct as ``LlamaForCausalLM`` and
    reads the hidden states of every layer (``output_hidden_states=True``).
    """
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=32,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
        use_cache=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config).eval()
