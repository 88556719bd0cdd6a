import pytest
from hypothesis import given
from hypothesis import strategies as st
from plan_testkit import paper_plans

from lssgen_core.cost import AttentionLevel, TransformerCost, UNetCost, plan_cost
from lssgen_core.plan import plan_stages
from lssgen_core.schedules import flux_schedule

image_only_models = st.one_of(
    st.builds(TransformerCost, width=st.integers(32, 4096), depth=st.integers(1, 60)),
    st.builds(
        UNetCost,
        conv_flops_per_pixel=st.floats(1e3, 1e9),
        attention=st.lists(
            st.builds(
                AttentionLevel,
                width=st.integers(32, 1280),
                blocks=st.integers(1, 10),
                downsample=st.sampled_from([1, 2, 4]),
            ),
            max_size=3,
        ),
    ),
)


models = st.one_of(
    image_only_models,
    st.builds(
        TransformerCost,
        width=st.integers(32, 4096),
        depth=st.integers(1, 60),
        text_tokens=st.integers(1, 512),
    ),
)


@given(paper_plans(), image_only_models)
def test_attention_only_helps_the_speedup_beyond_the_token_step_bound(plan, model):
    cost = plan_cost(plan, model)
    assert cost.speedup >= 1 / plan.token_steps_ratio() * (1 - 1e-9)


@given(paper_plans(), st.floats(1.0, 1e6))
def test_a_linear_cost_gives_exactly_the_token_step_ratio(plan, per_token):
    linear = UNetCost(conv_flops_per_pixel=per_token)
    assert plan_cost(plan, linear).speedup == pytest.approx(1 / plan.token_steps_ratio())


@given(models, st.integers(1, 50))
def test_single_stage_costs_the_same_as_plain(model, steps):
    plan = plan_stages(512, 512, num_steps=steps, start_sigma=1.0)
    assert plan_cost(plan, model).speedup == pytest.approx(1.0)


@given(st.integers(1, 4096))
def test_transformer_attention_is_quadratic_in_tokens(n):
    no_mlp = TransformerCost(width=64, depth=1, mlp_ratio=-2.0)  # cancels the projections
    assert no_mlp.flops(2 * n) == pytest.approx(4 * no_mlp.flops(n))


def test_flux_worked_example_prediction_and_overhead():
    plan = plan_stages(
        1024, 1024, num_steps=50, shorten_steps=True, patch_size=2, schedule=flux_schedule()
    )
    flux = TransformerCost(width=3072, depth=57, text_tokens=512)
    cost = plan_cost(plan, flux)
    assert 1.5 < cost.speedup < 1 / 0.625  # 512 text tokens cost the same at 512 px
    slower = plan_cost(plan, flux, overhead_flops=cost.plain_flops * 0.01)
    assert slower.speedup < cost.speedup
    assert "predicted speed-up" in cost.describe()
    assert "predicted" not in plan.describe()  # the plan's table does not import the cost model
