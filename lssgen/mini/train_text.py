"""lssgen-mini's text side: an offline-built tokenizer, frozen random CLIP encoders, a null T5.

Stage `lssgen mini text` builds everything here from a seed (no training) and saves it in the
Diffusers / Transformers layout that `StableDiffusion3Pipeline` loads:

* `tokenizer`, `tokenizer_2`: a `CLIPTokenizer` whose BPE merges build every word of the caption
  grammar into one token ("red</w>", "circles</w>", ...). Anything else falls back to CLIP's
  byte-level pieces, so no text is ever unknown (lossless, unlike a single `<unk>` id).
  `model_max_length` is 16: the longest caption is 10 words plus start and end tokens, and every
  context token costs transformer time at both LSS stages.
* `text_encoder`, `text_encoder_2`: two small `CLIPTextModelWithProjection`, random and frozen.
  Why frozen: the SD3 transformer's context stream (its own attention and MLP over the text tokens
  in every block) is the part that learns what words mean, so a trained encoder would add little;
  a frozen one keeps the prompt embeddings (and the empty prompt for guidance) a fixed function,
  needs no checkpointing, and cannot collapse. What it must do is keep captions apart, so the
  token and position embeddings are drawn at unit scale (`embedding_std`): the residual stream of
  the first layer, which SD3 reads (`hidden_states[-2]`), then stays dominated by the words and
  their order (tests check that one-word edits move the embedding well away).
* `tokenizer_3`, `text_encoder_3`: a null T5. SD3 works without T5 (`text_encoder_3=None` gives
  zero T5 embeddings), but `from_pretrained` on a folder saved that way needs
  `text_encoder_3=None, tokenizer_3=None` passed by hand. Instead the folder ships a T5 encoder
  with no layers and a zero final-norm weight (its output is exactly zero, the same as
  `None`) and a tokenizer that reads no text (every prompt is one end token, so nothing is ever
  "truncated"). The number of T5 tokens is then just the call's `max_sequence_length`: the
  model is trained mostly with `FAST_T5_TOKENS` and sometimes with the stock default 256, so
  both work; pass `max_sequence_length=FAST_T5_TOKENS` for speed (see `CALL_KWARGS`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor
from torch.nn import functional as F

from lssgen.mini.captions import NUMBER_WORDS, RELATION_WORDS
from lssgen.mini.data_files import read_config
from lssgen.mini.palette import COLOUR_NAMES
from lssgen.mini.shapes import SHAPES
from lssgen_core.upsample.io import CONFIG_NAME

# T5 tokens of the fast call (one zero token: a learned "register"); the stock default is 256.
FAST_T5_TOKENS = 1
STOCK_T5_TOKENS = 256
# What every lssgen-mini call should pass (the model was trained mostly with it).
CALL_KWARGS: dict[str, Any] = {"max_sequence_length": FAST_T5_TOKENS}

TEXT_COMPONENTS = (
    "tokenizer",
    "tokenizer_2",
    "tokenizer_3",
    "text_encoder",
    "text_encoder_2",
    "text_encoder_3",
)
# Words parse_caption tolerates besides the grammar's own ("a photo of a red circle").
_EXTRA_WORDS = ("a", "an", "and", "photo", "image", "picture", "of")
_START, _END = "<|startoftext|>", "<|endoftext|>"


def grammar_words() -> tuple[str, ...]:
    """Every word a caption of the grammar (or `parse_caption`'s tolerated forms) can contain."""
    words: list[str] = [*_EXTRA_WORDS, *COLOUR_NAMES, *NUMBER_WORDS]
    words += [form for shape in SHAPES for form in (shape, shape + "s")]
    words += [w for phrase in RELATION_WORDS.values() for w in phrase.split()]
    return tuple(dict.fromkeys(words))


def learn_merges(words: Sequence[str]) -> list[tuple[str, str]]:
    """BPE merges, learnt on `words` until each is one symbol (CLIP's "</w>" end marker).

    Plain BPE training: merge the most frequent adjacent pair everywhere (ties: the smallest
    pair), repeat. Encoding a training word replays its merges in rank order, so every word comes
    out whole; merges written by hand per word would compete ("re" from "red" splits "green").
    """
    symbols = [[*word[:-1], word[-1] + "</w>"] for word in dict.fromkeys(words)]
    merges: list[tuple[str, str]] = []
    while True:
        counts: dict[tuple[str, str], int] = {}
        for word in symbols:
            for pair in zip(word, word[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            return merges
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        symbols = [_merge(word, best) for word in symbols]


def _merge(word: list[str], pair: tuple[str, str]) -> list[str]:
    merged: list[str] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            merged.append(word[i] + word[i + 1])
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return merged


def word_tokenizer(max_length: int = 16, words: Sequence[str] | None = None) -> Any:
    """A `CLIPTokenizer` with one token per grammar word and byte-level fallback for the rest."""
    # Lazy for start-up: transformers takes ~1 s to import; only the text stack needs it.
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for symbol in [*alphabet, *(s + "</w>" for s in alphabet)]:
        vocab[symbol] = len(vocab)
    merges = learn_merges(words if words is not None else grammar_words())
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    # CLIP's convention: start, then end (also padding) as the largest id.
    vocab[_START] = len(vocab)
    vocab[_END] = len(vocab)
    # The tokenizers backend takes (left, right) pairs, whatever transformers' hint says.
    pairs: Any = merges
    return CLIPTokenizer(vocab=vocab, merges=pairs, model_max_length=max_length)


def null_tokenizer() -> Any:
    """A tokenizer that reads no text: every prompt is `</s>`, padded with `<pad>` (id 0)."""
    # Lazy for start-up: transformers takes ~1 s to import; only the text stack needs it.
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"<pad>": 0, "</s>": 1, "<unk>": 2}, unk_token="<unk>"))
    backend.normalizer = normalizers.Replace(Regex(r"[\s\S]+"), "")
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A $B </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=512,  # SD3's limit for max_sequence_length
    )


