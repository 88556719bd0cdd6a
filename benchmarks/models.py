"""Benchmark-size random-weight pipelines, built offline from configs, with their cost models.

The tiny pipelines of :mod:`lssgen_diffusers.testing` run in milliseconds, far below the size at
which a CPU is compute-bound, so their timings say nothing about LSS. The models here keep the
tiny text encoders and tokenizers (prompt encoding is the same for plain and LSS generation) and
scale up only the denoiser and the VAE:

``"flux"`` (CPU profile)
    A 20.5M-parameter ``FluxTransformer2DModel``: width 384 (3 heads x 128, FLUX's head size),
    2 double-stream + 4 single-stream blocks, 128 text tokens. FLUX.1's own setting (1024 px
    target, 512 px first stage, 512 text tokens) is scaled down by 2 per side: a 512 px target
    (1024 image tokens), ``min_size=256`` (256 tokens), 128 text tokens, and the scheduler's
    sequence-length anchors divided by 4 (64 / 1024 instead of 256 / 4096), so every stage gets
    the shift ``mu`` FLUX.1 gives the stage with 4x its tokens (0.63 first, 1.15 at the target),
    hence the same plan as FLUX.1 at 1024 px. VAE: the SD / FLUX ``AutoencoderKL`` architecture
    at 1/16 of its width (8, 16, 32, 32 channels; 0.34M parameters, 16 latent channels).
``"sdxl"`` (CPU profile)
    A 31.4M-parameter SDXL-architecture ``UNet2DConditionModel``: SDXL's three levels and block
    types at 1/5 of its width (64, 128, 256 channels, 64-wide heads), 1 / 1 / 2 transformer
    blocks per attention (SDXL: 1 / 2 / 10), text-time conditioning. SDXL's LSS setting (2048 px
    target from 1024 px) is scaled down by 4 per side: a 512 px target from 256 px (64^2 and
    32^2 latents). VAE: the SD architecture at 1/8 width (16, 32, 64, 64; 1.32M parameters).

The VAE widths are chosen so that the pixel round trip (decode at the first stage, encode at the
target) costs about as much, relative to one full-resolution denoiser step, as with the real
models (FLOP counts of the real configs: FLUX.1-dev 10% of a step at 1024 px, SDXL 51% of a CFG
step at 2048 px). sdxl's costs 50% here; flux's 25%, since 1/16 width (GroupNorm over 8
channels) is as narrow as we go and the flux transformer is 600x smaller than FLUX.1 while
seeing only 4x fewer tokens. :func:`flop_report` gives the exact figures.

``"cuda"`` profiles (used on a GPU, in bf16) build the real architectures at their real sizes
(FLUX.1-dev's transformer at 1024 px with 512 text tokens; SDXL's UNet at 2048 px from 1024 px;
the SD VAE), still with random weights and the tiny text encoders.

Every model comes with a ``latent_upsampler`` of the released architecture
(``UpsamplerConfig.released(channels)``, random weights) and a cost model: a
:class:`~lssgen_core.cost.TransformerCost` for FLUX (checked against FLOP counts by
:func:`flop_report`) and, for the UNet, a :class:`~lssgen_core.cost.UNetCost` whose per-pixel
convolution cost is fitted from exact FLOP counts (see :func:`fit_unet_cost`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    FluxPipeline,
    FluxTransformer2DModel,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from torch.utils.flop_counter import FlopCounterMode

from lssgen.torch_settings import default_dtype
from lssgen_core.cost import AttentionLevel, StepCost, TransformerCost, UNetCost
from lssgen_core.upsample import LatentUpsampler, UpsamplerConfig
from lssgen_diffusers.flux import LSSFluxPipeline
from lssgen_diffusers.sdxl import LSSStableDiffusionXLPipeline
from lssgen_diffusers.testing import (
    flux_scheduler,
    seeded_fork,
    tiny_flux_pipeline,
    tiny_sdxl_pipeline,
)

__all__ = [
    "BENCH_KINDS",
    "PROFILES",
    "BenchModel",
    "bench_flux",
    "bench_model",
    "bench_sdxl",
    "count_flops",
    "fit_unet_cost",
    "flop_report",
    "parameter_count",
]

#: Model kinds :func:`bench_model` builds.
BENCH_KINDS: tuple[str, ...] = ("flux", "sdxl")
#: "cpu": compute-bound on a 2-core CPU within minutes; "cuda": the real architectures' sizes.
PROFILES: tuple[str, ...] = ("cpu", "cuda")

PROMPT = "a red circle left of a blue square"
_META = torch.device("meta")


@attrs.frozen
class BenchModel:
    """One benchmark model: the LSS pipeline, a stock pipeline over the same modules, the cost.

    ``call`` holds the stock ``__call__`` arguments every run uses; ``lss`` the LSS arguments
    (the original's defaults, scaled as described in the module docstring).
    """

    kind: str
    profile: str
    pipeline: Any  # LSSFluxPipeline | LSSStableDiffusionXLPipeline
    stock: Any  # FluxPipeline | StableDiffusionXLPipeline, sharing the pipeline's modules
    cost: StepCost
    call: Mapping[str, Any]
    lss: Mapping[str, Any]
    notes: Mapping[str, Any]

    @property
    def denoiser(self) -> torch.nn.Module:
        pipe = self.pipeline
        return pipe.transformer if hasattr(pipe, "transformer") else pipe.unet

    @property
    def denoiser_batch(self) -> int:
        """Samples per denoiser call for one image: 2 with classifier-free guidance (SDXL)."""
        guided = self.kind == "sdxl" and self.call.get("guidance_scale", 1.0) > 1
        return 2 if guided else 1

    @property
    def upsampler(self) -> LatentUpsampler:
        return self.pipeline.latent_upsampler

    def plan(self, **overrides: Any) -> Any:
        """The LSS plan of a benchmark call (``overrides`` replace call or LSS arguments)."""
        arguments = {**self.call, **self.lss, **overrides}
        arguments.pop("prompt", None)
        arguments.pop("output_type", None)
        return self.pipeline.lss_plan_for(**arguments)


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------


def _build(factory: Callable[[], Any], seed: int, offset: int, dtype: torch.dtype) -> Any:
    """Build one random module in ``dtype`` without touching the caller's global RNG state.

    Built in ``dtype`` directly (not cast afterwards) so that FLUX.1's 12B parameters never
    exist in float32 on the GPU.
    """
    with seeded_fork(seed, offset), default_dtype(dtype):
        return factory().eval()


def _sd_vae(
    widths: tuple[int, ...], latent_channels: int, scaling: float, shift: float | None
) -> AutoencoderKL:
    """The SD / SDXL / FLUX VAE architecture (4 levels, 2 resnets per level, mid attention) at
    other ``widths``; SD's is (128, 256, 512, 512)."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=widths,
        layers_per_block=2,
        act_fn="silu",
        latent_channels=latent_channels,
        norm_num_groups=min(32, widths[0]),
        scaling_factor=scaling,
        shift_factor=shift,
        use_quant_conv=latent_channels == 4,  # SD / SDXL have them, FLUX does not
        use_post_quant_conv=latent_channels == 4,
    )


