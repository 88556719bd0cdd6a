"""Calibrations for ``start_sigma="auto"``: measured by ``lssgen eval-upsampler`` and ``lssgen
train-upsampler`` on held-out images, stored in the upsampler's config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from upsample_training_support import SIZE, held_out_crops

from lssgen.cli import main
from lssgen.training.calibrate import auto_levels, calibrations_from_comparison
from lssgen.training.pairs import to_signed_unit
from lssgen.training.scaler_comparison import compare_with_standard_scalers, latent_variance
from lssgen.training.train import default_upsampler_config, init_upsampler
from lssgen_core.auto_entry import auto_entry_level
from lssgen_core.upsample import LatentUpsampler
from lssgen_core.upsample.calibration import CALIBRATED_MODES, CALIBRATION_KEY
from lssgen_core.upsample.io import CONFIG_NAME, WEIGHTS_NAME

TINY = ["--size", str(SIZE), "--batch-size", "4", "--lr", "1e-3", "--num-workers", "0"]


def test_each_modes_relative_error_is_its_mse_over_the_target_latents_variance(
    trained, codec4, heldout_dir: Path
) -> None:
    crops = held_out_crops(heldout_dir)
    result = compare_with_standard_scalers(
        trained.model, crops, codec4.encode, codec4.decode, preview_count=0
    )
    targets = codec4.encode(to_signed_unit(crops)).float()
    assert result.latent_variance == pytest.approx(latent_variance(targets), rel=1e-6)
    calibrations = calibrations_from_comparison(result, "held")
    assert set(calibrations) == set(CALIBRATED_MODES)
    for mode, name in (("resnet", "upsampler"), ("bicubic", "bicubic"), ("pixel", "pixel")):
        expected = result.score(name).latent_mse / result.latent_variance
        assert calibrations[mode].relative_error == pytest.approx(expected)
        assert calibrations[mode].num_crops == 6 and calibrations[mode].crop_size == 2 * SIZE
    # The trained upsampler errs less than bicubic, so it enters lower.
    levels = auto_levels(calibrations)
    assert levels["resnet"] < levels["bicubic"]


def test_latent_variance_is_per_channel_about_each_channels_mean() -> None:
    torch.manual_seed(0)
    latents = torch.randn(64, 3, 8, 8) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    shifted = latents + torch.tensor([10.0, -5.0, 0.0]).view(1, 3, 1, 1)
    assert latent_variance(shifted) == pytest.approx(latent_variance(latents), rel=1e-9)
    assert latent_variance(latents) == pytest.approx((1 + 4 + 9) / 3, rel=0.05)


def test_eval_upsampler_reports_the_levels_and_calibrates_only_when_asked(
    pipeline_dir: Path, heldout_dir: Path, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "upsampler"
    init_upsampler(default_upsampler_config(4), seed=0).save_pretrained(folder)
    weights = (folder / WEIGHTS_NAME).read_bytes()
    before = (folder / CONFIG_NAME).read_text()
    common = [
        "eval-upsampler", "--vae", str(pipeline_dir), "--upsampler", str(folder),
        "--images", str(heldout_dir), "--size", str(SIZE), "--num-crops", "4", "--preview", "0",
    ]  # fmt: skip
    assert main([*common, "--output", str(tmp_path / "eval")]) == 0
    out = capsys.readouterr().out
    assert "auto start_sigma" in out and "resnet" in out
    assert (folder / CONFIG_NAME).read_text() == before
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert report["latent_variance"] > 0
    for mode, level in report["auto_start_sigma"].items():
        method = "upsampler" if mode == "resnet" else mode
        error = report["methods"][method]["relative_error"]
        variance = report["latent_variance"]
        assert level == pytest.approx(auto_entry_level(error, latent_variance=variance))

    assert main([*common, "--output", str(tmp_path / "eval2"), "--calibrate"]) == 0
    assert (folder / WEIGHTS_NAME).read_bytes() == weights
    stored = LatentUpsampler.from_pretrained(folder).calibration
    assert set(stored) == set(CALIBRATED_MODES)
    assert stored["resnet"].relative_error == pytest.approx(
        report["methods"]["upsampler"]["relative_error"]
    )
    assert stored["resnet"].source == heldout_dir.name
    # Committed folders name no machine's paths.
    assert str(tmp_path) not in (folder / CONFIG_NAME).read_text()


def test_train_upsampler_stores_a_calibration_from_held_out_images(
    vae4_dir: Path, train_dir: Path, heldout_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "trained"
    args = [
        "train-upsampler", "--vae", str(vae4_dir), "--images", str(train_dir),
        "--output", str(out), *TINY, "--steps", "2", "--held-out-images", str(heldout_dir),
        "--calibration-crops", "4",
    ]  # fmt: skip
    assert main(args) == 0
    data = json.loads((out / CONFIG_NAME).read_text())
    assert set(data[CALIBRATION_KEY]) == set(CALIBRATED_MODES)
    loaded = LatentUpsampler.from_pretrained(out)
    assert loaded.calibration["resnet"].num_crops == 4
    assert loaded.calibration["pixel"].source == heldout_dir.name


def test_train_upsampler_refuses_a_missing_held_out_folder_before_training(
    vae4_dir: Path, train_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "trained"
    args = [
        "train-upsampler", "--vae", str(vae4_dir), "--images", str(train_dir),
        "--output", str(out), *TINY, "--steps", "2",
        "--held-out-images", str(tmp_path / "absent"),
    ]  # fmt: skip
    assert main(args) == 2
    assert "--held-out-images" in capsys.readouterr().err
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())
