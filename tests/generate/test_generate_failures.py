"""`lssgen generate` when things go wrong mid-run (issue 12): a model that makes NaN images, a
full disk, a PNG damaged in the middle. Nothing non-finite is written or counted as done,
nothing finished is lost, and the user gets one line, not a traceback."""

from __future__ import annotations

import errno
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from generate_support import generate, pngs
from PIL import Image
from safetensors.torch import load_file, save_file

from lssgen.cli import generate as generate_cli
from lssgen.cli.geneval_layout import is_complete_png


@pytest.fixture(scope="module")
def nan_vae_flux(flux_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny FLUX with one NaN in its VAE decoder: every image decodes to NaN (black as a
    PNG), while the latents stay finite, so only the check on the decoded image can catch it."""
    folder = tmp_path_factory.mktemp("nan_vae") / "flux"
    shutil.copytree(flux_dir, folder)
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(weights))
    key = "decoder.conv_out.weight"
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = float("nan")
    save_file(tensors, str(weights), metadata={"format": "pt"})
    return folder


def test_non_finite_images_are_not_written_and_not_counted_as_done(
    nan_vae_flux: Path, prompts_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = tmp_path / "out"
    args = ["--model", nan_vae_flux, "--plain", "--prompts", prompts_file, "--outdir", outdir]
    args += ["--height", "64", "--width", "64", "--steps", "2", "--n-samples", "2"]
    assert generate(*args) == 1
    err = capsys.readouterr().err
    assert "lssgen generate: error: image 00000/00000" in err and "NaN or inf pixels" in err
    assert "Traceback" not in err
    assert pngs(outdir) == {}  # no black PNG
    assert generate(*args) == 1  # a rerun tries again rather than skipping a "finished" image
    assert pngs(outdir) == {}


def test_a_full_disk_is_one_line_and_keeps_what_was_finished(
    flux_reference: Path,
    flux_args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outdir = tmp_path / "out"
    write = generate_cli.write_bytes_atomic
    written: list[Path] = []

    def disk_fills_after_two_images(path: Path, data: bytes) -> Path:
        if path.suffix == ".png" and len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        return write(path, data)

    with monkeypatch.context() as patch:
        patch.setattr(generate_cli, "write_bytes_atomic", disk_fills_after_two_images)
        assert generate(*flux_args, "--outdir", outdir) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if "error" in line]
    assert line.startswith("lssgen generate: error: cannot write ")
    assert "00001/samples/00000.png" in line and "No space left on device" in line
    assert "2 of 4 images are done" in line and "run the same command again" in line
    finished = pngs(outdir)
    reference = pngs(flux_reference)
    assert list(finished) == ["00000/samples/00000.png", "00000/samples/00001.png"]
    assert all(finished[name] == reference[name] for name in finished)
    assert not list(outdir.rglob("*.tmp"))

    assert generate(*flux_args, "--outdir", outdir) == 0  # space freed: the rerun finishes
    assert pngs(outdir) == reference


def _noisy_png(width: int, height: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_png_damaged_in_the_middle_is_incomplete(tmp_path: Path) -> None:
    data = _noisy_png(48, 32)
    path = tmp_path / "00000.png"
    path.write_bytes(data)
    assert is_complete_png(path, 48, 32)
    middle = len(data) // 2
    damaged = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    path.write_bytes(damaged)  # same length, same header and trailer
    assert not is_complete_png(path, 48, 32)
    path.write_bytes(data[:middle] + b"\0" * 64 + data[middle + 64 :])
    assert not is_complete_png(path, 48, 32)
    path.write_bytes(data + b"trailing")
    assert not is_complete_png(path, 48, 32)


def test_resume_regenerates_a_png_damaged_in_the_middle(
    flux_reference: Path, flux_args: list[str], reference_copy: Path
) -> None:
    outdir = reference_copy
    damaged = outdir / "00001" / "samples" / "00001.png"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    assert generate(*flux_args, "--outdir", outdir) == 0
    assert pngs(outdir) == pngs(flux_reference)
    result = json.loads((outdir / "result.json").read_text())
    assert result["last_run"]["images_generated"] == 1


def test_an_upsampler_with_nan_weights_is_refused_before_the_model_loads(
    flux_dir: Path,
    upsampler16: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Issue 12: it loaded, every image came out black, and a rerun skipped them as done.
    folder = tmp_path / "upsampler"
    shutil.copytree(upsampler16, folder)
    weights = folder / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(weights))
    tensors["upsampler.conv_out.bias"] = tensors["upsampler.conv_out.bias"] * float("nan")
    save_file(tensors, str(weights), metadata={"format": "pt"})

    def refuse(*_args: object) -> None:
        raise AssertionError("the model was loaded before the upsampler was checked")

    monkeypatch.setattr(generate_cli, "_load_pipeline", refuse)
    args = ["--model", flux_dir, "--upsampler", folder, "--prompt", "a", "--outdir", tmp_path]
    assert generate(*args, "--height", "64", "--width", "64", "--min-size", "32") == 2
    err = capsys.readouterr().err
    assert "lssgen generate: error: argument --upsampler:" in err
    assert "non-finite" in err and "upsampler.conv_out.bias" in err and str(weights) in err
    assert pngs(tmp_path) == {}
