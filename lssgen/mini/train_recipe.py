"""How every lssgen-mini stage (VAE, transformer) trains, on the shared loop
(`lssgen.training.loop`). Two choices, both for training in budgeted pieces on CPU:

* Everything random in step k (which scenes, crops, timesteps, noise) is drawn from a generator
  seeded by (seed, k), so a resumed run sees exactly the data of an uninterrupted one: K + K steps
  give bit for bit the weights of 2K steps (tests check it).
* The learning rate is constant after a linear warm-up, and an exponential moving average of the
  weights (what gets exported) does the annealing. Nothing depends on the total step count, so a
  finished run can be extended: `--resume --steps <more>`. `steps` is therefore not part of the
  resume identity.

The checkpoint holds the network and its EMA (`lssgen.training.ema.Trainee`); its identity is
`{"loop": LoopConfig without steps, "task": Task.identity()}`. Both are the format the stages
have written since the first shipped model: a change to `LoopConfig`'s fields or to a task's
identity stops older checkpoints from resuming (`tests/mini/test_mini_train_recipe.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import numpy as np
import torch
from torch import Tensor, nn

from lssgen.dtypes import TRAINING_DTYPES, autocast_dtype
from lssgen.training.loop import LoopSettings, RunOptions, TrainResult, run_training
from lssgen_core.validation import fraction, non_negative, one_of, positive

if TYPE_CHECKING:
    from typing_extensions import Unpack


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
    dtype: str = attrs.field(default="fp32", validator=one_of(TRAINING_DTYPES))

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return autocast_dtype(self.dtype)


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


@attrs.frozen
class SeededSteps:
    """A stage's `Task` as the loop's step: step k's inputs are k and its generator."""

    task: Task
    seed: int
    rank: int

    def inputs(self, step: int) -> tuple[int, torch.Generator]:
        return step, step_generator(self.seed, step, self.rank)

    def loss(
        self, net: nn.Module, inputs: tuple[int, torch.Generator]
    ) -> tuple[Tensor, Mapping[str, float]]:
        return self.task.loss(net, *inputs)


def warmup_factor(warmup_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0

    return factor


def make_optimizer(
    parameters: list[nn.Parameter], config: LoopConfig
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW at a constant learning rate after a linear warm-up."""
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_factor(config.warmup_steps)
    )


def run_identity(config: LoopConfig, task: Task) -> dict[str, Any]:
    loop = attrs.asdict(config)
    del loop["steps"]  # constant LR: a run may be extended
    return {"loop": loop, "task": task.identity()}


RESUME_ADVICE = (
    "Only --steps may change on a resume; repeat the other options as they were, "
    "or delete the checkpoint to start over"
)


def run_loop(
    net: nn.Module,
    task: Task,
    config: LoopConfig,
    **options: Unpack[RunOptions],
) -> TrainResult[nn.Module]:
    """Train `net` with `task`'s loss up to `config.steps`; see the module docstring. `options`
    (`RunOptions`): checkpoints, resume, backend, progress and stop. The result's `ema` is what a
    stage exports."""
    settings = LoopSettings(
        steps=config.steps,
        max_grad_norm=config.max_grad_norm,
        autocast_dtype=config.autocast_dtype,
        ema_decay=config.ema_decay,
    )
    backend = options.get("backend")
    rank = backend.process_index if backend is not None else 0
    return run_training(
        net,
        SeededSteps(task, config.seed, rank),
        settings,
        lambda parameters: make_optimizer(parameters, config),
        identity=run_identity(config, task),
        resume_advice=RESUME_ADVICE,
        **options,
    )


def exported(result: TrainResult[nn.Module]) -> nn.Module:
    """What a stage exports: the EMA of the trained weights (`run_loop` always keeps one)."""
    if result.ema is None:
        raise ValueError("this result has no EMA: it did not come from run_loop")
    return result.ema
