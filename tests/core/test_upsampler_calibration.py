"""Scaler calibrations stored in the upsampler's config.json (lssgen_core.upsample.calibration)."""

import json
import math

import pytest
import torch

from lssgen_core.upsample import LatentUpsampler, UpsamplerConfig
from lssgen_core.upsample.calibration import CALIBRATION_KEY, ScalerCalibration
from lssgen_core.upsample.io import CONFIG_NAME, WEIGHTS_NAME, write_calibrations


def calibration(error: float = 0.05, **overrides) -> ScalerCalibration:
    fields = {
        "relative_error": error,
        "latent_variance": 0.9,
        "num_crops": 16,
        "crop_size": 128,
        "source": "held-out",
        **overrides,
    }
    return ScalerCalibration(**fields)


def small_upsampler() -> LatentUpsampler:
    torch.manual_seed(0)
    return LatentUpsampler(UpsamplerConfig.released_4ch())


def test_calibrations_survive_a_save_and_load(tmp_path) -> None:
    model = small_upsampler()
    model.calibration = {"resnet": calibration(0.05), "bicubic": calibration(0.2)}
    model.save_pretrained(tmp_path)
    stored = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert set(stored[CALIBRATION_KEY]) == {"resnet", "bicubic"}
    loaded = LatentUpsampler.from_pretrained(tmp_path)
    assert loaded.calibration == model.calibration
    # "latent" is bicubic by another name; a mode never measured has none.
    assert loaded.calibration_for("latent") == calibration(0.2)
    assert loaded.calibration_for("pixel") is None
    # The architecture reads as before: the private key is not a config field.
    assert loaded.config == UpsamplerConfig.released_4ch()


def test_a_folder_without_calibration_loads_with_none_and_saves_without_the_key(tmp_path) -> None:
    small_upsampler().save_pretrained(tmp_path)
    assert CALIBRATION_KEY not in json.loads((tmp_path / CONFIG_NAME).read_text())
    assert LatentUpsampler.from_pretrained(tmp_path).calibration == {}


def test_writing_calibrations_merges_them_and_leaves_the_weights_alone(tmp_path) -> None:
    model = small_upsampler()
    model.calibration = {"resnet": calibration(0.05), "pixel": calibration(0.3)}
    model.save_pretrained(tmp_path)
    weights = (tmp_path / WEIGHTS_NAME).read_bytes()
    write_calibrations(tmp_path, {"resnet": calibration(0.04), "nearest": calibration(0.5)})
    assert (tmp_path / WEIGHTS_NAME).read_bytes() == weights
    loaded = LatentUpsampler.from_pretrained(tmp_path)
    assert loaded.calibration == {
        "resnet": calibration(0.04),
        "pixel": calibration(0.3),
        "nearest": calibration(0.5),
    }


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"resnet": {**calibration().to_dict(), "relative_error": math.nan}}, "relative_error"),
        ({"resnet": {**calibration().to_dict(), "relative_error": -1}}, "relative_error"),
        ({"resnet": {**calibration().to_dict(), "latent_variance": 0}}, "latent_variance"),
        ({"resnet": {**calibration().to_dict(), "num_crops": 0}}, "num_crops"),
        ({"resnet": {**calibration().to_dict(), "psnr": 30}}, "unknown calibration keys"),
        ({"latent": calibration().to_dict()}, "calibrated scaling modes"),
        ({"resnet": {"relative_error": 0.1}}, "missing"),
        ([0.1], "must map scaling modes"),
    ],
)
def test_a_damaged_calibration_is_refused_naming_the_file_and_the_field(
    tmp_path, entry, message
) -> None:
    small_upsampler().save_pretrained(tmp_path)
    path = tmp_path / CONFIG_NAME
    data = json.loads(path.read_text())
    data[CALIBRATION_KEY] = entry
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message) as error:
        LatentUpsampler.from_pretrained(tmp_path)
    assert str(path) in str(error.value)


def test_setting_a_calibration_checks_it() -> None:
    model = small_upsampler()
    with pytest.raises(ValueError, match="calibrated scaling modes"):
        model.calibration = {"bogus": calibration()}
    with pytest.raises(TypeError, match="ScalerCalibration"):
        model.calibration = {"resnet": {"relative_error": 0.1}}
