"""Stage `transformer`: lssgen-mini's `SD3Transformer2DModel`, trained with rectified flow.

Architecture (`TransformerArch`): MM-DiT with 6 joint blocks, 3 heads of 64 (width 192), patch 2,
16 latent channels, `sample_size` 32 (256 px by default), sincos positions up to 512 px:
7.8 M parameters, plus 0.2 M in the stored sincos table (16 MB in float16). At 256 px that is
16 x 16 = 256 image tokens; the LSS first stage at 128 px has 64. Text: 16 CLIP tokens plus the
T5 zero tokens (see `lssgen.mini.train_text`).

Objective, SD3's convention: t ~ logit-normal(0, 1) (or uniform), x_t = (1 - t) x0 + t e,
the model gets timestep 1000 t and predicts v = e - x0 (MSE). Per step, drawn from the step's
generator:

* the resolution: the LSS first-stage size with probability `low_res_fraction`, else the native
  size. LSS runs the same model at half size for its first steps, and SD3's positions at a smaller
  size are a centre crop of the larger grid, so the model must have been trained there;
* the scenes (uniform over the latent cache), t and the noise;
* classifier-free guidance dropout: each caption replaced by "" with `caption_dropout`;
* the number of T5 zero tokens: `stock_t5_fraction` of the steps use the pipeline's default 256,
  the rest `FAST_T5_TOKENS`, so plain calls work and fast calls are what the model knows best;
* a GenEval-style prefix ("a photo of ", ...) before each caption with `prefix_fraction`. The
  scenes' captions have none, but GenEval's prompts (and the demo's) do: a model trained without
  prefixes draws noise for "a photo of a red circle" (seen on the first shipped model).

The text encoders are frozen (see `train_text`); their prompt embeddings are computed per step
exactly as the pipeline computes them (`encode_prompts`).
"""

from __future__ import annotations

import os
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from lssgen.mini.captions import PREFIXES
from lssgen.mini.train_latents import LatentCache
from lssgen.mini.train_text import (
    FAST_T5_TOKENS,
    STOCK_T5_TOKENS,
    TextStack,
    encode_prompts,
    seeded,
)
from lssgen_core.validation import fraction, non_negative, positive

TIMESTEP_SAMPLING = ("logit_normal", "uniform")
NUM_TRAIN_TIMESTEPS = 1000


@attrs.frozen
class TransformerArch:
    num_layers: int = attrs.field(default=6, validator=positive)
    num_attention_heads: int = attrs.field(default=3, validator=positive)
    attention_head_dim: int = attrs.field(default=64, validator=positive)
    patch_size: int = attrs.field(default=2, validator=positive)
    sample_size: int = attrs.field(default=32, validator=positive)  # latent side, native size
    pos_embed_max_size: int = attrs.field(default=32, validator=positive)

    @property
    def width(self) -> int:
        return self.num_attention_heads * self.attention_head_dim


def build_transformer(
    arch: TransformerArch,
    *,
    latent_channels: int,
    joint_attention_dim: int,
    pooled_projection_dim: int,
    seed: int,
) -> Any:
    """A freshly initialised `SD3Transformer2DModel`; the same seed gives the same weights."""
    # Lazy for start-up: Diffusers takes ~3 s to import; only building or loading models needs it.
    from diffusers import SD3Transformer2DModel

    with seeded(seed):
        return SD3Transformer2DModel(
            sample_size=arch.sample_size,
            patch_size=arch.patch_size,
            in_channels=latent_channels,
            out_channels=latent_channels,
            num_layers=arch.num_layers,
            attention_head_dim=arch.attention_head_dim,
            num_attention_heads=arch.num_attention_heads,
            joint_attention_dim=joint_attention_dim,
            caption_projection_dim=arch.width,  # SD3's blocks need it equal to the width
            pooled_projection_dim=pooled_projection_dim,
            pos_embed_max_size=arch.pos_embed_max_size,
        )


def load_initial_weights(net: nn.Module, folder: str | os.PathLike[str]) -> None:
    """Copy the weights of a saved `SD3Transformer2DModel` folder into `net` (a warm start).

    Every tensor must match by name and shape: a warm start from another architecture would
    silently keep some layers random.
    """
    # Lazy for start-up: Diffusers takes ~3 s to import; only building or loading models needs it.
    from diffusers import SD3Transformer2DModel

    saved = SD3Transformer2DModel.from_pretrained(folder, torch_dtype=torch.float32)
    mine, theirs = net.state_dict(), saved.state_dict()
    mismatched = sorted(
        name
        for name in mine.keys() | theirs.keys()
        if name not in mine or name not in theirs or mine[name].shape != theirs[name].shape
    )
    if mismatched:
        raise ValueError(
            f"{folder} does not match the transformer's architecture "
            f"({len(mismatched)} tensors differ, e.g. {mismatched[:3]}); pass the same "
            "--layers/--heads/--head-dim as the saved model"
        )
    net.load_state_dict(theirs)


