"""Tiny random-weight stock Diffusers pipelines (``lssgen_diffusers.testing``), fully offline."""

from __future__ import annotations

import inspect
import socket
import struct
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from lss_testkit import family_call, family_sized

from lssgen_diffusers.testing import (
    PIPELINE_KINDS,
    SD_SCHEDULERS,
    align_safetensors,
    save_tiny_pipeline,
    tiny_pipeline,
    tiny_sd_pipeline,
    tiny_vae,
)

PROMPT = "a red circle left of a blue square"

# kind -> (latent channels, vae scaling_factor, vae shift_factor)
VAE_EXPECTED: dict[str, tuple[int, float, float | None]] = {
    "flux": (16, 0.3611, 0.1159),
    "sd3": (16, 1.5305, 0.0609),
    "cogview4": (16, 1.0, 0.0),
    "sdxl": (4, 0.13025, None),
    "sd": (4, 0.18215, None),
    "pixart-sigma": (4, 0.13025, None),
    "chroma": (16, 0.3611, 0.1159),
    "sana": (32, 0.41407, None),  # SANA's DC-AE (32x): AutoencoderDC has no shift_factor
    "hidream": (16, 0.3611, 0.1159),  # FLUX.1's VAE, one block (testing_hidream says why)
    "z-image": (16, 0.3611, 0.1159),  # FLUX.1's VAE
    "lumina2": (16, 0.3611, 0.1159),  # FLUX.1's VAE
    # FLUX.2's VAE has no scaling or shift factor: batch-norm statistics of its 2x2 patches.
    "flux2-klein": (32, None, None),
    "flux2": (32, None, None),
}
#: Families whose plain save_pretrained puts some weights at offsets that change CPU kernels
#: (header lengths): only ``save_tiny_pipeline`` reloads them bit for bit (asserted for every
#: family).
UNALIGNED_PLAIN_SAVE = {"lumina2", "flux2-klein"}
#: VAE spatial factor where it is not 8.
VAE_FACTOR = {"sana": 32, "hidream": 1}
#: Families on Qwen-Image's VAE (5-D latents normalised per channel; no scaling_factor).
QWEN_VAE_KINDS = ("qwen-image", "krea2")
#: Families passing latents packed 2x2 into tokens, (B, tokens, 4 * 16).
PACKED_KINDS = ("flux", "chroma", *QWEN_VAE_KINDS)


@pytest.fixture(scope="module")
def pipes() -> dict[str, Any]:
    built = {kind: tiny_pipeline(kind) for kind in PIPELINE_KINDS}
    for pipe in built.values():
        pipe.set_progress_bar_config(disable=True)
    return built


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub offline mode plus no outgoing connections at all."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def generate(
    pipe: Any,
    *,
    seed: int = 0,
    steps: int = 2,
    height: int = 128,
    width: int = 128,
    output_type: str = "latent",
    **kwargs: Any,
) -> Any:
    if "prompt_embeds" not in kwargs:
        kwargs.setdefault("prompt", PROMPT)
    kwargs = {**family_call(pipe), **kwargs}  # PixArt-Sigma: binning off, the size asked
    with family_sized(pipe, height, width):  # HiDream: the size asked, not its one area
        return pipe(
            height=height,
            width=width,
            num_inference_steps=steps,
            generator=torch.Generator().manual_seed(seed),
            output_type=output_type,
            **kwargs,
        ).images