def _random_upsampler(channels: int, seed: int, dtype: torch.dtype) -> LatentUpsampler:
    return _build(lambda: LatentUpsampler(UpsamplerConfig.released(channels)), seed, 7, dtype)


def _pipelines(
    stock_class: type,
    lss_class: type,
    parts: Mapping[str, Any],
    upsampler: LatentUpsampler,
    device: torch.device | str,
    dtype: torch.dtype,
) -> tuple[Any, Any]:
    """The LSS pipeline over ``parts`` and the stock pipeline sharing its modules."""
    stock = stock_class(**parts)
    pipe = lss_class(**parts, latent_upsampler=upsampler)
    # The modules are shared, so moving one pipeline moves both. The big ones were built on
    # `device` in `dtype`; this moves the tiny text encoders (a float32 cast would only make
    # Diffusers warn about casting with `to()`).
    pipe.to(device=device)
    if dtype != torch.float32:
        pipe.to(dtype=dtype)
    for each in (pipe, stock):
        each.set_progress_bar_config(disable=True)
    return pipe, stock


def _call(size: int, guidance_scale: float, **extra: Any) -> dict[str, Any]:
    """The stock arguments of every benchmark run at ``size``."""
    return {
        "prompt": PROMPT,
        "height": size,
        "width": size,
        "num_inference_steps": NUM_STEPS,
        "guidance_scale": guidance_scale,
        **extra,
        "output_type": "pt",
    }


