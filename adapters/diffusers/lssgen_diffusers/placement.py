"""Where the latent upsampler sits, relative to the pipeline it belongs to.

Diffusers infers a pipeline's ``device`` and ``dtype`` from its first component module by name,
and ``latent_upsampler`` sorts before every stock component: an upsampler left on another device
(or in another dtype) would be reported as the whole pipeline's, and the text encoders would then
get inputs on the wrong device, failing with no mention of the upsampler.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from lssgen_diffusers.component import COMPONENT_NAME


@contextmanager
def upsampler_hidden(pipeline: Any) -> Iterator[None]:
    """The block sees the pipeline without its upsampler (instance attribute only; the config
    and the registered component are untouched)."""
    fields = vars(pipeline)
    upsampler = fields.get(COMPONENT_NAME)
    if upsampler is None:
        yield
        return
    fields[COMPONENT_NAME] = None
    try:
        yield
    finally:
        fields[COMPONENT_NAME] = upsampler


def same_device(a: torch.device, b: torch.device) -> bool:
    # "cuda" and "cuda:0" are the same place when one of them gives no index.
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def check_upsampler_device(upsampler: torch.nn.Module, runs_on: torch.device) -> None:
    """Refuse an upsampler whose weights are not where the pipeline runs (ValueError naming it).

    Refused rather than moved: the caller placed it, and moving it would change their module
    behind their back. Offloading hooks move it themselves when it runs, so hooked modules pass.
    """
    if hasattr(upsampler, "_hf_hook") or hasattr(upsampler, "_diffusers_hook"):
        return
    parameter = next(upsampler.parameters(), None)
    if parameter is None or same_device(parameter.device, runs_on):
        return
    raise ValueError(
        f"{COMPONENT_NAME} is on {parameter.device} but the pipeline runs on {runs_on}; move it "
        f"with pipe.{COMPONENT_NAME}.to({str(runs_on)!r}) (pipe.to(...) moves every component), "
        "or choose scaling_mode='latent'"
    )
