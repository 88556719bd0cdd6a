"""lssgen-mini ships its upsampler's calibration: ``start_sigma="auto"`` works for every scaling
mode of the shipped folder, each mode entering where its own measured error allows."""

import pytest

from lssgen.mini.model import MINI_SETTINGS, SHIPPED_MODEL
from lssgen.mini.probe import PROBE_DATA_SEED
from lssgen.mini.quality import EVAL_DATA_SEED
from lssgen.mini.train_data import TRAIN_DATA_SEED
from lssgen_core.auto_entry import auto_start_sigma
from lssgen_core.upsample import LatentUpsampler
from lssgen_core.upsample.calibration import CALIBRATED_MODES


@pytest.fixture(scope="module")
def upsampler() -> LatentUpsampler:
    return LatentUpsampler.from_pretrained(SHIPPED_MODEL / "latent_upsampler")


def test_every_mode_has_a_calibration_from_held_out_renders(upsampler) -> None:
    assert set(upsampler.calibration) == set(CALIBRATED_MODES)
    for calibration in upsampler.calibration.values():
        # Measured on renders of the probe's dataset seed, neither training's nor the
        # evaluation's (auto must not be tuned on the evaluation), as the pipeline's first stage
        # makes them (area downsample), at the model's native size.
        assert calibration.source.endswith(f"data-seed-{PROBE_DATA_SEED}")
        assert PROBE_DATA_SEED not in (TRAIN_DATA_SEED, EVAL_DATA_SEED)
        assert calibration.downsample == "area"
        assert calibration.crop_size == MINI_SETTINGS.size
        assert calibration.num_crops >= 64


def test_the_learned_upsampler_enters_lowest_and_interpolation_highest(upsampler) -> None:
    levels = {
        mode: auto_start_sigma(upsampler.calibration_for(mode), scaling_mode=mode)
        for mode in ("resnet", "pixel", "latent")
    }
    assert 0 < levels["resnet"] < levels["pixel"] < levels["latent"] < 1