def expected_latent_shape(kind: str, height: int, width: int, batch: int = 1) -> tuple[int, ...]:
    if kind in PACKED_KINDS:
        return (batch, (height // 16) * (width // 16), 64)
    if kind == "flux2":  # the denoiser's tokens: (B, tokens, 4 * 32)
        return (batch, (height // 16) * (width // 16), 128)
    channels = VAE_EXPECTED[kind][0]
    factor = VAE_FACTOR.get(kind, 8)
    return (batch, channels, height // factor, width // factor)


def masked_embeds(
    embeds: torch.Tensor, mask: torch.Tensor, neg: torch.Tensor, neg_mask: torch.Tensor
) -> dict[str, Any]:
    """The stock arguments of prompt embeddings that come with attention masks."""
    return {
        "prompt_embeds": embeds,
        "prompt_attention_mask": mask,
        "negative_prompt_embeds": neg,
        "negative_prompt_attention_mask": neg_mask,
    }


def precomputed_embeds(kind: str, pipe: Any) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        if kind == "flux":
            embeds, pooled, _ = pipe.encode_prompt(PROMPT, prompt_2=None)
            return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}
        if kind == "chroma":
            embeds, _, mask, neg, _, neg_mask = pipe.encode_prompt(PROMPT, negative_prompt="")
            return masked_embeds(embeds, mask, neg, neg_mask)
        if kind in ("pixart-sigma", "sana"):
            options = {}
            if kind == "sana":
                # The stock call prepends its complex_human_instruction (encode_prompt: none).
                parameters = inspect.signature(pipe.__call__).parameters
                options["complex_human_instruction"] = parameters[
                    "complex_human_instruction"
                ].default
            # The stock default negative prompt "" would clash with the embeddings.
            return {
                "negative_prompt": None,
                **masked_embeds(*pipe.encode_prompt(PROMPT, **options)),
            }
        if kind in QWEN_VAE_KINDS:
            embeds, mask = pipe.encode_prompt(PROMPT)
            return {"prompt_embeds": embeds, "prompt_embeds_mask": mask}
        if kind == "hidream":
            t5, neg_t5, llama, neg_llama, pooled, neg_pooled = pipe.encode_prompt(PROMPT)
            return {
                "prompt": None,  # HiDream has no prompt_embeds (which generate() looks for)
                "prompt_embeds_t5": t5,
                "negative_prompt_embeds_t5": neg_t5,
                "prompt_embeds_llama3": llama,
                "negative_prompt_embeds_llama3": neg_llama,
                "pooled_prompt_embeds": pooled,
                "negative_pooled_prompt_embeds": neg_pooled,
            }
        if kind == "flux2":
            embeds, _ = pipe.encode_prompt(PROMPT)
            return {"prompt_embeds": embeds}
        if kind == "flux2-klein":
            # The stock call's negative prompt under guidance is always the empty one.
            embeds, _ = pipe.encode_prompt(PROMPT)
            negative, _ = pipe.encode_prompt("")
            return {"prompt_embeds": embeds, "negative_prompt_embeds": negative}
        if kind == "lumina2":
            embeds, mask, neg, neg_mask = pipe.encode_prompt(PROMPT)  # the stock system prompt
            return {
                "prompt_embeds": embeds,
                "prompt_attention_mask": mask,
                "negative_prompt_embeds": neg,
                "negative_prompt_attention_mask": neg_mask,
            }
        if kind == "sd3":
            embeds, neg, pooled, neg_pooled = pipe.encode_prompt(PROMPT, None, None)
        elif kind == "sdxl":
            embeds, neg, pooled, neg_pooled = pipe.encode_prompt(PROMPT)
        elif kind == "sd":
            embeds, neg = pipe.encode_prompt(PROMPT, torch.device("cpu"), 1, True)
            return {"prompt_embeds": embeds, "negative_prompt_embeds": neg}
        else:
            embeds, neg = pipe.encode_prompt(PROMPT, do_classifier_free_guidance=True)
            return {"prompt_embeds": embeds, "negative_prompt_embeds": neg}
    return {
        "prompt_embeds": embeds,
        "negative_prompt_embeds": neg,
        "pooled_prompt_embeds": pooled,
        "negative_pooled_prompt_embeds": neg_pooled,
    }


def tokenizers_of(pipe: Any) -> dict[str, Any]:
    return {
        name: comp
        for name, comp in pipe.components.items()
        if name.startswith("tokenizer") and comp is not None
    }


def assert_same_modules(a: Any, b: Any) -> None:
    for name, comp in a.components.items():
        if isinstance(comp, torch.nn.Module):
            sa, sb = comp.state_dict(), b.components[name].state_dict()
            assert sa.keys() == sb.keys(), name
            for key in sa:
                assert torch.equal(sa[key], sb[key]), f"{name}.{key}"


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PIPELINE_KINDS)
def test_prompt_generation_128(pipes: dict[str, Any], kind: str) -> None:
    image = generate(pipes[kind], output_type="np")
    assert image.shape == (1, 128, 128, 3)
    assert np.isfinite(image).all()
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert image.std() > 0  # random weights still give a non-constant image


@pytest.mark.parametrize("kind", PIPELINE_KINDS)
@pytest.mark.parametrize(("height", "width"), [(64, 64), (128, 64)])
def test_other_sizes(pipes: dict[str, Any], kind: str, height: int, width: int) -> None:
    image = generate(pipes[kind], height=height, width=width, output_type="pt")
    assert image.shape == (1, 3, height, width)
    assert torch.isfinite(image).all()


@pytest.mark.parametrize("kind", PIPELINE_KINDS)
@pytest.mark.parametrize(("height", "width"), [(128, 128), (128, 64)])
def test_latent_shape(pipes: dict[str, Any], kind: str, height: int, width: int) -> None:
    latents = generate(pipes[kind], height=height, width=width)
    assert tuple(latents.shape) == expected_latent_shape(kind, height, width)
    assert torch.isfinite(latents).all()


@pytest.mark.parametrize("kind", PIPELINE_KINDS)
def test_batch_and_negative_prompt(pipes: dict[str, Any], kind: str) -> None:
    pipe = pipes[kind]
    # FLUX.2 [klein] has no negative prompt argument (its negative is always the empty prompt).
    has_negative = "negative_prompt" in inspect.signature(type(pipe).__call__).parameters
    latents = generate(
        pipe,
        prompt=[PROMPT, ""],
        **({"negative_prompt": ["blurry", ""]} if has_negative else {}),
        num_images_per_prompt=2,
        height=64,
        width=64,
    )
    assert tuple(latents.shape) == expected_latent_shape(kind, 64, 64, batch=4)
    assert torch.isfinite(latents).all()


@pytest.mark.parametrize("kind", PIPELINE_KINDS)
def test_determinism(pipes: dict[str, Any], kind: str) -> None:
    pipe = pipes[kind]
    first = generate(pipe, seed=3)
    assert torch.equal(first, generate(pipe, seed=3))
    assert not torch.equal(first, generate(pipe, seed=4))
    rebuilt = tiny_pipeline(kind, seed=0)
    rebuilt.set_progress_bar_config(disable=True)
    assert_same_modules(pipe, rebuilt)
    assert torch.equal(first, generate(rebuilt, seed=3))
    other = tiny_pipeline(kind, seed=1)
    other.set_progress_bar_config(disable=True)
    assert not torch.equal(first, generate(other, seed=3))


def test_building_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    tiny_pipeline("sd")
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("kind", PIPELINE_KINDS)
def test_prompt_embeds_path_matches_prompt_path(pipes: dict[str, Any], kind: str) -> None:
    pipe = pipes[kind]
    embeds = precomputed_embeds(kind, pipe)
    assert torch.equal(generate(pipe), generate(pipe, **embeds))


@pytest.mark.parametrize("kind", PIPELINE_KINDS)
def test_tokenizers_cover_english_and_empty_text(pipes: dict[str, Any], kind: str) -> None:
    pipe = pipes[kind]
    for name, tok in tokenizers_of(pipe).items():
        encoder = pipe.components[name.replace("tokenizer", "text_encoder")]
        # Vision-language encoders (Qwen2.5-VL, Qwen3-VL, Mistral3) keep it in their text config.
        vocab_size = getattr(encoder.config, "text_config", encoder.config).vocab_size
        for text in (PROMPT, "A Dog, 3 cats & naïve café — 中文!", ""):
            if tok.chat_template:  # Qwen: the pipeline only tokenizes its chat turn
                turn = [{"role": "user", "content": text}]
                text = tok.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)
            ids = tok(text).input_ids
            # Qwen's tokenizer adds no BOS, so "" is no tokens (its pipelines, and Z-Image's,
            # wrap every prompt in a chat template).
            no_bos = kind in (*QWEN_VAE_KINDS, "z-image")
            assert len(ids) >= (0 if no_bos and not text else 1), (name, text)
            assert all(0 <= i < vocab_size for i in ids), (name, text)
        assert len(tok(PROMPT).input_ids) > 3, name


@pytest.mark.parametrize("kind", PIPELINE_KINDS)
def test_vae_and_scheduler_configs(pipes: dict[str, Any], kind: str) -> None:
    pipe = pipes[kind]
    if kind in QWEN_VAE_KINDS:
        assert type(pipe.vae).__name__ == "AutoencoderKLQwenImage"
        assert pipe.vae_scale_factor == 8
        assert pipe.vae.config.z_dim == 16
        # Qwen-Image's per-channel statistics (AutoencoderKLQwenImage's config defaults).
        assert pipe.vae.config.latents_mean[:2] == [-0.7571, -0.7089]
        assert pipe.vae.config.latents_std[:2] == [2.8184, 1.4541]
        assert pipe.transformer.config.in_channels == 64
        sched = pipe.scheduler.config
        assert sched.use_dynamic_shifting and sched.time_shift_type == "exponential"
        assert (sched.base_image_seq_len, sched.base_shift) == (256, 0.5)
        expected = (8192, 0.9, 0.02) if kind == "qwen-image" else (6400, 1.15, None)
        assert (sched.max_image_seq_len, sched.max_shift, sched.shift_terminal) == expected
        return
    channels, scaling, shift = VAE_EXPECTED[kind]
    if kind in ("flux2-klein", "flux2"):
        assert pipe.vae_scale_factor == 8
        assert len(pipe.vae.config.block_out_channels) == 4
        assert pipe.vae.config.latent_channels == channels
        assert tuple(pipe.vae.config.patch_size) == (2, 2)
        assert pipe.vae.bn.running_mean.shape == (4 * channels,)
        assert pipe.transformer.config.in_channels == 4 * channels
        # Klein: a base model (classifier-free guidance); FLUX.2 [dev]: guidance embedded.
        if kind == "flux2-klein":
            assert not pipe.config.is_distilled
            assert not pipe.transformer.config.guidance_embeds
        else:
            assert pipe.transformer.config.guidance_embeds
        sched = pipe.scheduler.config
        assert sched.use_dynamic_shifting and not sched.get("use_flow_sigmas")
        return
    if kind == "sana":
        assert pipe.vae_scale_factor == 32
        assert len(pipe.vae.config.encoder_block_out_channels) == 6
        assert pipe.vae.config.latent_channels == channels
        assert pipe.vae.config.scaling_factor == scaling
        assert pipe.transformer.config.in_channels == channels
        assert pipe.transformer.config.patch_size == 1
        sched = pipe.scheduler.config
        assert type(pipe.scheduler).__name__ == "DPMSolverMultistepScheduler"
        assert sched.use_flow_sigmas and sched.prediction_type == "flow_prediction"
        assert sched.flow_shift == 3.0
        return
    if kind == "hidream":
        assert pipe.vae_scale_factor == 1 and pipe.default_sample_size == 128
        assert len(pipe.vae.config.block_out_channels) == 1
        assert pipe.vae.config.latent_channels == channels
        assert (pipe.vae.config.scaling_factor, pipe.vae.config.shift_factor) == (scaling, shift)
        assert pipe.transformer.config.in_channels == channels
        assert pipe.transformer.max_seq == 128 * 128 // 8**2  # default_sample_size, 8x8 patches
        assert type(pipe.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
        assert pipe.scheduler.config.shift == 3.0
        assert not pipe.scheduler.config.use_dynamic_shifting
        return
    assert pipe.vae_scale_factor == 8
    assert len(pipe.vae.config.block_out_channels) == 4
    assert pipe.vae.config.latent_channels == channels
    assert pipe.vae.config.scaling_factor == scaling
    assert pipe.vae.config.shift_factor == shift
    sched = pipe.scheduler.config
    if kind in ("flux", "chroma"):
        assert pipe.transformer.config.in_channels == 4 * channels
        assert sched.use_dynamic_shifting
        assert (sched.base_shift, sched.max_shift) == (0.5, 1.15)
        assert (sched.base_image_seq_len, sched.max_image_seq_len) == (256, 4096)
    elif kind == "sd3":
        assert pipe.transformer.config.patch_size == 2
        assert sched.shift == 3.0 and not sched.use_dynamic_shifting
    elif kind == "cogview4":
        assert pipe.transformer.config.patch_size == 2
        assert sched.use_dynamic_shifting and sched.time_shift_type == "linear"
        assert (sched.base_shift, sched.max_shift, sched.base_image_seq_len) == (0.25, 0.75, 256)
    elif kind in ("z-image", "lumina2"):  # unpacked 16-channel latents, 2x2 patches
        assert pipe.transformer.config.in_channels == channels
        assert not sched.use_dynamic_shifting
        assert sched.shift == {"z-image": 3.0, "lumina2": 6.0}[kind]
    elif kind == "pixart-sigma":
        assert pipe.transformer.config.patch_size == 2
        assert type(pipe.scheduler).__name__ == "DPMSolverMultistepScheduler"
        assert (sched.beta_start, sched.beta_end, sched.beta_schedule) == (0.0001, 0.02, "linear")
        assert sched.prediction_type == "epsilon"
    else:
        assert pipe.unet.config.in_channels == channels
        assert (sched.beta_start, sched.beta_end) == (0.00085, 0.012)
        assert sched.beta_schedule == "scaled_linear"
        assert sched.steps_offset == 1 and sched.timestep_spacing == "leading"
    if kind == "sdxl":
        assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"
        assert pipe.unet.config.addition_embed_type == "text_time"


def safetensors_data_offsets(folder: Path) -> list[int]:
    offsets = []
    for path in sorted(folder.rglob("*.safetensors")):
        with path.open("rb") as f:
            offsets.append(8 + struct.unpack("<Q", f.read(8))[0])
    return offsets


@pytest.mark.parametrize("kind", PIPELINE_KINDS)
def test_save_load_round_trip_offline(
    pipes: dict[str, Any], kind: str, tmp_path: Path, offline: None
) -> None:
    pipe = pipes[kind]
    expected = generate(pipe)
    pipe.save_pretrained(tmp_path / "plain")

    loaded = type(pipe).from_pretrained(tmp_path / "plain")
    loaded.set_progress_bar_config(disable=True)
    assert_same_modules(pipe, loaded)
    assert dict(loaded.scheduler.config) | {"_use_default_values": None} == dict(
        pipe.scheduler.config
    ) | {"_use_default_values": None}
    for name, tok in tokenizers_of(pipe).items():
        reloaded = loaded.components[name]
        for text in (PROMPT, ""):
            assert tok(text).input_ids == reloaded(text).input_ids, name
    # Plain save_pretrained is bit-exact here because the builders' sizes give 16-byte-aligned
    # mmapped weights; if a library bump breaks that, save with save_tiny_pipeline instead.
    # Lumina 2's and FLUX.2 [klein]'s tiny transformers are not (our measurement: the reloaded
    # weights, copied into fresh memory, give the in-memory result bit for bit): only close.
    if kind in UNALIGNED_PLAIN_SAVE:
        torch.testing.assert_close(generate(loaded), expected)
    else:
        assert torch.equal(expected, generate(loaded)), "see align_safetensors"

    # save_tiny_pipeline (save_pretrained + align_safetensors) is bit-exact whatever the headers.
    aligned_dir = save_tiny_pipeline(pipe, tmp_path / "aligned")
    assert all(offset % 64 == 0 for offset in safetensors_data_offsets(aligned_dir))
    assert align_safetensors(aligned_dir) == []  # idempotent
    realigned = type(pipe).from_pretrained(aligned_dir)
    realigned.set_progress_bar_config(disable=True)
    assert torch.equal(expected, generate(realigned))
    assert torch.equal(generate(pipe, output_type="pt"), generate(realigned, output_type="pt"))


@pytest.mark.parametrize("scheduler", SD_SCHEDULERS)
def test_sd_schedulers(scheduler: str) -> None:
    pipe = tiny_sd_pipeline(scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe.scheduler).__name__.lower().startswith(scheduler)
    latents = generate(pipe, steps=4, height=64, width=64)
    assert tuple(latents.shape) == (1, 4, 8, 8)
    assert torch.isfinite(latents).all()


def test_unknown_names_raise() -> None:
    with pytest.raises(ValueError, match="unknown pipeline kind"):
        tiny_pipeline("sd2")
    with pytest.raises(ValueError, match="unknown SD scheduler"):
        tiny_sd_pipeline(scheduler="lms")


def test_tiny_vae_round_trip_shapes() -> None:
    vae = tiny_vae(16, seed=5)
    with torch.no_grad():
        latents = vae.encode(torch.zeros(1, 3, 64, 96)).latent_dist.mode()
        assert latents.shape == (1, 16, 8, 12)
        assert vae.decode(latents).sample.shape == (1, 3, 64, 96)
