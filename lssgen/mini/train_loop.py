"""The resumable training loop every lssgen-mini stage uses (VAE, transformer).

It follows the upsampler trainer's design (`lssgen.training.train`) and reuses its pieces:
the `Backend` protocol (plain torch via `SingleProcess`; an `accelerate.Accelerator` fits too),
the safetensors-only, atomically written checkpoints of `lssgen.training.checkpoint`, and
its refusal to resume a checkpoint made with other settings (`check_resumable`). Two differences,
both for training in budgeted pieces on CPU:

* Everything random in step k (which scenes, crops, timesteps, noise) is drawn from a generator
  seeded by (seed, k), so a resumed run sees exactly the data of an uninterrupted one: K + K steps
  give bit for bit the weights of 2K steps (tests check it).
* The learning rate is constant after a linear warm-up, and an exponential moving average of the
  weights (what gets exported) does the annealing. Nothing depends on the total step count, so a
  finished run can be extended: `--resume --steps <more>`. `steps` is therefore not part of the
  resume identity.

The model and its EMA travel together as one `Trainee` module, so the checkpoint helpers store
both without knowing about EMA.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import attrs
import numpy as np
import torch
from torch import Tensor, nn

from lssgen.training.checkpoint import (
    has_training_state,
    load_training_state,
    save_training_state,
)
from lssgen.training.train import (
    Backend,
    ResumeError,
    SingleProcess,
    StepReport,
    check_step_finite,
)
from lssgen_core.validation import fraction, non_negative, positive

DTYPES = ("fp32", "bf16")


@attrs.frozen
class LoopConfig:
    """Optimisation settings shared by the stages. Only `steps` may change on a resume."""

    steps: int = attrs.field(default=1000, validator=positive)
    batch_size: int = attrs.field(default=16, validator=positive)
    lr: float = attrs.field(default=3e-4, validator=positive)
    warmup_steps: int = attrs.field(default=100, validator=non_negative)
    weight_decay: float = attrs.field(default=0.0, validator=non_negative)
    max_grad_norm: float = attrs.field(default=1.0, validator=positive)
    ema_decay: float = attrs.field(default=0.999, validator=fraction)
    seed: int = attrs.field(default=0, validator=non_negative)
    dtype: str = attrs.field(default="fp32", validator=attrs.validators.in_(DTYPES))

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.dtype == "bf16" else None


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The CPU generator of one step: independent streams for every (seed, step, rank)."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class Task(Protocol):
    """A stage's part of the loop: the loss of one step, and what must not change on resume."""

    def loss(
        self, net: nn.Module, step: int, generator: torch.Generator
    ) -> tuple[Tensor, dict[str, float]]: ...

    def identity(self) -> dict[str, Any]: ...


