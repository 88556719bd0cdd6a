"""Delegated attributes read through to what an object holds, and cannot be set."""

import attrs
import pytest

from lssgen_core.delegation import Delegated
from lssgen_core.plan import Stage, StagePlan, plan_stages


@attrs.frozen
class Size:
    height: int


class Holder:
    height = Delegated[int]("size.height", "The held size's height.")

    def __init__(self, height: int) -> None:
        self.size = Size(height)


def test_a_delegated_attribute_reads_the_held_value_and_refuses_assignment():
    holder = Holder(7)
    assert holder.height == 7
    assert Holder.height.__doc__ == "The held size's height."
    with pytest.raises(AttributeError, match=r"height is read from size\.height"):
        holder.height = 8
    assert holder.height == 7


def test_a_plan_shows_its_arguments_and_its_stages_their_sizes():
    plan = plan_stages(1024, 1024, num_steps=20, stage_steps=(5, 3), patch_size=2)
    assert (plan.height, plan.width, plan.num_steps) == (1024, 1024, 20)
    assert (plan.start_sigma, plan.stage_steps, plan.is_explicit) == (0.75, (5, 3), True)
    assert plan.start_sigma == plan.arguments.values.start_sigma
    first = plan.stages[0]
    assert (first.height, first.latent_width, first.num_tokens) == (512, 64, 32 * 32)
    assert isinstance(StagePlan.height, Delegated) and isinstance(Stage.height, Delegated)
