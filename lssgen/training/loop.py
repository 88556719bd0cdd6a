"""The one resumable training loop: the upsampler's (`lssgen.training.train`) and lssgen-mini's
stages' (`lssgen.mini.train_recipe`).

A trainer gives the network, a `StepTask` (the inputs of step k, and the loss on them), its
optimizer and LR schedule (`Optimize`), and the identity of the run; the loop does the rest, the
same way for every trainer:

* optimizer steps with gradient clipping, under bf16 autocast when asked (weights stay fp32);
* a NaN or inf loss or gradient norm stops before that step's update (`NonFiniteLossError`),
  so the weights in memory and every checkpoint written so far are finite;
* optionally an EMA of the weights (`lssgen.training.ema`), stored in the checkpoint with them;
* checkpoints every `checkpoint_every` steps, when `should_stop()` turns true (the loop then
  returns with `interrupted=True`) and at the end: safetensors only, written atomically
  (`lssgen.training.checkpoint`); `resume=True` continues from one after checking that it was
  made with the same identity (`lssgen.training.resume`);
* on several processes (`lssgen.training.backend`): the logged loss is the mean over them, and
  the stop flag is all-reduced, so every process leaves the loop at the same step.

Steps are optimizer steps; the task draws the data of step k from k alone, so K + K resumed steps
reach the weights of 2K uninterrupted ones, bit for bit (the trainers' tests check it).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypedDict, TypeVar, cast

import attrs
import torch
from torch import Tensor, nn

from lssgen.training.backend import Backend, SingleProcess, any_process, mean_over_processes
from lssgen.training.checkpoint import save_training_state
from lssgen.training.ema import Trainee
from lssgen.training.resume import normalised_identity, restore
from lssgen_core.validation import positive

if TYPE_CHECKING:
    from typing_extensions import Unpack

Inputs = TypeVar("Inputs")
Inputs_contra = TypeVar("Inputs_contra", contravariant=True)
Net = TypeVar("Net", bound=nn.Module)
Optimize = Callable[
    [list[nn.Parameter]],
    tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler],
]


class StepTask(Protocol[Inputs]):
    """A trainer's part of one step."""

    def inputs(self, step: int) -> Inputs:
        """The data of step `step` (0-based), made outside autocast (e.g. VAE-encoded crops)."""
        ...

    def loss(self, net: nn.Module, inputs: Inputs) -> tuple[Tensor, Mapping[str, float]]:
        """The loss to minimise (under autocast when asked) and its parts, for the log."""
        ...


@attrs.frozen
class LoopSettings:
    """How the loop runs, apart from the task and the optimizer."""

    steps: int = attrs.field(validator=positive)  # total optimizer steps, resumed ones included
    max_grad_norm: float = attrs.field(validator=positive)
    autocast_dtype: torch.dtype | None = None
    ema_decay: float | None = None  # keep an EMA of the weights with this decay


class RunOptions(TypedDict, total=False):
    """Where a run checkpoints, on what it runs, and who watches it: the same for every trainer,
    passed through them to `run_training` as they are."""

    checkpoint_dir: str | os.PathLike[str] | None  # None: no checkpoints
    checkpoint_every: int  # steps between checkpoints; 0 (the default): only at the end
    resume: bool  # continue from the checkpoint in checkpoint_dir
    backend: Backend | None  # None: `SingleProcess` on the network's device
    on_step: Callable[[StepReport], None] | None  # called on the main process after each step
    should_stop: Callable[[], bool] | None  # checkpoint and return once it turns true


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
class TrainResult(Generic[Net]):
    model: Net  # the trained network, unwrapped, in eval mode
    ema: Net | None  # its EMA, where the loop kept one
    start_step: int  # step this invocation began at (> 0 after a resume)
    step: int  # steps completed in total
    total_steps: int  # steps the run was asked for
    interrupted: bool
    losses: list[float]  # loss of every step of this invocation
    loss_ema: float | None
    step_seconds: list[float]

    @property
    def seconds_per_step(self) -> float:
        """Mean wall time per step, the first (warm-up) step left out when there are others."""
        times = self.step_seconds[1:] or self.step_seconds
        return sum(times) / len(times) if times else math.nan


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