def _profiles() -> dict[str, dict[str, dict[str, Any]]]:
    """Per kind and profile, the sizes of the models (``profiles.json``; lists read as tuples).

    The flux profiles keep FLUX.1's proportions: every block costs 12 w^2 per token, so 2 double
    + 4 single blocks at width 384 on the CPU and FLUX.1-dev's 19 + 38 at 3072 on a GPU.
    """
    data = json.loads((Path(__file__).parent / "profiles.json").read_text())
    return {
        kind: {
            profile: {key: tuple(v) if isinstance(v, list) else v for key, v in spec.items()}
            for profile, spec in profiles.items()
        }
        for kind, profiles in data.items()
    }


_PROFILES = _profiles()

#: Steps of every benchmark run (the original uses 50; the plans' ratios barely depend on it).
NUM_STEPS = 20


def _flux_transformer(spec: Mapping[str, Any], parts: Mapping[str, Any]) -> Any:
    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=4 * 16,
        num_layers=spec["layers"],
        num_single_layers=spec["single_layers"],
        attention_head_dim=128,
        num_attention_heads=spec["heads"],
        joint_attention_dim=parts["text_encoder_2"].config.d_model,
        pooled_projection_dim=parts["text_encoder"].config.hidden_size,
        guidance_embeds=True,
        axes_dims_rope=(16, 56, 56),
    )


def _flux_scheduler(spec: Mapping[str, Any]) -> Any:
    """FLUX.1-dev's scheduler, with its sequence-length anchors (256, 4096) replaced."""
    base_len, max_len = spec["seq_len_anchors"]
    return flux_scheduler(base_image_seq_len=base_len, max_image_seq_len=max_len)


def _flux_setting(spec: Mapping[str, Any], _pipe: Any) -> dict[str, Any]:
    width = spec["heads"] * 128
    depth = spec["layers"] + spec["single_layers"]
    return {
        "cost": TransformerCost(width=width, depth=depth, text_tokens=spec["text_tokens"]),
        "call": _call(spec["size"], 3.5, max_sequence_length=spec["text_tokens"]),
        "lss": _lss(spec, shorten=True),
        "notes": {
            "denoiser": f"FluxTransformer2DModel width {width}, {spec['layers']} double + "
            f"{spec['single_layers']} single blocks",
            "vae_widths": spec["vae_widths"],
            "scheduler_seq_len_anchors": spec["seq_len_anchors"],
        },
    }