@attrs.frozen
class TextConfig:
    """The frozen text encoders (both CLIPs share it; each has its own seed offset)."""

    hidden_size: int = 64
    num_layers: int = 2  # SD3 reads hidden_states[-2]: the output of the first layer
    num_heads: int = 2
    intermediate_size: int = 128
    max_length: int = 16
    embedding_std: float = 1.0
    seed: int = 0

    @property
    def joint_attention_dim(self) -> int:
        """Width of the prompt embeddings: the two CLIP widths concatenated (= the null T5's)."""
        return 2 * self.hidden_size

    @property
    def pooled_projection_dim(self) -> int:
        return 2 * self.hidden_size


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch for a build without disturbing the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def clip_encoder(config: TextConfig, tokenizer: Any, seed: int) -> Any:
    # Lazy for start-up: transformers takes ~1 s to import; only the text stack needs it.
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    clip_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        max_position_embeddings=config.max_length,
        projection_dim=config.hidden_size,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with seeded(seed):
        model = CLIPTextModelWithProjection(clip_config)
        embeddings = model.text_model.embeddings
        embeddings.token_embedding.weight.data.normal_(0.0, config.embedding_std)
        embeddings.position_embedding.weight.data.normal_(0.0, config.embedding_std)
    return model.requires_grad_(False).eval()


def null_t5(width: int) -> Any:
    """A T5 encoder whose output is exactly zero: no layers, final RMSNorm weight 0. Its config is
    `configs/null_t5.json`: the pad and end ids are `null_tokenizer`'s."""
    # Lazy for start-up: transformers takes ~1 s to import; only the text stack needs it.
    from transformers import T5Config, T5EncoderModel

    config = T5Config(**read_config("null_t5"), d_model=width)
    with seeded(0):
        model = T5EncoderModel(config)
    torch.nn.init.zeros_(model.encoder.final_layer_norm.weight)
    return model.requires_grad_(False).eval()


