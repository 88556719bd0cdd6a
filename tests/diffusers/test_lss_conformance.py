"""Conformance: what Diffusers' shared pipeline tests expect of every pipeline, asked of ours.

Written for this project after the checks in Diffusers' pipeline test mixins (which are not in
the wheel): components, the call signature, callback tensor inputs, dict and tuple outputs,
``num_images_per_prompt`` and output types, for the five families with one stage (the stock
call) and with two stages.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import PIL.Image
import pytest
import torch
from lss_testkit import PROMPT, STEP_CALLBACK_KINDS, Pair

TARGET = 128
STEPS = 4
MODES = {"one stage": {"start_sigma": 1.0}, "two stages": {"min_size": 64}}


@pytest.fixture(params=STEP_CALLBACK_KINDS)
def pair(request: pytest.FixtureRequest, lss_pair: Any) -> Pair:
    return lss_pair(request.param)


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> dict[str, Any]:
    return MODES[request.param]


def call(pipe: Any, mode: dict[str, Any], **overrides: Any) -> Any:
    return pipe(
        **{
            "prompt": PROMPT,
            "height": TARGET,
            "width": TARGET,
            "num_inference_steps": STEPS,
            "generator": torch.Generator().manual_seed(0),
            "output_type": "np",
            **mode,
            **overrides,
        }
    )


def test_components_rebuild_the_pipeline(pair: Pair) -> None:
    components = pair.lss.components
    assert set(components) == {*pair.stock.components, "latent_upsampler"}
    rebuilt = type(pair.lss)(**components)
    assert set(rebuilt.components) == set(components)
    for name, component in components.items():
        assert rebuilt.components[name] is component, name


def test_signature_has_the_arguments_shared_tests_look_up(pair: Pair) -> None:
    parameters = inspect.signature(pair.lss.__call__).parameters
    for name in (
        "prompt",
        "height",
        "width",
        "num_inference_steps",
        "guidance_scale",
        "num_images_per_prompt",
        "generator",
        "latents",
        "output_type",
        "return_dict",
        "callback_on_step_end",
        "callback_on_step_end_tensor_inputs",
    ):
        assert name in parameters, name
    # Every tensor a callback may ask for is one the stock pipeline offers.
    assert pair.lss._callback_tensor_inputs == pair.stock._callback_tensor_inputs


def is_tensors(value: Any) -> bool:
    """A tensor, or a list of tensors (Z-Image's prompt embeddings)."""
    if isinstance(value, list):
        return all(isinstance(entry, torch.Tensor) for entry in value)
    return isinstance(value, torch.Tensor)


def test_callback_gets_the_tensors_it_asks_for_and_its_changes_are_used(
    pair: Pair, mode: dict[str, Any]
) -> None:
    names = list(pair.lss._callback_tensor_inputs)
    received: list[set[str]] = []
    steps: list[tuple[int, int]] = []

    def callback(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        received.append(set(tensors))
        # Z-Image's prompt_embeds is its stock list of per-prompt tensors.
        assert all(is_tensors(tensors[name]) for name in names)
        stage = pipe.lss_stage.index if pipe.lss_stage is not None else 0
        steps.append((stage, step))
        last_stage = pipe.lss_plan is None or stage == len(pipe.lss_plan.stages) - 1
        if last_stage and step == pipe.num_timesteps - 1:
            tensors["latents"] = torch.zeros_like(tensors["latents"])
        return tensors

    latents = call(
        pair.lss,
        mode,
        output_type="latent",
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=names,
    ).images
    assert received and all(keys == set(names) for keys in received)
    assert len(steps) == pair.lss.num_timesteps  # the call's total number of steps
    # The last step's latents were the callback's (in the spatial view: FLUX.2 [klein] returns
    # them de-normalised).
    spatial = pair.lss.lss_unpack(latents, pair.lss.lss_plan.target)
    assert torch.count_nonzero(spatial) == 0


def test_dict_and_tuple_outputs_are_the_same(pair: Pair, mode: dict[str, Any]) -> None:
    as_dict = call(pair.lss, mode).images
    (as_tuple, *_) = call(pair.lss, mode, return_dict=False)
    np.testing.assert_array_equal(as_dict, as_tuple)


def test_num_images_per_prompt(pair: Pair, mode: dict[str, Any]) -> None:
    for prompts, per_prompt in ((PROMPT, 2), ([PROMPT, "a cat"], 2)):
        images = call(pair.lss, mode, prompt=prompts, num_images_per_prompt=per_prompt).images
        count = (1 if isinstance(prompts, str) else len(prompts)) * per_prompt
        assert images.shape == (count, TARGET, TARGET, 3), (prompts, per_prompt)


def test_output_types(pair: Pair, mode: dict[str, Any]) -> None:
    array = call(pair.lss, mode).images
    tensor = call(pair.lss, mode, output_type="pt").images
    (image,) = call(pair.lss, mode, output_type="pil").images
    assert isinstance(image, PIL.Image.Image) and image.size == (TARGET, TARGET)
    assert tuple(tensor.shape) == (1, 3, TARGET, TARGET)
    np.testing.assert_allclose(tensor.permute(0, 2, 3, 1).numpy(), array, atol=1e-6)


def test_one_stage_is_the_stock_pipeline(pair: Pair) -> None:
    expected = call(pair.stock, {}).images
    np.testing.assert_array_equal(call(pair.lss, MODES["one stage"]).images, expected)
