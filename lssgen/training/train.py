"""Training of the latent upsampler for any VAE given as `encode` / `decode` callables, on the
shared loop (`lssgen.training.loop`).

Recipe of the original repository: pairs of a crop at 2x the training size and its nearest
downsample, both encoded into model space; latent MSE (+ optional decoded-pixel L1 and LPIPS);
AdamW lr 1e-4, weight decay 1e-4, OneCycle, batch 16, gradient clipping at 1.

Several GPUs: pass an `accelerate.Accelerator` as the backend (`lssgen.training.backend`); each
process draws its own `batch_size` crops per step (its rank is part of the crop seed).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import torch
from torch import Tensor, nn

from lssgen.dtypes import TRAINING_DTYPES, autocast_dtype
from lssgen.training.batches import BatchPlan, PairBatch, iterate_batches
from lssgen.training.loop import LoopSettings, RunOptions, TrainResult, run_training
from lssgen.training.losses import Decode, Perceptual, UpsamplerLoss
from lssgen.training.pairs import DOWNSAMPLE_MODES, SCALE_FACTOR, ImageSource
from lssgen_core.upsample.config import LAYOUT_WIDTHS, UpsamplerConfig
from lssgen_core.upsample.network import LatentUpsampler
from lssgen_core.validation import non_negative, one_of, positive

if TYPE_CHECKING:
    from typing_extensions import Unpack

Encode = Callable[[Tensor], Tensor]
CHECKPOINT_DIRNAME = "checkpoints"


@attrs.frozen
class TrainConfig:
    """Everything that determines the trained weights (so a resume must not change it)."""

    size: int = attrs.field(default=256, validator=positive)  # low-res crop side, pixels
    steps: int = attrs.field(default=10_000, validator=positive)
    batch_size: int = attrs.field(default=16, validator=positive)  # per process
    lr: float = attrs.field(default=1e-4, validator=positive)
    weight_decay: float = attrs.field(default=1e-4, validator=non_negative)
    max_grad_norm: float = attrs.field(default=1.0, validator=positive)
    pct_start: float = 0.3  # OneCycle warm-up fraction (torch's default)
    seed: int = attrs.field(default=0, validator=non_negative)
    downsample: str = attrs.field(default="nearest", validator=one_of(DOWNSAMPLE_MODES))
    pixel_loss_weight: float = attrs.field(default=0.0, validator=non_negative)
    lpips_loss_weight: float = attrs.field(default=0.0, validator=non_negative)
    dtype: str = attrs.field(default="fp32", validator=one_of(TRAINING_DTYPES))
    cache_latents: bool = False
    pool_size: int = attrs.field(default=512, validator=positive)
    pool_reuse: int = attrs.field(default=4, validator=positive)

    def __attrs_post_init__(self) -> None:
        if not 0 < self.pct_start < 1:
            raise ValueError(f"pct_start must be in (0, 1), got {self.pct_start!r}")

    @property
    def crop_size(self) -> int:
        """Side of the high-resolution crop: twice the training size."""
        return SCALE_FACTOR * self.size

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return autocast_dtype(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def batch_plan(self, *, keep_images: bool) -> BatchPlan:
        return BatchPlan(
            crop_size=self.crop_size,
            batch_size=self.batch_size,
            seed=self.seed,
            downsample=self.downsample,
            keep_images=keep_images,
            cache_latents=self.cache_latents,
            pool_size=self.pool_size,
            pool_reuse=self.pool_reuse,
        )


def default_upsampler_config(latent_channels: int) -> UpsamplerConfig:
    """The released layout for 4, 16, 32 or 128 channels (`UpsamplerConfig.released`); other
    counts get the 16-channel one with their channel count (no released checkpoint exists to
    match there)."""
    if latent_channels in LAYOUT_WIDTHS:
        return UpsamplerConfig.released(latent_channels)
    return attrs.evolve(
        UpsamplerConfig.released_16ch(), in_channels=latent_channels, out_channels=latent_channels
    )


def init_upsampler(config: UpsamplerConfig, seed: int) -> LatentUpsampler:
    """A freshly initialised upsampler; same seed, same weights, caller's RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LatentUpsampler(config)


