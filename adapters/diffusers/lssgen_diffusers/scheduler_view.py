"""Entering a stage part-way through its schedule while the stock ``__call__`` runs unchanged.

Diffusers' img2img pipelines enter a schedule mid-way by calling ``set_timesteps``, iterating
``timesteps[start * order:]`` and calling ``scheduler.set_begin_index(start * order)``; the
scheduler itself keeps its full schedule. The text-to-image ``__call__`` we reuse reads the loop's
timesteps from ``scheduler.timesteps`` right after ``set_timesteps``, and FLUX / SDXL then call
``set_begin_index(0)``. So for the duration of one stage the pipeline's ``scheduler`` attribute is
a :class:`SchedulerView`: a thin proxy whose ``timesteps`` start at the entry step, whose
``set_begin_index`` counts from the entry step, and which forwards everything else to the real
scheduler. Truncating the real scheduler's ``timesteps`` instead would desynchronise schedulers
that compare their step index with ``len(self.timesteps)`` (DPM-Solver / UniPC "lower order
final": the last step to sigma 0 then divides by zero).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from lssgen_diffusers.scheduler_levels import entry_timesteps

ScheduleCheck = Callable[[Any], None]


class SchedulerView:
    """The scheduler as one stage's stock ``__call__`` sees it (entered at ``start_index``)."""

    def __init__(
        self,
        scheduler: Any,
        start_index: int,
        check: ScheduleCheck | None = None,
        *,
        renoised: bool | None = None,
    ) -> None:
        """``renoised``: the stage's ``latents`` arrive already noised to the entry level (every
        stage after the first, even one entering at index 0); default ``start_index > 0``."""
        fields = vars(self)
        fields["_scheduler"] = scheduler
        fields["_start"] = start_index
        fields["_check"] = check
        fields["_renoised"] = start_index > 0 if renoised is None else renoised

        # Bound per instance and wrapped so that `inspect.signature` (used by the pipelines'
        # retrieve_timesteps to see whether custom sigmas / timesteps are accepted) sees the real
        # scheduler's parameters.
        @functools.wraps(scheduler.set_timesteps)
        def set_timesteps(*args: Any, **kwargs: Any) -> None:
            self._set_timesteps(*args, **kwargs)

        fields["set_timesteps"] = set_timesteps

    @property
    def scheduler(self) -> Any:
        return self._scheduler

    def _set_timesteps(self, *args: Any, **kwargs: Any) -> None:
        self._scheduler.set_timesteps(*args, **kwargs)
        if self._check is not None:
            self._check(self._scheduler)
        self.set_begin_index(0)

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Begin index relative to the entry step (the stock loop's 0 is the entry)."""
        if hasattr(self._scheduler, "set_begin_index"):
            self._scheduler.set_begin_index(begin_index + self._start * self._scheduler.order)

    @property
    def timesteps(self) -> torch.Tensor:
        return entry_timesteps(self._scheduler, self._start)

    @property
    def sigmas(self) -> torch.Tensor:
        # Loop-relative too: CogView4 reports `scheduler.sigmas[i]` to callback_on_step_end.
        return self._scheduler.sigmas[self._start * self._scheduler.order :]

    @property
    def init_noise_sigma(self) -> float | torch.Tensor:
        # A later stage's latents arrive already re-noised to the entry level in the scheduler's
        # own latent space, so the stock prepare_latents must not scale them again. That holds
        # at entry index 0 too: a VE (Euler-type) latent at the first level is x0 + sigma * e,
        # which the stock scale (sqrt(sigma**2 + 1)) would blow up a second time.
        return 1.0 if self._renoised else self._scheduler.init_noise_sigma

    def __getattr__(self, name: str) -> Any:
        return getattr(vars(self)["_scheduler"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._scheduler, name, value)


@contextmanager
def entered_scheduler(
    pipeline: Any,
    start_index: int,
    check: ScheduleCheck | None = None,
    *,
    renoised: bool | None = None,
) -> Iterator[SchedulerView]:
    """Show ``pipeline`` a :class:`SchedulerView` as its ``scheduler`` until the block ends."""
    real = pipeline.scheduler
    view = SchedulerView(real, start_index, check, renoised=renoised)
    # Written into the instance dict: DiffusionPipeline.__setattr__ would otherwise re-register
    # the proxy as the pipeline's scheduler component in its config.
    vars(pipeline)["scheduler"] = view
    try:
        yield view
    finally:
        vars(pipeline)["scheduler"] = real
