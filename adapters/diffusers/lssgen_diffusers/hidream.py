"""LSS for HiDream-I1 (Full, Dev, Fast): ``LSSHiDreamImagePipeline``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from diffusers import HiDreamImagePipeline, UniPCMultistepScheduler
from diffusers.pipelines.hidream_image.pipeline_hidream_image import calculate_shift

from lssgen_core.schedules import StageSize
from lssgen_diffusers.family import set_stock_timesteps
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of

_PROMPTS = ("prompt", "prompt_2", "prompt_3", "prompt_4")


def stock_generated_size(
    height: int, width: int, sample_size: float, vae_scale_factor: int
) -> tuple[int, int]:
    """The size ``HiDreamImagePipeline.__call__`` generates when asked for ``height`` x ``width``:
    it keeps only the aspect ratio, scales the size to the area of its ``default_sample_size``
    (``sample_size`` latent pixels square) and rounds each side down to a multiple of
    ``2 * vae_scale_factor``. The same float operations in the same order as the stock call, so
    the result is the stock one bit for bit."""
    division = vae_scale_factor * 2
    area = (sample_size * vae_scale_factor) ** 2
    scale = math.sqrt(area / (width * height))
    return int(height * scale // division * division), int(width * scale // division * division)


def sample_size_keeping(height: int, width: int, vae_scale_factor: int) -> float:
    """A ``default_sample_size`` for which the stock call generates ``height`` x ``width`` itself
    (both multiples of ``2 * vae_scale_factor``): the side of a square of their area, raised by a
    few ulps where rounding would otherwise take a side one multiple down."""
    side = math.sqrt(height * width) / vae_scale_factor
    for _ in range(16):
        if stock_generated_size(height, width, side, vae_scale_factor) == (height, width):
            return int(side) if side.is_integer() else side
        side = math.nextafter(side, math.inf)
    raise ValueError(
        f"{height}x{width} is no size HiDreamImagePipeline generates: height and width must be "
        f"multiples of {2 * vae_scale_factor}"
    )


class _StageSampleSize:
    """``default_sample_size`` of an LSS HiDream pipeline: the stock value (what ``__init__`` or
    the user set), except while a stage runs, when it is the value that makes the stock
    ``__call__`` generate that stage's size instead of scaling it to the full area."""

    def __get__(self, pipe: Any, owner: type | None = None) -> Any:
        if pipe is None:
            return self
        stage = pipe.lss_stage
        if stage is not None:
            return sample_size_keeping(stage.height, stage.width, pipe.vae_scale_factor)
        try:
            return vars(pipe)["_lss_default_sample_size"]
        except KeyError:
            raise AttributeError("default_sample_size") from None  # before __init__ sets it

    def __set__(self, pipe: Any, value: Any) -> None:
        vars(pipe)["_lss_default_sample_size"] = value


class LSSHiDreamImagePipeline(LSSPipelineMixin, HiDreamImagePipeline):
    __doc__ = (
        """``HiDreamImagePipeline`` with latent space scaling (LSSGen).

    Sizes: the stock call keeps only the aspect ratio of the size asked for and generates at the
    area of ``default_sample_size`` (1024 x 1024 px for the released models), rounded to
    multiples of 16 px; the plan's target is that size, and each stage runs at its own size (the
    stage sets ``default_sample_size`` to its own area while it runs).
    Latents are not packed: the stock call passes ``(B, 16, h, w)`` (FLUX.1's VAE space, scaled
    by its ``scaling_factor`` / ``shift_factor``), and the transformer patchifies them 2x2 itself,
    padding a non-square latent to ``max_seq`` tokens with its own mask, ``img_sizes`` and
    ``img_ids`` at every stage (so a smaller non-square stage costs as many tokens per step as the
    full size; square sizes gain the full LSS saving).
    Schedule: the shift does not depend on the size (``mu`` is the constant
    ``calculate_shift(transformer.max_seq)``, used only with ``use_dynamic_shifting``; a
    ``UniPCMultistepScheduler`` gets the step count alone), so every stage has the stock
    schedule of its step count.
    Prompts: the two CLIP encoders (pooled), T5 and Llama 3.1 (hidden states of every layer,
    stacked as ``(layers, B, tokens, width)``: the batch is axis 1) run once per call, with
    ``prompt_2`` / ``prompt_3`` / ``prompt_4`` and their negatives; the stock encoder repeats all
    of them per image on their own batch axes.
    Defaults: ``min_size=512``, ``shorten_intermediate_steps=False``, 50 steps, guidance 5.0 (the
    stock call's).
    Extra component: ``latent_upsampler`` (a 16-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("hidream").defaults
    lss_prompt_arguments = (*_PROMPTS, *(f"negative_{name}" for name in _PROMPTS))
    lss_encode_outputs = (
        "prompt_embeds_t5",
        "negative_prompt_embeds_t5",
        "prompt_embeds_llama3",
        "negative_prompt_embeds_llama3",
        "pooled_prompt_embeds",
        "negative_pooled_prompt_embeds",
    )
    # The stock encode_prompt gets num_images_per_prompt and repeats every output per image on its
    # batch axis (axis 1 for the stacked Llama layers); the default repeat works on axis 0, so it
    # is left to the outputs whose batch axis that is (already one row per image: a no-op).
    lss_per_image_arguments = (
        "prompt_embeds_t5",
        "negative_prompt_embeds_t5",
        "pooled_prompt_embeds",
        "negative_pooled_prompt_embeds",
    )
    lss_lora_argument = "attention_kwargs"
    lss_batch_argument = "pooled_prompt_embeds"  # the stock call's batch without a prompt

    default_sample_size = _StageSampleSize()

    def lss_stock_size(self, height: int, width: int) -> tuple[int, int]:
        return stock_generated_size(height, width, self.default_sample_size, self.vae_scale_factor)

    def lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        # As HiDreamImagePipeline.__call__: UniPC by the step count alone; otherwise the
        # constant mu of the transformer's max_seq (whatever the stage's size) and no sigmas.
        # Inside a stage the stock isinstance check sees the SchedulerView and passes UniPC that
        # mu too, which it ignores without dynamic shifting (the same schedule, as the run-time
        # check confirms); with dynamic shifting the stock UniPC branch fails, and so does this.
        if isinstance(scheduler, UniPCMultistepScheduler):
            scheduler.set_timesteps(num_steps, device="cpu")
            return
        mu = calculate_shift(self.transformer.max_seq)
        set_stock_timesteps(scheduler, num_steps, sigmas=None, mu=mu)