class Trainee(nn.Module):
    """The trained network and its EMA copy (the EMA is what a stage exports)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.ema = copy.deepcopy(net).requires_grad_(False).eval()

    @torch.no_grad()
    def update_ema(self, decay: float, step: int) -> None:
        # Short horizon early on (as Diffusers' EMAModel), so short runs export trained weights.
        rate = 1.0 - min(decay, (1 + step) / (10 + step))
        for average, param in zip(self.ema.parameters(), self.net.parameters()):
            average.lerp_(param.detach().to(average.dtype), rate)
        for kept, buffer in zip(self.ema.buffers(), self.net.buffers()):
            kept.copy_(buffer)


@attrs.frozen(eq=False)
class LoopResult:
    trainee: Trainee
    start_step: int
    step: int
    interrupted: bool
    losses: list[float]
    loss_ema: float | None
    step_seconds: list[float]

    @property
    def finished(self) -> bool:
        return not self.interrupted

    @property
    def seconds_per_step(self) -> float:
        """Mean wall time per step, the first (warm-up) step left out when there are others."""
        times = self.step_seconds[1:] or self.step_seconds
        return sum(times) / len(times) if times else math.nan


def warmup_factor(warmup_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0

    return factor


def run_identity(config: LoopConfig, task: Task, backend: Backend) -> dict[str, Any]:
    identity: dict[str, Any] = {"loop": attrs.asdict(config), "task": task.identity()}
    del identity["loop"]["steps"]  # constant LR: a run may be extended
    identity["num_processes"] = backend.num_processes
    # As it reads back from JSON (tuples become lists), so equal means equal.
    normalised: dict[str, Any] = json.loads(json.dumps(identity))
    return normalised


def run_loop(
    net: nn.Module,
    task: Task,
    config: LoopConfig,
    *,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    backend: Backend | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> LoopResult:
    """Train `net` with `task`'s loss up to `config.steps`; see the module docstring.

    Checkpoints go to `checkpoint_dir` every `checkpoint_every` steps (0: only at the end), when
    `should_stop()` turns true (the loop then returns with `interrupted=True`) and at the end. A
    NaN or inf loss or gradient norm raises `NonFiniteLossError` before that step's update.
    """
    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    backend = backend if backend is not None else SingleProcess()
    trainee = Trainee(net).to(backend.device)
    optimizer = torch.optim.AdamW(
        [p for p in trainee.net.parameters() if p.requires_grad],
        lr=config.lr,
        weight_decay=config.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_factor(config.warmup_steps))
    identity = run_identity(config, task, backend)
    start, loss_ema = 0, None
    if resume:
        assert checkpoint_dir is not None
        start, loss_ema = _restore(checkpoint_dir, trainee, optimizer, scheduler, identity)
    model, optimizer = backend.prepare(trainee.net, optimizer)
    last_saved: int | None = start if resume else None

    def save(step: int) -> None:
        nonlocal last_saved
        if checkpoint_dir is not None:
            last_saved = step
        if checkpoint_dir is not None and backend.is_main_process:
            save_training_state(
                checkpoint_dir,
                step=step,
                model=trainee,
                optimizer=optimizer,
                scheduler=scheduler,
                info={"identity": identity, "loss_ema": loss_ema},
            )
        backend.wait_for_everyone()

    losses: list[float] = []
    step_seconds: list[float] = []
    step, interrupted = start, False
    tick = time.perf_counter()
    while step < config.steps and not interrupted:
        lr = float(optimizer.param_groups[0]["lr"])
        generator = step_generator(config.seed, step, backend.process_index)
        model.train()
        with torch.autocast(
            backend.device.type,
            dtype=config.autocast_dtype,
            enabled=config.autocast_dtype is not None,
        ):
            loss, parts = task.loss(model, step, generator)
        optimizer.zero_grad(set_to_none=True)
        backend.backward(loss)
        grad_norm = float(backend.clip_grad_norm_(model.parameters(), config.max_grad_norm))
        # Before the update: the weights, their EMA and every checkpoint stay finite.
        check_step_finite(step + 1, float(loss.detach()), grad_norm, lr, last_saved)
        optimizer.step()
        scheduler.step()
        trainee.update_ema(config.ema_decay, step)
        step += 1
        value = float(loss.detach())
        losses.append(value)
        loss_ema = value if loss_ema is None else 0.95 * loss_ema + 0.05 * value
        now = time.perf_counter()
        step_seconds.append(now - tick)
        tick = now
        if on_step is not None and backend.is_main_process:
            on_step(
                StepReport(
                    step, config.steps, value, loss_ema, lr, grad_norm, parts, step_seconds[-1]
                )
            )
        interrupted = bool(should_stop and should_stop())
        due = checkpoint_every > 0 and step % checkpoint_every == 0
        if due or interrupted or step == config.steps:
            save(step)
            tick = time.perf_counter()  # checkpoint I/O is not step time
    trainee.eval()
    return LoopResult(trainee, start, step, interrupted, losses, loss_ema, step_seconds)


def _restore(
    checkpoint_dir: str | os.PathLike[str],
    trainee: Trainee,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    identity: dict[str, Any],
) -> tuple[int, float | None]:
    if not has_training_state(checkpoint_dir):
        raise ResumeError(f"no training checkpoint to resume in {checkpoint_dir}")
    try:
        state = load_training_state(
            checkpoint_dir, model=trainee, optimizer=optimizer, scheduler=scheduler
        )
    except (FileNotFoundError, ValueError) as exc:
        raise ResumeError(str(exc)) from exc
    check_identity(state["info"].get("identity", {}), identity, Path(checkpoint_dir))
    return int(state["step"]), state["info"].get("loss_ema")


def _differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = sorted(set(saved) | set(current))
        return [
            d for k in keys for d in _differences(saved.get(k), current.get(k), f"{prefix}{k}.")
        ]
    if saved == current:
        return []
    return [f"{prefix.rstrip('.')}: checkpoint {saved!r}, now {current!r}"]


def check_identity(saved: dict[str, Any], current: dict[str, Any], source: Path) -> None:
    """Refuse to resume a checkpoint made with settings (or data) that change the result."""
    problems = _differences(saved, current)
    if problems:
        raise ResumeError(
            f"cannot resume from {source}: it was made with other settings ("
            + "; ".join(problems)
            + "). Only --steps may change on a resume; repeat the other options as they were, "
            "or delete the checkpoint to start over"
        )