def _device_of(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


def run_training(
    net: Net,
    task: StepTask[Any],
    settings: LoopSettings,
    optimize: Optimize,
    *,
    identity: Mapping[str, Any],
    resume_advice: str,
    **options: Unpack[RunOptions],
) -> TrainResult[Net]:
    """Train `net` in place up to `settings.steps`; see the module docstring and `RunOptions`.

    `optimize(parameters)` makes the optimizer and its LR schedule (after the network is on the
    backend's device, so resumed moments land there). `identity` is what must not change on a
    resume (the process count is added); `resume_advice` ends the error that refuses one.
    """
    checkpoint_dir = options.get("checkpoint_dir")
    checkpoint_every = options.get("checkpoint_every", 0)
    resume = options.get("resume", False)
    on_step, should_stop = options.get("on_step"), options.get("should_stop")
    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    backend = options.get("backend")
    if backend is None:
        backend = SingleProcess(_device_of(net))
    trainee = Trainee(net) if settings.ema_decay is not None else None
    held: nn.Module = trainee if trainee is not None else net  # what a checkpoint holds
    held.to(backend.device)  # before the optimizer exists, so loaded moments land on this device
    optimizer, scheduler = optimize([p for p in net.parameters() if p.requires_grad])
    run_identity = normalised_identity({**identity, "num_processes": backend.num_processes})
    start, loss_ema = 0, None
    if resume:
        assert checkpoint_dir is not None
        start, loss_ema = restore(
            checkpoint_dir,
            model=held,
            optimizer=optimizer,
            scheduler=scheduler,
            identity=run_identity,
            advice=resume_advice,
        )
    model, prepared_optimizer = backend.prepare(net, optimizer)
    last_saved: int | None = start if resume else None

    def save(step: int) -> None:
        nonlocal last_saved
        if checkpoint_dir is None:
            return
        last_saved = step
        if backend.is_main_process:
            save_training_state(
                checkpoint_dir,
                step=step,
                model=held,
                optimizer=optimizer,
                scheduler=scheduler,
                info={"identity": run_identity, "loss_ema": loss_ema},
            )
        backend.wait_for_everyone()

    autocast_dtype = settings.autocast_dtype
    losses: list[float] = []
    step_seconds: list[float] = []
    step, interrupted = start, False
    tick = time.perf_counter()
    while step < settings.steps and not interrupted:
        inputs = task.inputs(step)
        lr = float(optimizer.param_groups[0]["lr"])
        model.train()
        with torch.autocast(
            backend.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
        ):
            loss, parts = task.loss(model, inputs)
        prepared_optimizer.zero_grad(set_to_none=True)
        backend.backward(loss)
        grad_norm = float(backend.clip_grad_norm_(model.parameters(), settings.max_grad_norm))
        # Before the update: the weights, their EMA and every checkpoint stay finite.
        check_step_finite(step + 1, float(loss.detach()), grad_norm, lr, last_saved)
        prepared_optimizer.step()
        scheduler.step()
        if trainee is not None:
            assert settings.ema_decay is not None
            trainee.update_ema(settings.ema_decay, step)
        step += 1
        value = mean_over_processes(loss.detach(), backend)
        losses.append(value)
        loss_ema = value if loss_ema is None else 0.95 * loss_ema + 0.05 * value
        now = time.perf_counter()
        step_seconds.append(now - tick)
        tick = now
        if on_step is not None and backend.is_main_process:
            report = StepReport(
                step, settings.steps, value, loss_ema, lr, grad_norm, parts, step_seconds[-1]
            )
            on_step(report)
        interrupted = any_process(bool(should_stop and should_stop()), backend)
        due = checkpoint_every > 0 and step % checkpoint_every == 0
        if due or interrupted or step == settings.steps:
            save(step)
            tick = time.perf_counter()  # checkpoint I/O is not step time
    held.eval()
    # A deep copy of `net`, so of its type.
    ema = cast(Net, trainee.ema) if trainee is not None else None
    return TrainResult(
        net, ema, start, step, settings.steps, interrupted, losses, loss_ema, step_seconds
    )