@attrs.frozen(eq=False)
class TextStack:
    """The six text components of an SD3 pipeline, as lssgen-mini builds them."""

    tokenizer: Any
    tokenizer_2: Any
    tokenizer_3: Any
    text_encoder: Any
    text_encoder_2: Any
    text_encoder_3: Any

    @property
    def joint_attention_dim(self) -> int:
        return int(self.text_encoder_3.config.d_model)

    @property
    def pooled_projection_dim(self) -> int:
        return int(
            self.text_encoder.config.projection_dim + self.text_encoder_2.config.projection_dim
        )

    def components(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in TEXT_COMPONENTS}

    def to(self, device: torch.device | str) -> TextStack:
        for encoder in (self.text_encoder, self.text_encoder_2, self.text_encoder_3):
            encoder.to(device)
        return self

    def save(self, folder: str | os.PathLike[str]) -> None:
        for name, component in self.components().items():
            component.save_pretrained(Path(folder) / name)


def build_text(config: TextConfig) -> TextStack:
    tokenizer = word_tokenizer(config.max_length)
    tokenizer_2 = word_tokenizer(config.max_length)
    return TextStack(
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        tokenizer_3=null_tokenizer(),
        text_encoder=clip_encoder(config, tokenizer, config.seed * 16 + 1),
        text_encoder_2=clip_encoder(config, tokenizer_2, config.seed * 16 + 2),
        text_encoder_3=null_t5(config.joint_attention_dim),
    )


def load_text(folder: str | os.PathLike[str]) -> TextStack:
    """The text components saved by `TextStack.save` (offline, float32, frozen)."""
    # Lazy for start-up: transformers takes ~1 s to import; only the text stack needs it.
    from transformers import (
        CLIPTextModelWithProjection,
        CLIPTokenizer,
        PreTrainedTokenizerFast,
        T5EncoderModel,
    )

    root = Path(folder)
    if not (root / "text_encoder" / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"no lssgen-mini text components in {root}; run the text stage")

    def encoder(cls: Any, name: str) -> Any:
        model = cls.from_pretrained(root / name, torch_dtype=torch.float32, local_files_only=True)
        return model.requires_grad_(False).eval()

    return TextStack(
        tokenizer=CLIPTokenizer.from_pretrained(root / "tokenizer", local_files_only=True),
        tokenizer_2=CLIPTokenizer.from_pretrained(root / "tokenizer_2", local_files_only=True),
        tokenizer_3=PreTrainedTokenizerFast.from_pretrained(
            root / "tokenizer_3", local_files_only=True
        ),
        text_encoder=encoder(CLIPTextModelWithProjection, "text_encoder"),
        text_encoder_2=encoder(CLIPTextModelWithProjection, "text_encoder_2"),
        text_encoder_3=encoder(T5EncoderModel, "text_encoder_3"),
    )


def _clip_embeddings(
    tokenizer: Any, encoder: Any, prompts: list[str], max_length: int
) -> tuple[Tensor, Tensor]:
    ids = tokenizer(
        prompts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt"
    ).input_ids
    device = next(encoder.parameters()).device
    output = encoder(ids.to(device), output_hidden_states=True)
    return output.hidden_states[-2], output[0]


@torch.no_grad()
def encode_prompts(
    text: TextStack, prompts: Sequence[str], t5_tokens: int = FAST_T5_TOKENS
) -> tuple[Tensor, Tensor]:
    """(prompt_embeds, pooled_prompt_embeds) exactly as `StableDiffusion3Pipeline.encode_prompt`
    gives them with `max_sequence_length=t5_tokens` (checked by the tests), without a pipeline."""
    prompts = list(prompts)
    # SD3 pads both CLIPs to the first tokenizer's length.
    max_length = text.tokenizer.model_max_length
    first, pooled_1 = _clip_embeddings(text.tokenizer, text.text_encoder, prompts, max_length)
    second, pooled_2 = _clip_embeddings(text.tokenizer_2, text.text_encoder_2, prompts, max_length)
    width = text.joint_attention_dim
    clip = torch.cat([first, second], dim=-1)
    clip = F.pad(clip, (0, width - clip.shape[-1]))
    t5 = clip.new_zeros(len(prompts), t5_tokens, width)  # the null T5's output
    return torch.cat([clip, t5], dim=-2), torch.cat([pooled_1, pooled_2], dim=-1)