def _sdxl_unet(spec: Mapping[str, Any], parts: Mapping[str, Any]) -> Any:
    widths = spec["widths"]
    time_embed = 8 if widths[0] < 320 else 256
    encoders = (parts["text_encoder"], parts["text_encoder_2"])
    return UNet2DConditionModel(
        sample_size=spec["size"] // 8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=widths,
        layers_per_block=2,
        transformer_layers_per_block=spec["transformer_layers"],
        attention_head_dim=tuple(max(1, w // 64) for w in widths),  # Diffusers: head *count*
        cross_attention_dim=sum(encoder.config.hidden_size for encoder in encoders),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed,
        projection_class_embeddings_input_dim=6 * time_embed + encoders[1].config.projection_dim,
    )


def _sdxl_setting(spec: Mapping[str, Any], pipe: Any) -> dict[str, Any]:
    notes = (
        f"UNet2DConditionModel widths {spec['widths']}, transformer blocks "
        f"{spec['transformer_layers']}, classifier-free guidance (batch 2)"
    )
    return {
        "cost": fit_unet_cost(pipe.unet, text_tokens=77),
        "call": _call(spec["size"], 5.0),
        "lss": _lss(spec, shorten=False),
        "notes": {"denoiser": notes, "vae_widths": spec["vae_widths"]},
    }


def _lss(spec: Mapping[str, Any], *, shorten: bool) -> dict[str, Any]:
    return {
        "start_sigma": 0.75,
        "min_size": spec["min_size"],
        "shorten_intermediate_steps": shorten,
    }


@attrs.frozen
class _Kind:
    """What one benchmark model kind builds: its pipelines, denoiser, VAE and setting."""

    stock_class: type
    lss_class: type
    tiny_pipeline: Callable[[int], Any]  # gives the tiny text encoders and tokenizers
    profiles: Mapping[str, Mapping[str, Any]]
    denoiser: str  # the pipeline's component name
    build_denoiser: Callable[[Mapping[str, Any], Mapping[str, Any]], Any]  # (spec, parts)
    vae: tuple[int, float, float | None]  # latent channels, scaling and shift factors
    setting: Callable[[Mapping[str, Any], Any], dict[str, Any]]  # BenchModel's cost ... notes
    scheduler: Callable[[Mapping[str, Any]], Any] | None = None  # None: the tiny pipeline's


_KINDS: dict[str, _Kind] = {
    "flux": _Kind(
        FluxPipeline,
        LSSFluxPipeline,
        tiny_flux_pipeline,
        _PROFILES["flux"],
        "transformer",
        _flux_transformer,
        (16, 0.3611, 0.1159),  # FLUX.1's VAE config
        _flux_setting,
        _flux_scheduler,
    ),
    "sdxl": _Kind(
        StableDiffusionXLPipeline,
        LSSStableDiffusionXLPipeline,
        tiny_sdxl_pipeline,
        _PROFILES["sdxl"],
        "unet",
        _sdxl_unet,
        (4, 0.13025, None),  # SDXL's VAE config
        _sdxl_setting,
    ),
}


def bench_model(
    kind: str,
    profile: str = "cpu",
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> BenchModel:
    """The benchmark model ``kind`` (one of :data:`BENCH_KINDS`) of ``profile`` (one of
    :data:`PROFILES`); see the module docstring."""
    if kind not in _KINDS:
        raise ValueError(f"unknown benchmark model {kind!r}; expected one of {BENCH_KINDS}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    what = _KINDS[kind]
    spec = what.profiles[profile]
    parts = dict(what.tiny_pipeline(seed).components)
    channels, scaling, shift = what.vae
    with torch.device(device):
        parts[what.denoiser] = _build(lambda: what.build_denoiser(spec, parts), seed, 2, dtype)
        parts["vae"] = _build(
            lambda: _sd_vae(spec["vae_widths"], channels, scaling, shift), seed, 1, dtype
        )
        upsampler = _random_upsampler(channels, seed, dtype)
    if what.scheduler is not None:
        parts["scheduler"] = what.scheduler(spec)
    pipe, stock = _pipelines(what.stock_class, what.lss_class, parts, upsampler, device, dtype)
    return BenchModel(kind, profile, pipe, stock, **what.setting(spec, pipe))


#: The FLUX-architecture and the SDXL-architecture benchmark model (see the module docstring).
bench_flux = functools.partial(bench_model, "flux")
bench_sdxl = functools.partial(bench_model, "sdxl")


# --------------------------------------------------------------------------------------------
# FLOP counting (on the meta device: exact counts, no arithmetic, works for any model size)
# --------------------------------------------------------------------------------------------


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (2 per multiply-add) of the matmuls, convolutions and attention ``fn`` runs.

    Run it on meta tensors: there attention decomposes into counted matmuls, while the fused CPU
    attention kernel is invisible to ``FlopCounterMode``.
    """
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _meta_copy(model: Any) -> Any:
    """The same Diffusers model class and config on the meta device (no memory, no weights)."""
    with _META:
        return type(model).from_config(model.config).eval()


def _meta(*shape: int) -> torch.Tensor:
    return torch.zeros(*shape, device=_META)


def _unet_flops(unet: Any, side: int) -> int:
    """FLOPs of one UNet call on one (unguided) sample with a ``side`` x ``side`` latent."""
    config = unet.config
    time_ids = 6  # SDXL's original size, crop offset and target size
    pooled = (
        config.projection_class_embeddings_input_dim - time_ids * config.addition_time_embed_dim
    )

    def call() -> None:
        with torch.no_grad():
            unet(
                _meta(1, config.in_channels, side, side),
                _meta(1),
                encoder_hidden_states=_meta(1, 77, config.cross_attention_dim),
                added_cond_kwargs={"text_embeds": _meta(1, pooled), "time_ids": _meta(1, 6)},
            )

    return count_flops(call)


def _unet_attention_levels(config: Any) -> list[AttentionLevel]:
    """Transformer blocks per resolution level of a ``UNet2DConditionModel`` config."""
    layers = config.transformer_layers_per_block
    widths = config.block_out_channels
    if isinstance(layers, int):
        layers = (layers,) * len(widths)
    per_level = dict.fromkeys(range(len(widths)), 0)
    for level, block in enumerate(config.down_block_types):
        if block.startswith("CrossAttn"):
            per_level[level] += config.layers_per_block * layers[level]
    for index, block in enumerate(config.up_block_types):
        level = len(widths) - 1 - index
        if block.startswith("CrossAttn"):
            per_level[level] += (config.layers_per_block + 1) * layers[level]
    if config.mid_block_type == "UNetMidBlock2DCrossAttn":
        per_level[len(widths) - 1] += layers[-1]
    return [
        AttentionLevel(width=widths[level], blocks=blocks, downsample=2**level)
        for level, blocks in per_level.items()
        if blocks
    ]


def fit_unet_cost(unet: Any, *, text_tokens: int = 77) -> UNetCost:
    """A :class:`UNetCost` for ``unet`` from exact FLOP counts at three latent sizes.

    One call costs ``c + a n + b n^2`` FLOPs for ``n`` latent pixels (convolutions and per-token
    layers are linear, self-attention quadratic, the time / text embeddings constant). Three
    counts give ``a``, ``b`` and ``c`` exactly; the attention levels come from the config and
    ``conv_flops_per_pixel`` is ``a`` minus the linear part ``UNetCost`` already charges them
    (projections, cross-attention, feed-forward), so the model reproduces the counted ``a n`` and
    ``b n^2``. ``c`` (a few MFLOP) is left out: ``UNetCost`` has no constant term.
    The quadratic term ``UNetCost`` derives from the levels is checked against the fitted ``b``.
    """
    meta = _meta_copy(unet)
    levels = _unet_attention_levels(unet.config)
    step = 2 ** (len(unet.config.block_out_channels) - 1)  # latent sides must divide evenly
    sides = (4 * step, 8 * step, 16 * step)
    pixels = np.array([side * side for side in sides], dtype=np.float64)
    counts = np.array([_unet_flops(meta, side) for side in sides], dtype=np.float64)
    _constant, linear, quadratic = np.linalg.solve(
        np.stack([np.ones(3), pixels, pixels**2], axis=1), counts
    )
    attention_only = UNetCost(conv_flops_per_pixel=0.0, attention=levels, text_tokens=text_tokens)
    # The attention formula is a n + b n^2 as well: read its coefficients off two sizes.
    f1, f2 = attention_only.flops(1), attention_only.flops(2)
    formula_quadratic = (f2 - 2 * f1) / 2
    formula_linear = f1 - formula_quadratic
    if not np.isclose(formula_quadratic, quadratic, rtol=1e-3):
        raise RuntimeError(
            f"UNetCost's attention term ({formula_quadratic:.4g} n^2) does not match the counted "
            f"quadratic FLOPs ({quadratic:.4g} n^2); the UNet's attention layout is not the one "
            "UNetCost models"
        )
    return UNetCost(
        conv_flops_per_pixel=float(linear - formula_linear),
        attention=tuple(levels),
        text_tokens=text_tokens,
    )


def _flux_flops(transformer: Any, tokens: int, text_tokens: int) -> int:
    config = transformer.config

    def call() -> None:
        with torch.no_grad():
            transformer(
                hidden_states=_meta(1, tokens, config.in_channels),
                timestep=_meta(1),
                guidance=_meta(1),
                pooled_projections=_meta(1, config.pooled_projection_dim),
                encoder_hidden_states=_meta(1, text_tokens, config.joint_attention_dim),
                txt_ids=_meta(text_tokens, 3),
                img_ids=_meta(tokens, 3),
            )

    return count_flops(call)


def _denoiser_flops(bench: BenchModel, tokens: int) -> int:
    """Counted FLOPs of one denoiser call at ``tokens`` per image (guidance batch excluded)."""
    meta = _meta_copy(bench.denoiser)
    if bench.kind == "flux":
        return _flux_flops(meta, tokens, bench.call["max_sequence_length"])
    return _unet_flops(meta, round(tokens**0.5))


def flop_report(bench: BenchModel) -> dict[str, Any]:
    """Sizes and exact FLOP counts of ``bench``'s parts, per image, at its plan's stage sizes.

    ``denoiser_counted`` vs ``denoiser_model`` checks the cost model (both per sample); the VAE
    and upsampler figures are what the pixel and resnet scaling modes add, also as shares of one
    full-resolution denoiser step (both guidance samples for SDXL).
    """
    plan = bench.plan()
    first, target = plan.stages[0], plan.stages[-1]
    vae = _meta_copy(bench.pipeline.vae)
    channels = vae.config.latent_channels
    upsampler = LatentUpsampler(UpsamplerConfig.released(channels)).to(_META)

    def latent(stage: Any) -> torch.Tensor:
        return _meta(1, channels, stage.latent_height, stage.latent_width)

    with torch.no_grad():
        decode_first = count_flops(lambda: vae.decode(latent(first)))
        encode_target = count_flops(lambda: vae.encode(_meta(1, 3, target.height, target.width)))
        decode_target = count_flops(lambda: vae.decode(latent(target)))
        upsample = count_flops(lambda: upsampler(latent(first)))
    counted = {s.num_tokens: _denoiser_flops(bench, s.num_tokens) for s in plan.stages}
    full_step = counted[target.num_tokens] * bench.denoiser_batch
    return {
        "parameters": {
            "denoiser": parameter_count(bench.denoiser),
            "vae": parameter_count(bench.pipeline.vae),
            "upsampler": parameter_count(bench.upsampler),
        },
        "denoiser_counted": {str(n): f for n, f in counted.items()},
        "denoiser_model": {str(n): bench.cost.flops(n) for n in counted},
        "vae_decode_first": decode_first,
        "vae_encode_target": encode_target,
        "vae_decode_target": decode_target,
        "upsampler": upsample,
        "pixel_round_trip_per_full_step": (decode_first + encode_target) / full_step,
        "final_decode_per_full_step": decode_target / full_step,
        "upsampler_per_full_step": upsample / full_step,
    }
