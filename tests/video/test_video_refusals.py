"""Every LSS video pipeline refuses a bad size, frame count or argument of a two-stage call
before any work, naming the argument (each family's own rules: its frame rule, its latent
multiple, its schedule arguments)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from video_testkit import assert_refused_before_any_work, video_call

# 64x64, 9 frames: a size both tiny families decode (their test modules give the geometry);
# steps that make each family's two stages cheaper than one (else the plan warns).
SIZE, FRAMES = 64, 9
STEPS = {"wan": 8, "ltx": 12}

REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("wan", {"num_frames": 0}, "num_frames"),
    ("wan", {"num_frames": 9.5}, "num_frames"),
    ("wan", {"height": 80}, "height"),  # 80 px halves to 40 px: not a multiple of 16
    ("wan", {"num_videos_per_prompt": 0}, "num_videos_per_prompt"),
    ("wan", {"latents": torch.zeros(1, 16, 3, 8, 8)}, "latents"),  # the target's, not stage 0's
    ("wan", {"generator": [torch.Generator(), torch.Generator()]}, "generator"),
    ("ltx", {"num_frames": 10}, "num_frames"),  # stock would silently make 9
    ("ltx", {"num_frames": 0}, "num_frames"),
    ("ltx", {"height": 96}, "height"),  # 96 px halves to 48 px: not a multiple of 32
    ("ltx", {"num_videos_per_prompt": 0}, "num_videos_per_prompt"),
    ("ltx", {"latents": torch.zeros(1, 8, 128)}, "latents"),  # the target's, not stage 0's
    ("ltx", {"timesteps": [999, 500]}, "timesteps"),
]


@pytest.mark.parametrize(
    ("family", "overrides", "argument"),
    REFUSED,
    ids=[f"{family}-{next(iter(overrides))}" for family, overrides, _ in REFUSED],
)
def test_bad_sizes_and_frames_are_refused_before_any_work(
    request: pytest.FixtureRequest, family: str, overrides: dict[str, Any], argument: str
) -> None:
    _, lss = request.getfixturevalue(family)
    assert_refused_before_any_work(
        lss, {**video_call(SIZE, SIZE, FRAMES, STEPS[family]), **overrides}, argument
    )
