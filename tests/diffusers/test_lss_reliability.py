"""No silent garbage: bad call arguments are refused before any model runs, for one stage and
several alike; non-finite latents stop the call naming the stage; plans that would waste work
warn; the pipeline's device and dtype ignore the latent upsampler. (tests/RELIABILITY.md
lists every case with its test.)"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np
import pytest
import torch
from lss_testkit import PROMPT, Pair, lss_from_stock, random_upsampler, recorded_inputs

from lssgen_core.plan import LSSPlanWarning
from lssgen_diffusers.call_args import bind_call
from lssgen_diffusers.call_checks import NonFiniteLatentError

BASE: dict[str, Any] = {
    "prompt": PROMPT,
    "height": 128,
    "width": 128,
    "num_inference_steps": 4,
    "output_type": "latent",
}
# min_size giving one stage (the stock call) or two (64 -> 128).
STAGES = {"one": 128, "several": 64}
# The `latents` shape each pipeline takes at its first stage.
LATENT_SHAPES = {
    ("flux", "one"): (1, 64, 64),
    ("flux", "several"): (1, 16, 64),
    ("sd", "one"): (1, 4, 16, 16),
    ("sd", "several"): (1, 4, 8, 8),
}


def _nan_latents(kind: str, stages: str) -> torch.Tensor:
    latents = torch.randn(LATENT_SHAPES[kind, stages], generator=torch.Generator().manual_seed(0))
    latents.view(-1)[0] = math.nan
    return latents


def _call(stages: str, **overrides: Any) -> dict[str, Any]:
    arguments = {**BASE, "min_size": STAGES[stages], **overrides}
    return {name: value for name, value in arguments.items() if value is not None}


def assert_refused_before_work(
    pair: Pair, pipe: Any, error: type[Exception], pattern: str, arguments: dict[str, Any]
) -> None:
    with ExitStack() as stack:
        calls = [
            stack.enter_context(recorded_inputs(module))
            for module in [pair.denoiser, *pair.text_encoders, pipe.vae.decoder]
        ]
        with pytest.raises(error, match=pattern):
            pipe(**arguments)
    assert all(recorded == [] for recorded in calls)


# (id, kind, call overrides (a callable gets (kind, stages)), error, message pattern)
BAD_CALLS: list[tuple[str, str, Any, type[Exception], str]] = [
    (
        "nan-latents",
        "flux",
        lambda kind, stages: {"latents": _nan_latents(kind, stages)},
        ValueError,
        r"latents holds 1 non-finite value\(s\) \(NaN or inf\)",
    ),
    (
        "nan-latents-sd",
        "sd",
        lambda kind, stages: {"latents": _nan_latents(kind, stages)},
        ValueError,
        r"latents holds 1 non-finite",
    ),
    (
        "numpy-latents",
        "flux",
        lambda kind, stages: {"latents": np.zeros(LATENT_SHAPES[kind, stages], np.float32)},
        TypeError,
        r"latents must be a torch.Tensor, got numpy.ndarray",
    ),
    (
        "float64-latents-sd",
        "sd",
        lambda kind, stages: {"latents": torch.zeros(LATENT_SHAPES[kind, stages], dtype=float)},
        TypeError,
        r"latents has dtype torch.float64 but the unet runs in torch.float32",
    ),
    ("generator=42", "flux", {"generator": 42}, TypeError, r"generator must be a torch.Generator"),
    ("prompt=[]", "flux", {"prompt": []}, ValueError, r"prompt is an empty list"),
    (
        "prompt=123",
        "flux",
        {"prompt": 123},
        TypeError,
        r"prompt must be a string or a list of strings, got int",
    ),
    ("prompt=[str, int]", "sd", {"prompt": ["a", 3]}, TypeError, r"prompt\[1\] must be a string"),
    (
        "guidance=nan",
        "flux",
        {"guidance_scale": math.nan},
        ValueError,
        r"guidance_scale=nan must be a finite real number",
    ),
    (
        "guidance=nan-sd",
        "sd",
        {"guidance_scale": math.nan},
        ValueError,
        r"guidance_scale=nan must be a finite real number",
    ),
    ("guidance=inf-sd", "sd", {"guidance_scale": math.inf}, ValueError, r"guidance_scale=inf"),
    ("guidance=str", "sd", {"guidance_scale": "7"}, TypeError, r"guidance_scale must be a real"),
    (
        "height=8-flux",
        "flux",
        {"height": 8},
        ValueError,
        r"height=8 is below the smallest size this pipeline makes: 16 px",
    ),
    ("height<0", "flux", {"height": -128}, ValueError, r"height=-128 is below the smallest"),
    ("width<0-sd", "sd", {"width": -64}, ValueError, r"width=-64 is below the smallest .* 8 px"),
    ("height=str", "sd", {"height": "128"}, TypeError, r"height must be an integer, got '128'"),
    (
        "steps=0",
        "flux",
        {"num_inference_steps": 0},
        ValueError,
        r"num_inference_steps=0 must be an integer >= 1",
    ),
    ("steps=0-sd", "sd", {"num_inference_steps": 0}, ValueError, r"num_inference_steps=0"),
    (
        "images=0",
        "flux",
        {"num_images_per_prompt": 0},
        ValueError,
        r"num_images_per_prompt=0 must be an integer >= 1",
    ),
    (
        "shorten=str",
        "flux",
        {"shorten_intermediate_steps": "no"},
        TypeError,
        r"shorten_intermediate_steps must be a bool \(True or False\), got 'no'",
    ),
    (
        "start_sigma=str",
        "flux",
        {"start_sigma": "0.7"},
        TypeError,
        r"start_sigma must be a real number in \(0, 1\] or 'auto', got '0.7' \(str\)",
    ),
]


@pytest.mark.parametrize("stages", list(STAGES))
@pytest.mark.parametrize(
    ("kind", "overrides", "error", "pattern"),
    [c[1:] for c in BAD_CALLS],
    ids=[c[0] for c in BAD_CALLS],
)
def test_bad_call_is_refused_before_any_work_for_one_stage_and_several(
    lss_pair: Any, kind: str, overrides: Any, error: type[Exception], pattern: str, stages: str
) -> None:
    pair = lss_pair(kind)
    extra = overrides(kind, stages) if callable(overrides) else overrides
    assert_refused_before_work(pair, pair.lss, error, pattern, _call(stages, **extra))


def test_negative_size_advice_never_suggests_a_negative_min_size(lss_pair: Any) -> None:
    pair = lss_pair("flux")
    with pytest.raises(ValueError) as refused:
        pair.lss(**_call("several", height=-128))
    assert "min_size=-" not in str(refused.value)


def test_float64_latents_are_cast_where_the_stock_pipeline_casts_them(lss_pair: Any) -> None:
    # FLUX's stock prepare_latents casts given latents to the transformer's dtype: kept as is.
    pair = lss_pair("flux")
    latents = torch.randn(LATENT_SHAPES["flux", "one"], dtype=torch.float64)
    call = {**BASE, "latents": latents}
    assert torch.equal(pair.lss(**call, min_size=128).images, pair.stock(**call).images)
    several = pair.lss(**_call("several", latents=latents[:, :16]))
    assert torch.isfinite(several.images).all()


def test_guidance_nan_is_refused_where_stock_would_silently_drop_guidance(lss_pair: Any) -> None:
    # Stock SD treats guidance_scale=nan as "no classifier-free guidance" (nan > 1 is False): a
    # silently changed request; the LSS pipeline refuses it (see tests/RELIABILITY.md).
    pair = lss_pair("sd")
    stock = pair.stock(**{**BASE, "guidance_scale": math.nan})
    assert torch.isfinite(stock.images).all()
    assert not pair.stock.do_classifier_free_guidance


# --- embedding batches: one stage and several accept and refuse the same inputs ----------------


def _embeds(pair: Pair, count: int) -> dict[str, torch.Tensor]:
    prompts = {"prompt": [PROMPT] * count}
    if pair.kind != "flux":
        prompts["negative_prompt"] = ["blurry"] * count
    call = bind_call(pair.stock.__call__, (), prompts)
    encoded = pair.lss.lss_encode_prompts(call)
    return {k: v for k, v in encoded.items() if isinstance(v, torch.Tensor)}


# (kind, embedding passed with batch 1 beside batch-2 prompt_embeds, accepted by stock?)
EMBED_CASES = [
    ("flux", "pooled_prompt_embeds", True),  # the stock transformer broadcasts it
    ("sd3", "pooled_prompt_embeds", False),
    ("sd3", "negative_prompt_embeds", False),
    ("sd3", "negative_pooled_prompt_embeds", False),
    ("sdxl", "pooled_prompt_embeds", False),
    ("sdxl", "negative_prompt_embeds", False),
    ("sdxl", "negative_pooled_prompt_embeds", False),
    ("sd", "negative_prompt_embeds", False),
    ("cogview4", "negative_prompt_embeds", False),
]


@pytest.mark.parametrize(
    ("kind", "name", "accepted"), EMBED_CASES, ids=[f"{k}-{n}" for k, n, _ in EMBED_CASES]
)
def test_embedding_batches_are_refused_or_accepted_as_by_stock(
    lss_pair: Any, kind: str, name: str, accepted: bool
) -> None:
    pair = lss_pair(kind)
    two, one = _embeds(pair, 2), _embeds(pair, 1)
    embeds = {**two, name: one[name], "prompt": None}
    if accepted:
        seeded = {**embeds, "generator": torch.Generator().manual_seed(0)}
        stock = pair.stock(**{**BASE, **seeded}).images
        seeded["generator"] = torch.Generator().manual_seed(0)
        assert torch.equal(pair.lss(**_call("one", **seeded)).images, stock)
        assert pair.lss(**_call("several", **embeds)).images.shape[0] == 2
        return
    with pytest.raises(Exception):  # noqa: B017 - stock fails somewhere, often deep in torch
        pair.stock(**{**BASE, **embeds})
    for stages in STAGES:
        pattern = rf"{name}.* batch size 1.*prompt_embeds.* 2|{name}.*must have the same"
        assert_refused_before_work(pair, pair.lss, ValueError, pattern, _call(stages, **embeds))


@pytest.mark.parametrize("kind", ["flux", "sd3", "sdxl", "sd", "cogview4"])
def test_prompt_beside_prompt_embeds_is_refused_for_several_stages_as_for_one(
    lss_pair: Any, kind: str
) -> None:
    pair = lss_pair(kind)
    embeds = {k: v for k, v in _embeds(pair, 1).items() if not k.startswith("negative")}
    for stages in STAGES:
        assert_refused_before_work(
            pair, pair.lss, ValueError, r"Cannot forward both `prompt`", _call(stages, **embeds)
        )


# --- non-finite latents inside a call -----------------------------------------------------------


@contextmanager
def nan_output(module: torch.nn.Module, from_call: int = 0) -> Iterator[None]:
    """Make ``module`` return NaN from its ``from_call``-th forward call on."""
    count = [0]

    def hook(_: torch.nn.Module, args: Any, output: Any) -> Any:
        count[0] += 1
        if count[0] <= from_call:
            return output
        first = output[0] if isinstance(output, tuple) else output.sample
        poisoned = torch.full_like(first, math.nan)
        return (poisoned, *output[1:]) if isinstance(output, tuple) else type(output)(poisoned)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@pytest.mark.parametrize("output_type", ["latent", "pt"])
@pytest.mark.parametrize(
    ("stages", "pattern"),
    [
        ("one", r"stage 0 \(128x128\) produced a latent with \d+ non-finite"),
        ("several", r"stage 0 \(64x64\) produced a latent with \d+ non-finite"),
    ],
)
def test_a_stage_that_produces_nan_stops_the_call_naming_it(
    lss_pair: Any, stages: str, pattern: str, output_type: str
) -> None:
    pair = lss_pair("flux")
    with (
        nan_output(pair.denoiser),
        recorded_inputs(pair.lss.vae.decoder) as decodes,
        pytest.raises(NonFiniteLatentError, match=pattern),
    ):
        pair.lss(**_call(stages, output_type=output_type))
    assert decodes == []


def test_a_nan_upsampler_is_caught_at_the_stage_hand_over(lss_pair: Any) -> None:
    pair = lss_pair("sd3")
    upsampler = random_upsampler(16)
    with torch.no_grad():
        next(upsampler.parameters()).fill_(math.nan)
    pipe = lss_from_stock("sd3", pair.stock, latent_upsampler=upsampler)
    with (
        recorded_inputs(pair.denoiser) as calls,
        pytest.raises(
            NonFiniteLatentError,
            match=r"latent entering stage 1 \(128x128\) .*holds \d+ non-finite.*latent_upsampler",
        ),
    ):
        pipe(**_call("several", output_type="pt"))
    assert {call["shape"][-1] for call in calls} == {8}  # stage 1 never ran


# --- plans that waste work ---------------------------------------------------------------------


def _plan_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, LSSPlanWarning)]


def test_one_step_with_two_stages_runs_plain_with_a_warning(lss_pair: Any) -> None:
    pair = lss_pair("flux")
    call = {**BASE, "num_inference_steps": 1}
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        got = pair.lss(**call, min_size=64, generator=torch.Generator().manual_seed(0))
    (message,) = _plan_warnings(record)
    assert "pure noise" in message and "64x64" in message and "one stage" in message
    assert pair.lss.lss_plan.is_single_stage
    expected = pair.stock(**call, generator=torch.Generator().manual_seed(0))
    assert torch.equal(got.images, expected.images)


def test_a_plan_costing_at_least_plain_warns_once_per_call(lss_pair: Any) -> None:
    # SD's DDIM with leading spacing at 4 steps: the later stage enters at step 0 (125%).
    pair = lss_pair("sd")
    for _ in range(2):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            pair.lss(**_call("several"))
        (message,) = _plan_warnings(record)
        assert "125.0% of plain's token-steps" in message


def test_a_plain_plan_never_warns(lss_pair: Any) -> None:
    pair = lss_pair("flux")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        pair.lss(**_call("several", num_inference_steps=8))
        pair.lss(**_call("one"))
    assert _plan_warnings(record) == []


class _Stop(Exception):
    pass


def test_many_stages_warn_before_any_work(lss_pair: Any) -> None:
    pair = lss_pair("flux")

    def stop(*args: Any) -> None:
        raise _Stop

    with (
        warnings.catch_warnings(record=True) as record,
        recorded_inputs(pair.denoiser) as calls,
        pytest.raises(_Stop),
    ):
        warnings.simplefilter("always")
        pair.lss(
            **_call("several", height=1024, width=1024),
            shorten_intermediate_steps=False,
            callback_on_step_end=stop,
        )
    messages = _plan_warnings(record)
    assert len(messages) == len(set(messages))
    (many,) = [m for m in messages if "stages (" in m]
    assert "5 stages (64 -> 128 -> 256 -> 512 -> 1024 px)" in many and "min_size" in many
    assert len(calls) == 1


# --- device and dtype ----------------------------------------------------------------------------


def test_device_and_dtype_ignore_the_latent_upsampler(lss_pair: Any) -> None:
    stock = lss_pair("flux").stock
    on_meta = lss_from_stock("flux", stock, latent_upsampler=random_upsampler(16).to("meta"))
    assert on_meta.device == torch.device("cpu")
    double = lss_from_stock("flux", stock, latent_upsampler=random_upsampler(16).double())
    assert double.dtype == torch.float32


def test_a_misplaced_upsampler_is_refused_naming_it(lss_pair: Any) -> None:
    pair = lss_pair("flux")
    pipe = lss_from_stock("flux", pair.stock, latent_upsampler=random_upsampler(16).to("meta"))
    assert_refused_before_work(
        pair,
        pipe,
        ValueError,
        r"latent_upsampler is on meta but the pipeline runs on cpu",
        _call("several"),
    )
    # Modes that do not use it do not care where it is.
    assert torch.isfinite(pipe(**_call("several"), scaling_mode="latent").images).all()
