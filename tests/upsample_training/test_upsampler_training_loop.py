"""The training loop: it learns, saves a loadable folder, resumes bit for bit, beats bicubic."""

from __future__ import annotations

import json
import math
from pathlib import Path

import attrs
import pytest
import torch
from safetensors.torch import save_file
from upsample_training_support import (
    SIZE,
    TRAINED_CONFIG,
    held_out_crops,
)

from lssgen.training.checkpoint import STATE_NAME, TENSORS_PREFIX
from lssgen.training.loop import NonFiniteLossError
from lssgen.training.lpips import LPIPS, load_lpips, lpips_key_map
from lssgen.training.resume import ResumeError
from lssgen.training.scaler_comparison import compare_with_standard_scalers
from lssgen.training.train import (
    TrainConfig,
    default_upsampler_config,
    init_upsampler,
    train_upsampler,
)
from lssgen_core.upsample import LatentUpsampler

SHORT = TrainConfig(size=SIZE, steps=8, batch_size=4, lr=1e-3, seed=3)


def _stop_after(step: int):
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= step

    return should_stop


def _fresh() -> LatentUpsampler:
    return init_upsampler(default_upsampler_config(4), seed=0)


def test_short_training_lowers_the_loss(trained) -> None:
    losses = trained.losses
    assert len(losses) == TRAINED_CONFIG.steps
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    print(f"loss: first 10 steps {first:.5f}, last 10 steps {last:.5f}")
    assert last < first / 10


def test_trained_folder_loads_with_from_pretrained(trained, tmp_path: Path) -> None:
    trained.model.save_pretrained(tmp_path)
    loaded = LatentUpsampler.from_pretrained(tmp_path)
    assert loaded.config == default_upsampler_config(4)
    latent = torch.randn(2, 4, 5, 6)
    assert torch.equal(loaded(latent), trained.model(latent))


def test_trained_upsampler_beats_bicubic_on_held_out_crops(
    trained, codec4, heldout_dir: Path
) -> None:
    crops = held_out_crops(heldout_dir, count=32)
    result = compare_with_standard_scalers(
        trained.model, crops, codec4.encode, codec4.decode, preview_count=0
    )
    ours, bicubic = result.score("upsampler").latent_mse, result.score("bicubic").latent_mse
    print(f"held-out latent MSE: upsampler {ours:.6f}, bicubic {bicubic:.6f}")
    assert ours < 0.9 * bicubic


@pytest.mark.parametrize("cache_latents", [False, True], ids=["streamed", "cached"])
def test_resume_reaches_the_uninterrupted_weights_bit_for_bit(
    train_images, codec4, tmp_path: Path, cache_latents: bool
) -> None:
    config = attrs.evolve(SHORT, cache_latents=cache_latents, pool_size=8, pool_reuse=2)
    straight = train_upsampler(_fresh(), train_images, codec4.encode, config)

    folder = tmp_path / "checkpoints"
    first = train_upsampler(
        _fresh(),
        train_images,
        codec4.encode,
        config,
        checkpoint_dir=folder,
        should_stop=_stop_after(config.steps // 2),
    )
    assert first.interrupted and first.step == config.steps // 2
    # Garbage in the RNG that the run does not own must not matter either.
    torch.manual_seed(12345)
    resumed = train_upsampler(
        init_upsampler(default_upsampler_config(4), seed=99),
        train_images,
        codec4.encode,
        config,
        checkpoint_dir=folder,
        resume=True,
    )
    assert resumed.start_step == config.steps // 2 and resumed.step == config.steps
    assert first.losses + resumed.losses == straight.losses
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values()
    ):
        assert torch.equal(a, b), name


def test_checkpoint_folder_keeps_one_consistent_state(train_images, codec4, tmp_path: Path) -> None:
    train_upsampler(
        _fresh(), train_images, codec4.encode, SHORT, checkpoint_dir=tmp_path, checkpoint_every=3
    )
    tensor_files = sorted(p.name for p in tmp_path.glob(f"{TENSORS_PREFIX}*"))
    assert tensor_files == [f"{TENSORS_PREFIX}{SHORT.steps:08d}.safetensors"]
    assert not list(tmp_path.glob("*.tmp"))

    def no_constants(name: str) -> None:
        raise AssertionError(f"non-strict JSON constant {name}")

    state = json.loads((tmp_path / STATE_NAME).read_text(), parse_constant=no_constants)
    assert state["step"] == SHORT.steps and state["tensors"] == tensor_files[0]


