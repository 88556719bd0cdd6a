"""A tiny lssgen-mini, trained and assembled through the CLI once per session (seconds)."""

import pytest
from mini_support import LOW, NATIVE, mini

from lssgen.cli import main
from lssgen_diffusers.testing import single_thread


@pytest.fixture(scope="session")
def tiny_work(tmp_path_factory):
    """A work folder after every stage, through the CLI, with the smallest sizes."""
    with single_thread():
        return _train_tiny(tmp_path_factory.mktemp("work"))


def _train_tiny(work):
    loop = ["--steps", 2, "--batch-size", 2, "--warmup-steps", 1, "--checkpoint-every", 1]
    assert mini("text", "--work", work, "--hidden-size", 16) == 0
    vae = ["--crop", LOW, "--size", NATIVE, "--channels", "8,8,8,8", "--stats-count", 4]
    assert mini("vae", "--work", work, *loop, *vae) == 0
    cache = ["--count", 4, "--size", NATIVE, "--low-size", LOW, "--chunk-size", 2]
    assert mini("latents", "--work", work, *cache) == 0
    net = ["--layers", 1, "--heads", 2, "--head-dim", 8]
    assert mini("transformer", "--work", work, *loop, *net) == 0
    assert mini("images", "--work", work, "--count", 2, "--size", NATIVE) == 0
    upsampler = ["--size", LOW, "--steps", 2, "--batch-size", 2, "--num-workers", 0]
    folders = ["--vae", work / "vae", "--images", work / "images", "--output", work / "upsampler"]
    assert main(["train-upsampler", *map(str, folders + upsampler)]) == 0
    return work


@pytest.fixture(scope="session")
def tiny_folder(tiny_work, tmp_path_factory):
    """The tiny work folder assembled into a pipeline folder (made before any test changes the
    work folder)."""
    output = tmp_path_factory.mktemp("pipeline") / "lssgen-mini"
    assert mini("assemble", "--work", tiny_work, "--output", output) == 0
    return output
