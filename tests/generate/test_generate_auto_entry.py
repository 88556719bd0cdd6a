"""`lssgen generate --start-sigma auto` (issue 16): the level the upsampler's calibration gives
reaches every call, and a value that is neither a number nor "auto" is refused naming the flag."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from generate_support import LSS, generate, pngs

from lssgen.training.train import default_upsampler_config, init_upsampler
from lssgen_core.auto_entry import auto_start_sigma
from lssgen_core.upsample.calibration import ScalerCalibration
from lssgen_diffusers.call_defaults import CALL_DEFAULTS_NAME

# A made-up held-out error for the resnet scaler: the test needs a calibration, not a good one.
CALIBRATION = ScalerCalibration(
    relative_error=0.08, latent_variance=1.0, num_crops=8, crop_size=64, source="held-out"
)


@pytest.fixture(scope="module")
def calibrated_upsampler(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("calibrated16")
    upsampler = init_upsampler(default_upsampler_config(16), seed=0)
    upsampler.calibration = {"resnet": CALIBRATION}
    upsampler.save_pretrained(folder)
    return folder


def _args(flux_dir: Path, upsampler: Path, outdir: Path, *extra: str) -> list[str | Path]:
    model = ["--model", flux_dir, "--upsampler", upsampler, "--prompt", "a red cube"]
    return [*model, *LSS, "--n-samples", "1", "--outdir", outdir, *extra]


def test_auto_reaches_the_pipeline_as_the_calibrations_level(
    flux_dir: Path, calibrated_upsampler: Path, tmp_path: Path
) -> None:
    level = auto_start_sigma(CALIBRATION, scaling_mode="resnet")
    auto, fixed = tmp_path / "auto", tmp_path / "fixed"
    assert generate(*_args(flux_dir, calibrated_upsampler, auto, "--start-sigma", "auto")) == 0
    assert json.loads((auto / "config.json").read_text())["start_sigma"] == level
    # The calls ran at that level: the same images as asking for the number itself.
    assert generate(*_args(flux_dir, calibrated_upsampler, fixed, "--start-sigma", str(level))) == 0
    assert pngs(auto) and pngs(auto) == pngs(fixed)


@pytest.mark.parametrize(
    ("value", "extra", "message"),
    [
        ("automatic", [], "argument --start-sigma: must be a number or 'auto', got automatic"),
        ("nan", [], "argument --start-sigma: must be a finite number"),
        # The resnet calibration is stored; latent interpolation has none to read.
        ("auto", ["--scaling-mode", "latent"], "argument --start-sigma: start_sigma='auto'"),
    ],
)
def test_a_bad_start_sigma_is_refused_naming_the_flag(
    capsys: pytest.CaptureFixture[str],
    flux_dir: Path,
    calibrated_upsampler: Path,
    tmp_path: Path,
    value: str,
    extra: list[str],
    message: str,
) -> None:
    args = _args(flux_dir, calibrated_upsampler, tmp_path / "out", "--start-sigma", value, *extra)
    if extra:  # --upsampler goes only with resnet
        args = [a for a in args if a != calibrated_upsampler and a != "--upsampler"]
    try:
        status = generate(*args)
    except SystemExit as exit:  # argparse refuses what its type refuses, as it always does
        status = exit.code
    assert status == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "config.json").exists()


def test_auto_recommended_by_the_folder_reaches_the_pipeline(
    flux_dir: Path, calibrated_upsampler: Path, tmp_path: Path
) -> None:
    model = tmp_path / "flux"
    shutil.copytree(flux_dir, model)
    (model / CALL_DEFAULTS_NAME).write_text(json.dumps({"start_sigma": "auto"}))
    outdir = tmp_path / "out"
    assert generate(*_args(model, calibrated_upsampler, outdir)) == 0
    level = auto_start_sigma(CALIBRATION, scaling_mode="resnet")
    assert json.loads((outdir / "config.json").read_text())["start_sigma"] == level
