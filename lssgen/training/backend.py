"""Where a training loop runs: one process in plain torch, or `accelerate` (several processes).

The loop talks to a `Backend`, the subset of `accelerate.Accelerator` it uses (prepare, backward,
clip_grad_norm_, reduce, ...). The commands pass a real `Accelerator` (`Accelerator(cpu=True)` on
the CPU), so `accelerate launch -m lssgen ...` trains data-parallel; `SingleProcess` does what an
`Accelerator` does with one process, in plain torch, so the loop never imports accelerate.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
import torch
from torch import Tensor


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

    def wait_for_everyone(self) -> None:
        pass

    def reduce(self, tensor: Tensor, reduction: str = "sum") -> Tensor:
        return tensor


def any_process(flag: bool, backend: Backend) -> bool:
    """Whether `flag` is true on any process (every process gets the same answer)."""
    if backend.num_processes == 1:
        return flag
    # Every rank must leave the loop at the same step or the next all-reduce hangs.
    total = backend.reduce(torch.tensor([float(flag)], device=backend.device), "sum")
    return bool(total.item() > 0)


def mean_over_processes(value: Tensor, backend: Backend) -> float:
    """The mean of a scalar over the processes (the value itself with one process)."""
    if backend.num_processes == 1:
        return float(value)
    return float(backend.reduce(value, "mean"))
