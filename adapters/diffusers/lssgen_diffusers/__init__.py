"""lssgen_diffusers: LSSGen for Diffusers pipelines.

Each pipeline subclasses the stock Diffusers pipeline and adds the arguments ``start_sigma``,
``min_size`` (alias ``min_resolution``), ``shorten_intermediate_steps``, ``scaling_mode`` and
``entry_rule`` (see :mod:`lssgen_diffusers.options` for the per-pipeline defaults) and an optional
``latent_upsampler`` component::

    from lssgen_diffusers import LSSFluxPipeline, LatentUpSampler

    upsampler = LatentUpSampler.from_pretrained(UPSAMPLER_PATH, torch_dtype=dtype).to(device)
    pipe = LSSFluxPipeline.from_pretrained(
        MODEL_PATH, latent_upsampler=upsampler, torch_dtype=dtype
    ).to(device)
    image = pipe(prompt, height=1024, width=1024, num_inference_steps=50, guidance_scale=3.5,
                 start_sigma=0.75, shorten_intermediate_steps=True).images[0]

Tiny offline stock pipelines for tests and demos live in ``lssgen_diffusers.testing`` (imported
on demand, not here).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lssgen_diffusers.registry import FAMILIES

if TYPE_CHECKING:
    # For mypy and IDEs. `X as X` marks the registry's pipelines as re-exported: __all__ lists
    # them, but is built from the registry, which type checkers do not run.
    from lssgen_core.plan import LSSPlanWarning
    from lssgen_core.upsample import LatentUpSampler, LatentUpsampler
    from lssgen_diffusers.call_checks import NonFiniteLatentError
    from lssgen_diffusers.cogview4 import LSSCogView4Pipeline as LSSCogView4Pipeline
    from lssgen_diffusers.family import LSSFamily
    from lssgen_diffusers.flux import LSSFluxPipeline as LSSFluxPipeline
    from lssgen_diffusers.flux2 import LSSFlux2Pipeline as LSSFlux2Pipeline
    from lssgen_diffusers.flux2_klein import LSSFlux2KleinPipeline as LSSFlux2KleinPipeline
    from lssgen_diffusers.hidream import LSSHiDreamImagePipeline as LSSHiDreamImagePipeline
    from lssgen_diffusers.krea2 import LSSKrea2Pipeline as LSSKrea2Pipeline
    from lssgen_diffusers.ltx import LSSLTXPipeline
    from lssgen_diffusers.lumina2 import LSSLumina2Pipeline as LSSLumina2Pipeline
    from lssgen_diffusers.mixin import LSSPipelineMixin
    from lssgen_diffusers.options import (
        COGVIEW4_DEFAULTS,
        FLUX_DEFAULTS,
        SD3_DEFAULTS,
        SD_DEFAULTS,
        SDXL_DEFAULTS,
        LSSOptions,
    )
    from lssgen_diffusers.qwen_image import LSSQwenImagePipeline as LSSQwenImagePipeline
    from lssgen_diffusers.registry import Family, LSSDefaults
    from lssgen_diffusers.sana import LSSSanaPipeline as LSSSanaPipeline
    from lssgen_diffusers.scheduler_view import SchedulerView, entered_scheduler
    from lssgen_diffusers.sd import LSSStableDiffusionPipeline as LSSStableDiffusionPipeline
    from lssgen_diffusers.sd3 import LSSStableDiffusion3Pipeline as LSSStableDiffusion3Pipeline
    from lssgen_diffusers.sdxl import LSSStableDiffusionXLPipeline as LSSStableDiffusionXLPipeline
    from lssgen_diffusers.wan import LSSWanPipeline
    from lssgen_diffusers.z_image import LSSZImagePipeline as LSSZImagePipeline

# Each name is imported from its module on first use, for start-up speed: the pipelines import
# Diffusers (seconds), which `lssgen generate --help` and the options / call-defaults modules
# do not need.
_EXPORTS: dict[str, str] = {
    # The pipelines, one per family of the registry.
    **{family.lss_class: family.module for family in FAMILIES.values()},
    "Family": "lssgen_diffusers.registry",
    "LSSDefaults": "lssgen_diffusers.registry",
    "LSSFamily": "lssgen_diffusers.family",
    "LSSPlanWarning": "lssgen_core.plan",
    "LatentUpSampler": "lssgen_core.upsample",
    "LatentUpsampler": "lssgen_core.upsample",
    "NonFiniteLatentError": "lssgen_diffusers.call_checks",
    # The video families (not in the image registry: `lssgen generate` makes images).
    "LSSLTXPipeline": "lssgen_diffusers.ltx",
    "LSSWanPipeline": "lssgen_diffusers.wan",
    "LSSPipelineMixin": "lssgen_diffusers.mixin",
    "COGVIEW4_DEFAULTS": "lssgen_diffusers.options",
    "FLUX_DEFAULTS": "lssgen_diffusers.options",
    "SD3_DEFAULTS": "lssgen_diffusers.options",
    "SD_DEFAULTS": "lssgen_diffusers.options",
    "SDXL_DEFAULTS": "lssgen_diffusers.options",
    "LSSOptions": "lssgen_diffusers.options",
    "SchedulerView": "lssgen_diffusers.scheduler_view",
    "entered_scheduler": "lssgen_diffusers.scheduler_view",
}

__all__ = [
    "COGVIEW4_DEFAULTS",
    "FAMILIES",
    "FLUX_DEFAULTS",
    "SD3_DEFAULTS",
    "SDXL_DEFAULTS",
    "SD_DEFAULTS",
    "Family",
    "LSSDefaults",
    "LSSFamily",
    "LSSOptions",
    "LSSPipelineMixin",
    "LSSPlanWarning",
    "LatentUpSampler",
    "LatentUpsampler",
    "NonFiniteLatentError",
    "SchedulerView",
    "entered_scheduler",
    # The pipelines, one per family of the registry, then the video ones.
    *(family.lss_class for family in FAMILIES.values()),
    "LSSLTXPipeline",
    "LSSWanPipeline",
]


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
