"""Training loop of the latent upsampler for any VAE given as `encode` / `decode` callables.

Recipe of the original repository: pairs of a crop at 2x the training size and its nearest
downsample, both encoded into model space; latent MSE (+ optional decoded-pixel L1 and LPIPS);
AdamW lr 1e-4, weight decay 1e-4, OneCycle, batch 16, gradient clipping at 1.

Multi-GPU: the loop talks to a `Backend`, the subset of `accelerate.Accelerator` it uses (prepare,
backward, clip_grad_norm_, reduce, ...). The CLI passes a real `Accelerator`, so
`accelerate launch -m lssgen train-upsampler ...` trains data-parallel; without one, a
single-process backend does the same in plain torch. The loop therefore never imports accelerate
and the loop is one code path for both. Steps are optimizer steps; each process draws its own
`batch_size` crops per step (its rank is part of the crop seed).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs
import torch
from torch import Tensor, nn

from lssgen.training.batches import BatchPlan, PairBatch, iterate_batches
from lssgen.training.checkpoint import (
    has_training_state,
    load_training_state,
    save_training_state,
)
from lssgen.training.losses import Decode, LossTerms, Perceptual, UpsamplerLoss
from lssgen.training.pairs import DOWNSAMPLE_MODES, SCALE_FACTOR, ImageSource
from lssgen_core.upsample.config import UpsamplerConfig
from lssgen_core.upsample.network import LatentUpsampler
from lssgen_core.validation import non_negative, one_of, positive

Encode = Callable[[Tensor], Tensor]
DTYPES = ("fp32", "bf16")
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
    dtype: str = attrs.field(default="fp32", validator=one_of(DTYPES))
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
        return torch.bfloat16 if self.dtype == "bf16" else None

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


class Backend(Protocol):
    """The part of `accelerate.Accelerator` the loop uses."""

    @property
    def device(self) -> torch.device: ...

    @property
    def num_processes(self) -> int: ...

    @property
    def process_index(self) -> int: ...

    @property
    def is_main_process(self) -> bool: ...

    def prepare(self, *args: Any) -> Any: ...

    def backward(self, loss: Tensor) -> None: ...

    def clip_grad_norm_(self, parameters: Any, max_norm: float) -> Any: ...

    def unwrap_model(self, model: nn.Module) -> nn.Module: ...

    def wait_for_everyone(self) -> None: ...

    def reduce(self, tensor: Tensor, reduction: str = "sum") -> Tensor: ...


@attrs.frozen
class SingleProcess:
    """A `Backend` for one process in plain torch (what `Accelerator` does with one process)."""

    device: torch.device = attrs.field(factory=lambda: torch.device("cpu"), converter=torch.device)
    num_processes: int = 1
    process_index: int = 0
    is_main_process: bool = True

    def prepare(self, *args: Any) -> Any:
        return args[0] if len(args) == 1 else args

    def backward(self, loss: Tensor) -> None:
        loss.backward()

    def clip_grad_norm_(self, parameters: Any, max_norm: float) -> Tensor:
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)

    def unwrap_model(self, model: nn.Module) -> nn.Module:
        return model

    def wait_for_everyone(self) -> None:
        pass

    def reduce(self, tensor: Tensor, reduction: str = "sum") -> Tensor:
        return tensor


def default_upsampler_config(latent_channels: int) -> UpsamplerConfig:
    """The released architecture for 4 or 16 channels; other counts get the 16-channel one
    with their channel count (no released checkpoint exists to match there)."""
    if latent_channels in (4, 16):
        return UpsamplerConfig.released(latent_channels)
    return attrs.evolve(
        UpsamplerConfig.released_16ch(), in_channels=latent_channels, out_channels=latent_channels
    )


def init_upsampler(config: UpsamplerConfig, seed: int) -> LatentUpsampler:
    """A freshly initialised upsampler; same seed, same weights, caller's RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LatentUpsampler(config)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.lr,
        weight_decay=config.weight_decay,
    )


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.OneCycleLR:
    # torch's OneCycle defaults otherwise (cosine, div 25, final div 1e4, beta1 cycling).
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.steps, pct_start=config.pct_start
    )


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


