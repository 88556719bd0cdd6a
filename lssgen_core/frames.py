"""The frame axis of video latents: frames a plan's tokens span, the same in every stage.

Video models (Wan, LTX-Video) denoise ``[B, C, F, H, W]`` latents. LSS stages scale height and
width only (the paper's open question 1 is whether spatial scaling carries over to video; time is
left alone), so every stage keeps the target's ``F`` latent frames and a stage of ``h x w``
latent pixels has ``F / temporal_patch x (h / patch) x (w / patch)`` tokens. The planner, the
cost model and ``StagePlan.describe()`` count tokens that way once a plan is given a
:class:`FrameAxis`; without one a plan is an image plan, exactly as before.
"""

from __future__ import annotations

import numbers
from typing import Any

import attrs

from lssgen_core.errors import LSSArgumentError, LSSArgumentTypeError


def _positive_int(_instance: object, attribute: attrs.Attribute[int], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise LSSArgumentError(
            attribute.name, f"{attribute.name}={value!r} must be an integer >= 1"
        )


@attrs.frozen
class FrameAxis:
    """How many frames a video plan spans: as asked, in the latent, and in tokens."""

    num_frames: int = attrs.field(validator=_positive_int)  # frames of the video
    latent_frames: int = attrs.field(validator=_positive_int)  # frames of the latent
    temporal_patch_size: int = attrs.field(default=1, validator=_positive_int)

    def __attrs_post_init__(self) -> None:
        if self.latent_frames % self.temporal_patch_size:
            raise LSSArgumentError(
                "num_frames",
                f"{self.latent_frames} latent frames do not split into temporal patches of "
                f"{self.temporal_patch_size}",
            )

    @property
    def token_frames(self) -> int:
        """Frames of the token grid (latent frames over the temporal patch)."""
        return self.latent_frames // self.temporal_patch_size

    def describe(self) -> str:
        return f"{self.num_frames} frames ({self.latent_frames} latent)"


def causal_latent_frames(num_frames: int, temporal_compression: int) -> int:
    """Latent frames of a causal video VAE (Wan, LTX-Video): the first frame alone, then one
    latent frame per ``temporal_compression`` frames (``(F - 1) // c + 1``, as the pipelines
    compute it)."""
    return (num_frames - 1) // temporal_compression + 1


def check_num_frames(
    num_frames: Any, temporal_compression: int, *, exact: bool, argument: str = "num_frames"
) -> int:
    """``num_frames`` as an int a causal VAE of ``temporal_compression`` takes, or an error
    naming ``argument``. ``exact``: refuse counts that are not ``k * c + 1`` (a pipeline that
    would silently make another count); otherwise only counts below 1 and non-integers."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, numbers.Integral):
        raise LSSArgumentTypeError(argument, f"{argument} must be an integer, got {num_frames!r}")
    frames = int(num_frames)
    if frames < 1:
        raise LSSArgumentError(argument, f"{argument}={frames} must be an integer >= 1")
    if exact and (frames - 1) % temporal_compression:
        below = (frames - 1) // temporal_compression * temporal_compression + 1
        raise LSSArgumentError(
            argument,
            f"{argument}={frames} must be k * {temporal_compression} + 1 (1, "
            f"{temporal_compression + 1}, {2 * temporal_compression + 1}, ...), the counts this "
            f"video VAE decodes; the pipeline would return {below} frames. Pass {below} or "
            f"{below + temporal_compression}",
        )
    return frames


def video_frame_axis(
    num_frames: int, temporal_compression: int, temporal_patch_size: int = 1
) -> FrameAxis:
    """The frame axis of a ``num_frames`` video through a causal VAE."""
    return FrameAxis(
        num_frames,
        causal_latent_frames(num_frames, temporal_compression),
        temporal_patch_size,
    )


def stage_tokens(
    latent_height: int, latent_width: int, patch_size: int, frames: FrameAxis | None = None
) -> int:
    """Tokens of a stage: ``frames x (h / patch) x (w / patch)`` (one frame for images)."""
    per_frame = (latent_height // patch_size) * (latent_width // patch_size)
    return per_frame * (1 if frames is None else frames.token_frames)
