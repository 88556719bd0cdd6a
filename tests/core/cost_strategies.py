"""Hypothesis strategies shared by the cost-model tests."""

from hypothesis import strategies as st

from lssgen_core.plan import plan_stages
from lssgen_core.schedules import flux_schedule


@st.composite
def plans(draw, min_extra_stages: int = 0, max_start_sigma: float = 1.0):
    """FLUX-scheduled square plans with 1 + (min_extra_stages..2) stages."""
    extra = draw(st.integers(min_extra_stages, 2))
    size = 64 * 2**extra * draw(st.integers(1, 4))
    return plan_stages(
        size,
        size,
        num_steps=draw(st.integers(1, 60)),
        min_size=size // 2**extra,
        start_sigma=draw(st.floats(0.05, max_start_sigma)),
        shorten_steps=draw(st.booleans()),
        patch_size=2,
        schedule=flux_schedule(),
    )
