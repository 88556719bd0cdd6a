"""The latent upsampler as a pipeline component: construction, offloading, save and load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import DiffusionPipeline, FluxPipeline
from lss_testkit import LSS_CLASSES, latent_call, lss_from_stock, random_upsampler

from lssgen_core.upsample import LatentUpsampler
from lssgen_diffusers import LatentUpSampler, LSSFluxPipeline
from lssgen_diffusers.family import LSSFamily
from lssgen_diffusers.mixin import LSSPipelineMixin
from lssgen_diffusers.testing import save_tiny_pipeline, tiny_flux_pipeline

ARGS: dict[str, Any] = latent_call(128, 4, seed=None, min_size=64)


def test_readme_names_import() -> None:
    assert LatentUpSampler is LatentUpsampler


@pytest.mark.parametrize("cls", list(LSS_CLASSES.values()), ids=list(LSS_CLASSES))
def test_upsampler_sits_between_denoiser_and_vae_in_the_offload_sequence(cls: type) -> None:
    sequence = cls.model_cpu_offload_seq.split("->")
    assert sequence[-2:] == ["latent_upsampler", "vae"]
    assert "latent_upsampler" in cls._optional_components
    # LSS class -> mixin -> the family contract (with shared layouts) -> stock pipeline
    assert cls.__mro__[1] is LSSPipelineMixin
    stock = next(base for base in cls.__mro__[2:] if not issubclass(base, LSSFamily))
    assert stock.__module__.startswith("diffusers.")
    assert all(issubclass(base, LSSFamily) for base in cls.__mro__[2 : cls.__mro__.index(stock)])


def test_model_cpu_offload_keeps_models_loaded_between_stages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipe = lss_from_stock("flux", tiny_flux_pipeline())
    pipe.enable_model_cpu_offload(device="cpu")
    assert any(hook.model is pipe.latent_upsampler for hook in pipe._all_hooks)
    frees: list[int] = []
    stock_free = DiffusionPipeline.maybe_free_model_hooks
    monkeypatch.setattr(
        DiffusionPipeline,
        "maybe_free_model_hooks",
        lambda self: frees.append(1) or stock_free(self),
    )
    latents = pipe(**ARGS, generator=torch.Generator().manual_seed(0)).images
    assert len(pipe.lss_plan.stages) == 2
    assert frees == [1]  # once, at the end: not between the stages
    assert torch.isfinite(latents).all()


@pytest.fixture(scope="module")
def saved_flux(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stock tiny FLUX pipeline saved the way the Hub stores it (no upsampler)."""
    return save_tiny_pipeline(tiny_flux_pipeline(), tmp_path_factory.mktemp("flux"))


def test_from_pipe_adds_the_upsampler(lss_pair: Any) -> None:
    stock = lss_pair("sd3").stock
    upsampler = random_upsampler(16)
    pipe = LSS_CLASSES["sd3"].from_pipe(stock, latent_upsampler=upsampler)
    assert pipe.latent_upsampler is upsampler
    assert pipe.transformer is stock.transformer


def test_from_pretrained_takes_the_upsampler(saved_flux: Path) -> None:
    upsampler = random_upsampler(16)
    pipe = LSSFluxPipeline.from_pretrained(saved_flux, latent_upsampler=upsampler)
    assert pipe.latent_upsampler is upsampler
    assert "latent_upsampler" in pipe.components
    without = LSSFluxPipeline.from_pretrained(saved_flux)
    assert without.latent_upsampler is None


def test_save_and_load_round_trip(saved_flux: Path, tmp_path: Path) -> None:
    upsampler = random_upsampler(16, seed=3)
    pipe = LSSFluxPipeline.from_pretrained(saved_flux, latent_upsampler=upsampler)
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path)

    assert (tmp_path / "latent_upsampler" / "config.json").is_file()
    assert (tmp_path / "latent_upsampler" / "diffusion_pytorch_model.safetensors").is_file()
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["latent_upsampler"] == [None, None]
    assert pipe.config.latent_upsampler[1] == "LatentUpsampler"  # the live config is untouched

    loaded = LSSFluxPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.latent_upsampler, LatentUpsampler)
    for name, tensor in upsampler.state_dict().items():
        assert torch.equal(loaded.latent_upsampler.state_dict()[name], tensor), name
    torch.testing.assert_close(
        loaded(**ARGS, generator=torch.Generator().manual_seed(0)).images,
        pipe(**ARGS, generator=torch.Generator().manual_seed(0)).images,
    )
    # The stock class still reads the folder (it ignores the upsampler).
    assert isinstance(FluxPipeline.from_pretrained(tmp_path), FluxPipeline)
    # dtype (and the deprecated torch_dtype) applies to the upsampler too.
    for argument in ("dtype", "torch_dtype"):
        half = LSSFluxPipeline.from_pretrained(tmp_path, **{argument: torch.bfloat16})
        assert half.latent_upsampler.dtype == torch.bfloat16, argument
        assert half.transformer.dtype == torch.bfloat16, argument