def make_optimizer(
    parameters: list[nn.Parameter], config: TrainConfig
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.OneCycleLR]:
    """AdamW with a OneCycle schedule over `config.steps` (so a resume must keep the steps)."""
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    # torch's OneCycle defaults otherwise (cosine, div 25, final div 1e4, beta1 cycling).
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.steps, pct_start=config.pct_start
    )
    return optimizer, scheduler


def make_loss(
    config: TrainConfig, decode: Decode | None, lpips: Perceptual | None
) -> UpsamplerLoss:
    """The loss `config` asks for; raises if a pixel term lacks `decode` or LPIPS its network."""
    needs_decode = config.pixel_loss_weight > 0 or config.lpips_loss_weight > 0
    return UpsamplerLoss(
        pixel_weight=config.pixel_loss_weight,
        lpips_weight=config.lpips_loss_weight,
        decode=decode if needs_decode else None,
        lpips=lpips,
    )


class PairTask:
    """The upsampler's step: a batch of encoded (low, high) pairs, and the loss on it.

    The batches are drawn from the first step asked for on (the resumed step after a resume);
    `close` stops the DataLoader workers at once, not at garbage collection.
    """

    def __init__(
        self,
        images: ImageSource,
        encode: Encode,
        plan: BatchPlan,
        loss_fn: UpsamplerLoss,
        *,
        stop: int,
        device: torch.device,
        rank: int,
        num_workers: int,
    ) -> None:
        self._open: Callable[[int], Generator[PairBatch, None, None]] = lambda start: (
            iterate_batches(
                images,
                encode,
                plan,
                start=start,
                stop=stop,
                device=device,
                rank=rank,
                num_workers=num_workers,
            )
        )
        self._batches: Generator[PairBatch, None, None] | None = None
        self.loss_fn = loss_fn

    def inputs(self, step: int) -> PairBatch:
        if self._batches is None:
            self._batches = self._open(step)
        return next(self._batches)

    def loss(self, net: nn.Module, inputs: PairBatch) -> tuple[Tensor, Mapping[str, float]]:
        terms = self.loss_fn(net(inputs.low_latent), inputs.high_latent, inputs.high_image)
        return terms.total, terms.parts

    def close(self) -> None:
        if self._batches is not None:
            self._batches.close()


def run_identity(config: TrainConfig, model: LatentUpsampler) -> dict[str, Any]:
    """What a resume must keep: every setting that changes the weights, and the architecture."""
    identity = config.to_dict()
    if not config.cache_latents:
        # Pool settings do not affect a streamed run; changing them must not block a resume.
        del identity["pool_size"], identity["pool_reuse"]
    identity["upsampler"] = model.config.to_dict()
    return identity


RESUME_ADVICE = (
    "Resume with the original settings (OneCycle's schedule depends on --steps), "
    "or start a new output folder"
)


def train_upsampler(
    model: LatentUpsampler,
    images: ImageSource,
    encode: Encode,
    config: TrainConfig,
    *,
    decode: Decode | None = None,
    lpips: Perceptual | None = None,
    num_workers: int = 0,
    **options: Unpack[RunOptions],
) -> TrainResult[LatentUpsampler]:
    """Train `model` in place on pairs cut from `images`; see the module docstring.

    `encode` / `decode` map images in [-1, 1] to model-space latents and back (`decode` is only
    used for the pixel losses and must keep the autograd graph). `num_workers` DataLoader
    processes decode and crop the images. `options` (`RunOptions`): checkpoints, resume, backend,
    progress and stop, as for every trainer; a resumed run reaches the same weights as an
    uninterrupted one.
    """
    settings = LoopSettings(
        steps=config.steps,
        max_grad_norm=config.max_grad_norm,
        autocast_dtype=config.autocast_dtype,
    )
    loss_fn = make_loss(config, decode, lpips)
    backend = options.get("backend")
    device = backend.device if backend is not None else model.device
    task = PairTask(
        images,
        encode,
        config.batch_plan(keep_images=loss_fn.needs_images),
        loss_fn,
        stop=config.steps,
        device=device,
        rank=backend.process_index if backend is not None else 0,
        num_workers=num_workers,
    )
    try:
        return run_training(
            model,
            task,
            settings,
            lambda parameters: make_optimizer(parameters, config),
            identity=run_identity(config, model),
            resume_advice=RESUME_ADVICE,
            **options,
        )
    finally:
        task.close()