def test_resume_refuses_other_settings(train_images, codec4, tmp_path: Path) -> None:
    train_upsampler(
        _fresh(),
        train_images,
        codec4.encode,
        SHORT,
        checkpoint_dir=tmp_path,
        should_stop=_stop_after(2),
    )
    with pytest.raises(ResumeError, match=r"steps: checkpoint 8, now 16"):
        train_upsampler(
            _fresh(),
            train_images,
            codec4.encode,
            attrs.evolve(SHORT, steps=16),
            checkpoint_dir=tmp_path,
            resume=True,
        )
    with pytest.raises(ResumeError, match="no training checkpoint"):
        train_upsampler(
            _fresh(),
            train_images,
            codec4.encode,
            SHORT,
            checkpoint_dir=tmp_path / "none",
            resume=True,
        )


def test_bf16_with_pixel_loss_trains(train_images, codec4) -> None:
    config = attrs.evolve(SHORT, steps=3, dtype="bf16", pixel_loss_weight=0.5)
    result = train_upsampler(_fresh(), train_images, codec4.encode, config, decode=codec4.decode)
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert result.model.dtype == torch.float32  # master weights stay fp32


def _random_lpips_file(path: Path) -> Path:
    torch.manual_seed(0)
    model = LPIPS()
    ours = model.state_dict()
    tensors = {theirs: ours[mine].clone() for theirs, mine in lpips_key_map().items()}
    tensors["scaling_layer.shift"] = model.shift.clone()  # the lpips package stores these too
    tensors["scaling_layer.scale"] = model.scale.clone()
    save_file({k: v.abs().contiguous() for k, v in tensors.items()}, path)
    return path


def test_lpips_loads_from_lpips_package_names_and_trains(
    train_images, codec4, tmp_path: Path
) -> None:
    lpips = load_lpips(_random_lpips_file(tmp_path / "lpips_alex.safetensors"))
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.equal(lpips(x, x), torch.zeros(2))
    assert (lpips(x, y) > 0).all()
    config = attrs.evolve(SHORT, steps=2, lpips_loss_weight=1.0)
    result = train_upsampler(
        _fresh(), train_images, codec4.encode, config, decode=codec4.decode, lpips=lpips
    )
    assert len(result.losses) == 2


def test_lpips_refuses_pickles_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_lpips(tmp_path / "missing.safetensors")
    (tmp_path / "alex.pth").write_bytes(b"\x80\x04")
    with pytest.raises(ValueError, match="pickle"):
        load_lpips(tmp_path / "alex.pth")
    save_file({"x": torch.zeros(1)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="LPIPS"):
        load_lpips(tmp_path / "other.safetensors")


def _checkpointed_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    info = json.loads((folder / STATE_NAME).read_text())
    tensors = load_file(str(folder / info["tensors"]))
    return {k: v for k, v in tensors.items() if k.startswith("model/")}


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(
    train_images, codec4, tmp_path: Path
) -> None:
    # Issue 12: lr 1e6 trained on to NaN weights and saved them. With this seed the loss is
    # finite at steps 1 and 2 (5e21 at step 2) and NaN at step 3.
    config = attrs.evolve(SHORT, lr=1e6)
    with pytest.raises(NonFiniteLossError) as info:
        train_upsampler(
            _fresh(), train_images, codec4.encode, config, checkpoint_dir=tmp_path,
            checkpoint_every=1,
        )  # fmt: skip
    error = info.value
    assert error.step == 3 and not math.isfinite(error.loss)
    assert "step 3" in str(error) and "Lower the learning rate" in str(error)
    saved = json.loads((tmp_path / STATE_NAME).read_text())
    assert saved["step"] == 2  # the checkpoint of the last finite step is kept
    assert all(bool(torch.isfinite(t).all()) for t in _checkpointed_weights(tmp_path).values())


@pytest.mark.parametrize("field", ["lr", "weight_decay", "max_grad_norm", "pixel_loss_weight"])
@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_non_finite_settings_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"{field} must be a finite number"):
        attrs.evolve(SHORT, **{field: value})