class NonFiniteLossError(RuntimeError):
    """Training diverged: the loss or the gradient norm of `step` is NaN or inf.

    Raised before that step's optimizer update, so the weights in memory and every checkpoint
    written so far hold finite values; `last_checkpoint` is the step of the last one written
    (None if none was).
    """

    def __init__(
        self, step: int, loss: float, grad_norm: float, lr: float, last_checkpoint: int | None
    ) -> None:
        kept = (
            "no checkpoint was written"
            if last_checkpoint is None
            else f"the checkpoint of step {last_checkpoint} is kept"
        )
        super().__init__(
            f"training diverged at step {step}: the loss is {loss:.4g} and the gradient norm "
            f"{grad_norm:.4g}, not finite numbers (learning rate {lr:.4g}); stopped before the "
            f"update, {kept}. Lower the learning rate (or the gradient clipping norm) and start "
            "again"
        )
        self.step = step
        self.loss = loss
        self.grad_norm = grad_norm
        self.lr = lr
        self.last_checkpoint = last_checkpoint


def check_step_finite(
    step: int, loss: float, grad_norm: float, lr: float, last_checkpoint: int | None
) -> None:
    """Raise `NonFiniteLossError` unless both the loss and the gradient norm are finite.

    Checked after the backward pass, where data-parallel ranks have all-reduced their gradients:
    a NaN on one rank is then a NaN gradient norm on every rank, so all of them stop together.
    """
    if not (math.isfinite(loss) and math.isfinite(grad_norm)):
        raise NonFiniteLossError(step, loss, grad_norm, lr, last_checkpoint)


def training_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    batch: PairBatch,
    loss_fn: UpsamplerLoss,
    *,
    backend: Backend,
    max_grad_norm: float,
    autocast_dtype: torch.dtype | None = None,
    check_finite: Callable[[float, float], None] | None = None,
) -> tuple[LossTerms, float]:
    """One optimizer step; returns the loss terms and the gradient norm before clipping.

    `check_finite(loss, grad_norm)` runs before the update and may raise to skip it.
    """
    model.train()
    device_type = batch.low_latent.device.type
    with torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        prediction = model(batch.low_latent)
        terms = loss_fn(prediction, batch.high_latent, batch.high_image)
    optimizer.zero_grad(set_to_none=True)
    backend.backward(terms.total)
    grad_norm = backend.clip_grad_norm_(model.parameters(), max_grad_norm)
    if check_finite is not None:
        check_finite(float(terms.total.detach()), float(grad_norm))
    optimizer.step()
    scheduler.step()
    return terms, float(grad_norm)


@attrs.frozen
class StepReport:
    """What a progress display needs after each step."""

    step: int
    total_steps: int
    loss: float
    loss_ema: float
    lr: float
    grad_norm: float
    parts: Mapping[str, float]
    seconds: float


@attrs.frozen(eq=False)
class TrainResult:
    model: LatentUpsampler
    start_step: int  # step this invocation began at (> 0 after a resume)
    step: int  # steps completed in total
    interrupted: bool
    losses: list[float]  # loss of every step of this invocation
    loss_ema: float | None
    step_seconds: list[float]

    @property
    def seconds_per_step(self) -> float:
        """Mean wall time per step, the first (warm-up) step excluded when there are others."""
        times = self.step_seconds[1:] or self.step_seconds
        return sum(times) / len(times) if times else math.nan


class ResumeError(ValueError):
    """The checkpoint cannot be resumed (damaged, or made with other settings)."""


