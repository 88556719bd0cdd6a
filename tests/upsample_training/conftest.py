"""Shared fixtures: procedurally generated image folders, tiny VAEs, one trained upsampler.

Everything is generated offline and sized so the whole folder runs in well under a minute on two
CPU cores: training crops are 64 px (32 px low-resolution input), i.e. 8x8 and 4x4 latents.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from upsample_training_support import SIZE, TRAINED_CONFIG, write_images

from lssgen.images import ImageFolder
from lssgen.training.train import default_upsampler_config, init_upsampler, train_upsampler
from lssgen_diffusers.testing import single_thread, tiny_vae
from lssgen_diffusers.vae import VaeCodec


@pytest.fixture(autouse=True)
def _single_thread(one_thread: None) -> None:
    """Every test here on one intra-op thread (the root conftest's ``one_thread``)."""


@pytest.fixture(scope="session")
def train_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_images(tmp_path_factory.mktemp("train_images"), 24, seed=0)


@pytest.fixture(scope="session")
def heldout_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_images(tmp_path_factory.mktemp("heldout_images"), 8, seed=1)


@pytest.fixture(scope="session")
def codec4() -> VaeCodec:
    return VaeCodec.from_vae(tiny_vae(4, seed=0).requires_grad_(False))


@pytest.fixture(scope="session")
def vae4_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("vae4")
    tiny_vae(4, seed=0).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def pipeline_dir(tmp_path_factory: pytest.TempPathFactory, vae4_dir: Path) -> Path:
    """A pipeline-shaped folder: model_index.json and the VAE in vae/ (nothing else is read)."""
    folder = tmp_path_factory.mktemp("pipeline")
    shutil.copytree(vae4_dir, folder / "vae")
    index = {"_class_name": "StableDiffusionPipeline", "vae": ["diffusers", "AutoencoderKL"]}
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


@pytest.fixture(scope="session")
def train_images(train_dir: Path) -> ImageFolder:
    return ImageFolder(train_dir, min_size=2 * SIZE)


@pytest.fixture(scope="session")
def trained(train_images: ImageFolder, codec4: VaeCodec):
    model = init_upsampler(default_upsampler_config(4), seed=0)
    with single_thread():
        return train_upsampler(model, train_images, codec4.encode, TRAINED_CONFIG)
