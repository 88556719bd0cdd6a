"""The budget planner: seconds per unit to units per stage (measurement itself is a CLI run)."""

import pytest

from lssgen.mini.train_budget import (
    DEFAULT_MINUTES,
    Measurement,
    markdown_table,
    measure_images,
    plan,
    transformer_mix,
)
from lssgen.mini.train_transformer import FlowTrainConfig

MEASURED = [
    Measurement("vae", "step", 1.0),
    Measurement("latents", "scene", 0.1),
    Measurement("images", "image", 0.01),
    Measurement("upsampler", "step", 0.5),
    Measurement("transformer", "256", 2.0),
    Measurement("transformer", "128", 0.5),
    Measurement("transformer", "256 + T5", 4.0),
    Measurement("transformer", "128 + T5", 2.0),
]


def test_the_transformer_step_is_the_mean_over_the_training_mix():
    only_native = FlowTrainConfig(low_res_fraction=0.0, stock_t5_fraction=0.0)
    assert transformer_mix(MEASURED[4:], only_native) == 2.0
    mix = FlowTrainConfig(low_res_fraction=0.25, stock_t5_fraction=0.5)
    assert transformer_mix(MEASURED[4:], mix) == pytest.approx(0.5 * 1.625 + 0.5 * 3.5)


def test_plans_fit_the_minutes_at_the_assumed_speedup():
    plans = {p.stage: p for p in plan(MEASURED, speedup=2.0, minutes={"vae": 10, "transformer": 1})}
    assert plans["vae"].units == 10 * 60 // 0.5
    assert plans["transformer"].seconds == pytest.approx(
        transformer_mix(MEASURED[4:], FlowTrainConfig()) / 2
    )
    assert {p.stage for p in plan(MEASURED, speedup=1.0)} == set(DEFAULT_MINUTES)
    table = markdown_table(MEASURED, plan(MEASURED, speedup=1.7), threads=1, speedup=1.7)
    assert "| transformer | 70 |" in table


def test_a_real_measurement_is_positive():
    measured = measure_images(count=1)
    assert measured.stage == "images" and measured.seconds > 0