def _mismatches(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    return [
        f"{key}: checkpoint {saved.get(key)!r}, now {current.get(key)!r}"
        for key in sorted(set(saved) | set(current))
        if saved.get(key) != current.get(key)
    ]


def check_resumable(info: Mapping[str, Any], identity: Mapping[str, Any], source: Path) -> None:
    """Refuse to resume a checkpoint made with settings that change the result."""
    problems = _mismatches(info.get("identity", {}), identity)
    if problems:
        raise ResumeError(
            f"cannot resume from {source}: it was made with other settings ("
            + "; ".join(problems)
            + "). Resume with the original settings (OneCycle's schedule depends on --steps), "
            "or start a new output folder"
        )


def _run_identity(config: TrainConfig, model: LatentUpsampler, backend: Backend) -> dict[str, Any]:
    identity = config.to_dict()
    if not config.cache_latents:
        # Pool settings do not affect a streamed run; changing them must not block a resume.
        del identity["pool_size"], identity["pool_reuse"]
    identity["upsampler"] = model.config.to_dict()
    identity["num_processes"] = backend.num_processes
    # As it reads back from the checkpoint's JSON (tuples become lists), so equal means equal.
    normalised: dict[str, Any] = json.loads(json.dumps(identity))
    return normalised


def _any_process(flag: bool, backend: Backend) -> bool:
    if backend.num_processes == 1:
        return flag
    # Every rank must leave the loop at the same step or the next all-reduce hangs.
    total = backend.reduce(torch.tensor([float(flag)], device=backend.device), "sum")
    return bool(total.item() > 0)


def train_upsampler(
    model: LatentUpsampler,
    images: ImageSource,
    encode: Encode,
    config: TrainConfig,
    *,
    decode: Decode | None = None,
    lpips: Perceptual | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    backend: Backend | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    num_workers: int = 0,
) -> TrainResult:
    """Train `model` in place on pairs cut from `images`; see the module docstring.

    `encode` / `decode` map images in [-1, 1] to model-space latents and back (`decode` is only
    used for the pixel losses and must keep the autograd graph). With `checkpoint_dir`, a
    checkpoint is written every `checkpoint_every` steps (0: only at the end), when
    `should_stop()` turns true (then the loop returns with `interrupted=True`) and at the end;
    `resume=True` continues from it and reaches the same weights as an uninterrupted run.
    """
    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    backend = backend if backend is not None else SingleProcess(model.device)
    device = backend.device
    model.to(device)  # before the optimizer exists, so loaded moments land on this device
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    loss_fn = make_loss(config, decode, lpips)
    identity = _run_identity(config, model, backend)
    start, loss_ema = 0, None
    if resume:
        assert checkpoint_dir is not None
        if not has_training_state(checkpoint_dir):
            raise ResumeError(f"no training checkpoint to resume in {checkpoint_dir}")
        try:
            state = load_training_state(
                checkpoint_dir, model=model, optimizer=optimizer, scheduler=scheduler
            )
        except (FileNotFoundError, ValueError) as exc:
            raise ResumeError(str(exc)) from exc
        check_resumable(state["info"], identity, Path(checkpoint_dir))
        start, loss_ema = int(state["step"]), state["info"].get("loss_ema")
    net, opt = backend.prepare(model, optimizer)
    saved_step: list[int] = [start] if resume else []

    def save(step: int) -> None:
        if checkpoint_dir is None:
            return
        saved_step[:] = [step]
        if backend.is_main_process:
            save_training_state(
                checkpoint_dir,
                step=step,
                model=backend.unwrap_model(net),
                optimizer=optimizer,
                scheduler=scheduler,
                info={"identity": identity, "loss_ema": loss_ema},
            )
        backend.wait_for_everyone()

    batches: Generator[PairBatch, None, None] = iterate_batches(
        images,
        encode,
        config.batch_plan(keep_images=loss_fn.needs_images),
        start=start,
        stop=config.steps,
        device=device,
        rank=backend.process_index,
        num_workers=num_workers,
    )
    losses: list[float] = []
    step_seconds: list[float] = []
    step, interrupted = start, False
    tick = time.perf_counter()
    try:
        for batch in batches:
            lr = float(optimizer.param_groups[0]["lr"])

            def check_finite(
                loss: float, grad_norm: float, lr: float = lr, step: int = step
            ) -> None:
                last = saved_step[0] if saved_step else None
                check_step_finite(step + 1, loss, grad_norm, lr, last)

            terms, grad_norm = training_step(
                net,
                opt,
                scheduler,
                batch,
                loss_fn,
                backend=backend,
                max_grad_norm=config.max_grad_norm,
                autocast_dtype=config.autocast_dtype,
                check_finite=check_finite,
            )
            step += 1
            loss = terms.parts["loss"]
            if backend.num_processes > 1:
                loss = float(backend.reduce(terms.total.detach(), "mean"))
            losses.append(loss)
            loss_ema = loss if loss_ema is None else 0.95 * loss_ema + 0.05 * loss
            now = time.perf_counter()
            step_seconds.append(now - tick)
            tick = now
            if on_step is not None and backend.is_main_process:
                on_step(
                    StepReport(
                        step,
                        config.steps,
                        loss,
                        loss_ema,
                        lr,
                        grad_norm,
                        terms.parts,
                        step_seconds[-1],
                    )
                )
            interrupted = _any_process(should_stop() if should_stop else False, backend)
            due = checkpoint_every > 0 and step % checkpoint_every == 0
            if due or interrupted or step == config.steps:
                save(step)
                tick = time.perf_counter()  # checkpoint I/O is not step time
            if interrupted:
                break
    finally:
        batches.close()  # stops DataLoader workers at once, not at garbage collection
    trained = backend.unwrap_model(net)
    assert isinstance(trained, LatentUpsampler)
    trained.eval()
    return TrainResult(trained, start, step, interrupted, losses, loss_ema, step_seconds)
