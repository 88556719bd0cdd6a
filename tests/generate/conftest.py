"""Tiny offline pipelines saved once per session, and one reference run the tests compare to.

Sizes keep the folder fast on two CPU cores: 64 px images, 4 steps in two stages, 2 prompts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from generate_support import LSS, PROMPTS, generate, write_jsonl

from lssgen.training.train import default_upsampler_config, init_upsampler
from lssgen_diffusers.testing import save_tiny_pipeline, single_thread, tiny_pipeline


@pytest.fixture(autouse=True)
def _single_thread(one_thread: None) -> None:
    """Every test here on one intra-op thread (the root conftest's ``one_thread``)."""


@pytest.fixture(scope="session")
def flux_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline(tiny_pipeline("flux"), tmp_path_factory.mktemp("flux"))


@pytest.fixture(scope="session")
def upsampler16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("upsampler16")
    init_upsampler(default_upsampler_config(16), seed=0).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def sd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny SD with its upsampler in latent_upsampler/, where `--upsampler` is not needed."""
    folder = save_tiny_pipeline(tiny_pipeline("sd"), tmp_path_factory.mktemp("sd"))
    init_upsampler(default_upsampler_config(4), seed=1).save_pretrained(folder / "latent_upsampler")
    return folder


@pytest.fixture(scope="session")
def prompts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("prompts") / "evaluation_metadata.jsonl", PROMPTS)


@pytest.fixture(scope="session")
def flux_args(flux_dir: Path, upsampler16: Path, prompts_file: Path) -> list[str]:
    """Arguments of the FLUX run every FLUX test repeats (add --outdir and --batch-size)."""
    model = ["--model", str(flux_dir), "--upsampler", str(upsampler16)]
    return [*model, "--prompts", str(prompts_file), *LSS, "--n-samples", "2"]


@pytest.fixture(scope="session")
def flux_reference(tmp_path_factory: pytest.TempPathFactory, flux_args: list[str]) -> Path:
    """One uninterrupted single-process run, batch size 3."""
    outdir = tmp_path_factory.mktemp("flux_reference")
    with single_thread():
        assert generate(*flux_args, "--outdir", outdir, "--batch-size", "3") == 0
    return outdir


@pytest.fixture
def reference_copy(flux_reference: Path, tmp_path: Path) -> Path:
    """A copy of the reference run's folder, for a test to damage, extend or resume."""
    outdir = tmp_path / "out"
    shutil.copytree(flux_reference, outdir)
    return outdir