@attrs.frozen
class FlowTrainConfig:
    arch: TransformerArch = TransformerArch()
    low_res_fraction: float = attrs.field(default=0.25, validator=fraction)
    caption_dropout: float = attrs.field(default=0.1, validator=fraction)
    timesteps: str = attrs.field(
        default="logit_normal", validator=attrs.validators.in_(TIMESTEP_SAMPLING)
    )
    logit_mean: float = 0.0
    logit_std: float = attrs.field(default=1.0, validator=positive)
    # The logit mean of the steps at the LSS first-stage size; None: logit_mean. A smaller image is
    # decided at lower noise: SD3's resolution shift (Esser et al. 2024: t' = a t / (1 + (a-1) t),
    # a = the square root of the token ratio) moves logit(t) by ln a, so logit_mean 1.0 at 256 px
    # is 1.0 - ln 2 = 0.31 at 128 px. Our pilot B2 (1.0 at both) lost 128 px accuracy.
    low_res_logit_mean: float | None = None
    t5_tokens: int = attrs.field(default=FAST_T5_TOKENS, validator=non_negative)
    stock_t5_fraction: float = attrs.field(default=0.05, validator=fraction)
    prefix_fraction: float = attrs.field(default=0.0, validator=fraction)


def sample_t(
    config: FlowTrainConfig, count: int, generator: torch.Generator, low_res: bool = False
) -> Tensor:
    """``count`` training t in (0, 1); ``low_res``: for a step at the first-stage size."""
    if config.timesteps == "uniform":
        return torch.rand(count, generator=generator)
    normal = torch.randn(count, generator=generator)
    mean = config.logit_mean
    if low_res and config.low_res_logit_mean is not None:
        mean = config.low_res_logit_mean
    return torch.sigmoid(mean + config.logit_std * normal)


def recipe_identity(config: FlowTrainConfig) -> dict[str, Any]:
    """The recipe's part of a run's identity. A setting added later is left out while it has
    its default, so that runs saved before it existed still resume."""
    values = attrs.asdict(config)
    if values["low_res_logit_mean"] is None:
        del values["low_res_logit_mean"]
    return values


def with_prefixes(prompts: list[str], rate: float, generator: torch.Generator) -> list[str]:
    """Each non-empty prompt behind a random GenEval-style prefix with probability `rate`."""
    chosen = torch.rand(len(prompts), generator=generator) < rate
    kinds = torch.randint(len(PREFIXES), (len(prompts),), generator=generator)
    return [
        PREFIXES[k] + p if use and p else p
        for p, use, k in zip(prompts, chosen.tolist(), kinds.tolist())
    ]


@attrs.frozen(eq=False)
class FlowTask:
    """The transformer's loss per step (see the module docstring)."""

    config: FlowTrainConfig
    batch_size: int
    cache: LatentCache
    text: TextStack
    text_fingerprint: str
    # Fingerprint of the weights the net started from (`--init-from`); None for a fresh init.
    # Part of the identity, so a resume cannot mix a warm-started run with a fresh one.
    init_fingerprint: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.config.low_res_fraction > 0 and len(self.cache.sizes) < 2:
            raise ValueError("low_res_fraction > 0 needs latents at two sizes in the cache")

    def batch(self, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor, list[str], int]:
        """(latents x0, t, noise, prompts, T5 tokens): every draw of one step, in a fixed order."""
        c = self.config
        low = float(torch.rand(1, generator=generator)) < c.low_res_fraction
        size = self.cache.sizes[-1] if low else self.cache.sizes[0]
        indices = torch.randint(len(self.cache), (self.batch_size,), generator=generator)
        x0 = self.cache.latents[size][indices].float()
        t = sample_t(c, self.batch_size, generator, low_res=low)
        noise = torch.randn(x0.shape, generator=generator)
        drop = torch.rand(self.batch_size, generator=generator) < c.caption_dropout
        prompts = ["" if d else self.cache.captions[i] for d, i in zip(drop.tolist(), indices)]
        stock = float(torch.rand(1, generator=generator)) < c.stock_t5_fraction
        if c.prefix_fraction > 0:  # drawn last, so runs without prefixes keep their draws
            prompts = with_prefixes(prompts, c.prefix_fraction, generator)
        return x0, t, noise, prompts, STOCK_T5_TOKENS if stock else c.t5_tokens

    def loss(
        self, net: nn.Module, step: int, generator: torch.Generator
    ) -> tuple[Tensor, dict[str, float]]:
        x0, t, noise, prompts, t5_tokens = self.batch(generator)
        device = next(net.parameters()).device
        x0, t, noise = x0.to(device), t.to(device), noise.to(device)
        embeds, pooled = encode_prompts(self.text, prompts, t5_tokens)
        sigma = t.view(-1, 1, 1, 1)
        noisy = (1.0 - sigma) * x0 + sigma * noise
        prediction = net(
            hidden_states=noisy,
            encoder_hidden_states=embeds.to(device),
            pooled_projections=pooled.to(device),
            timestep=t * NUM_TRAIN_TIMESTEPS,
        ).sample
        loss = (prediction.float() - (noise - x0)).pow(2).mean()
        return loss, {"latent_side": float(x0.shape[-1]), "t5_tokens": float(t5_tokens)}

    def identity(self) -> dict[str, Any]:
        return {
            "stage": "transformer",
            "batch_size": self.batch_size,
            **recipe_identity(self.config),
            "latents": self.cache.fingerprint,
            "text": self.text_fingerprint,
            **({} if self.init_fingerprint is None else {"init": self.init_fingerprint}),
        }
