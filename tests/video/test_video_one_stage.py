"""Every LSS video pipeline planned to one stage is its stock pipeline's call, bit for bit."""

from __future__ import annotations

import pytest
from video_testkit import assert_one_stage_is_the_stock_call, video_call

# 64x64, 9 frames: a size both tiny families decode (their test modules give the geometry).
SIZE, FRAMES = 64, 9


@pytest.mark.parametrize("family", ["wan", "ltx"])
@pytest.mark.parametrize("output_type", ["np", "latent"])
@pytest.mark.parametrize("one_stage", [{"start_sigma": 1}, {}])
def test_one_stage_is_the_stock_call_bit_for_bit(
    request: pytest.FixtureRequest, family: str, output_type: str, one_stage: dict
) -> None:
    """start_sigma=1, or the default min_size (Wan 240, LTX 256) at 64 px: one stage, the stock
    call."""
    stock, lss = request.getfixturevalue(family)
    call = video_call(SIZE, SIZE, FRAMES, 4, output_type=output_type)
    assert_one_stage_is_the_stock_call(stock, lss, call, one_stage, output_type)
