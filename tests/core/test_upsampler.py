"""Tests of lssgen_core.upsample: the latent upsampler, its checkpoint I/O and the scalers."""

from __future__ import annotations

import functools
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lssgen_core.upsample import (
    SCALING_MODES,
    InterpolationScaler,
    LatentScaler,
    LatentUpSampler,
    LatentUpsampler,
    PixelRoundTripScaler,
    UpsamplerConfig,
    make_latent_scaler,
)

WEIGHTS = "diffusion_pytorch_model.safetensors"

# The released 16-channel upsampler of the original repository (FLUX / SD3 / CogView4): its
# config.json verbatim, and its checkpoint's tensor shapes (prefix `upsampler.`).
RELEASED_16CH = Path(__file__).parent / "released_16ch_upsampler"
RELEASED_16CH_CONFIG = json.loads((RELEASED_16CH / "config.json").read_text())
RELEASED_16CH_TABLE = {
    name: tuple(shape)
    for name, shape in json.loads((RELEASED_16CH / "tensors.json").read_text()).items()
}


def table_for(channels: int, wide: int, narrow: int) -> dict[str, tuple[int, ...]]:
    """The released table with the 16-channel numbers swapped for another preset's."""
    swap = {16: channels, 128: wide, 64: narrow}
    return {
        f"upsampler.{key}": tuple(swap.get(d, d) for d in shape)
        for key, shape in RELEASED_16CH_TABLE.items()
    }


def randomized(config: UpsamplerConfig, seed: int = 0) -> LatentUpsampler:
    """A network whose GroupNorm affines are not the trivial ones/zeros, so they get exercised."""
    torch.manual_seed(seed)
    model = LatentUpsampler(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.add_(0.2 * torch.randn_like(param))
    return model.eval()


@functools.cache
def preset_model(channels: int) -> LatentUpsampler:
    return randomized(UpsamplerConfig.released(channels))


def reference_forward(
    state: dict[str, torch.Tensor], config: dict[str, object], x: torch.Tensor
) -> torch.Tensor:
    """The original repository's forward pass, written with plain functional calls on the state
    dict."""
    p = "upsampler."
    mode = config["interpolate"]
    groups = config["norm_num_groups"]
    assert isinstance(mode, str) and isinstance(groups, int)
    h = F.conv2d(x, state[p + "conv_in.weight"], state[p + "conv_in.bias"], padding=1)
    for i, (up, stride) in enumerate(zip(config["is_up_samples"], config["strides"])):  # type: ignore[call-overload]
        b = f"{p}up_blocks.{i}."
        t = F.group_norm(h, groups, state[b + "norm1.weight"], state[b + "norm1.bias"], eps=1e-6)
        if up and stride == 2:
            t = F.conv_transpose2d(
                t, state[b + "conv1.weight"], state[b + "conv1.bias"], stride=2, padding=1
            )
        else:
            t = F.conv2d(t, state[b + "conv1.weight"], state[b + "conv1.bias"], padding=1)
        t = F.silu(t)
        t = F.group_norm(t, groups, state[b + "norm2.weight"], state[b + "norm2.bias"], eps=1e-6)
        t = F.silu(F.conv2d(t, state[b + "conv2.weight"], state[b + "conv2.bias"], padding=1))
        skip = h
        if b + "skip_proj.weight" in state:
            skip = F.conv2d(skip, state[b + "skip_proj.weight"], state[b + "skip_proj.bias"])
        if stride != 1:
            align = None if mode == "nearest" else False
            skip = F.interpolate(skip, scale_factor=stride, mode=mode, align_corners=align)
        h = t + skip
    h = F.group_norm(h, groups, state[p + "norm_out.weight"], state[p + "norm_out.bias"], eps=1e-5)
    return F.conv2d(F.silu(h), state[p + "conv_out.weight"], state[p + "conv_out.bias"], padding=1)


# --- architecture -------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    channels=st.sampled_from([16, 4]),
    batch=st.integers(1, 3),
    height=st.integers(1, 13),
    width=st.integers(1, 13),
)
def test_output_is_twice_the_size(channels: int, batch: int, height: int, width: int) -> None:
    model = preset_model(channels)
    with torch.no_grad():
        out = model(torch.randn(batch, channels, height, width))
    assert out.shape == (batch, channels, 2 * height, 2 * width)
    assert out.dtype == torch.float32


@pytest.mark.parametrize(("channels", "count"), [(16, 557_648), (4, 136_356)])
def test_parameter_counts(channels: int, count: int) -> None:
    model = LatentUpsampler(UpsamplerConfig.released(channels))
    assert sum(p.numel() for p in model.parameters()) == count


@pytest.mark.parametrize(("channels", "wide", "narrow"), [(16, 128, 64), (4, 64, 32)])
def test_state_dict_matches_released_table(channels: int, wide: int, narrow: int) -> None:
    model = LatentUpsampler(UpsamplerConfig.released(channels))
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert shapes == table_for(channels, wide, narrow)


def test_16ch_table_is_the_literal_one() -> None:
    model = LatentUpsampler(UpsamplerConfig.released_16ch())
    shapes = {
        key.removeprefix("upsampler."): tuple(v.shape) for key, v in model.state_dict().items()
    }
    assert shapes == RELEASED_16CH_TABLE
    assert all(key.startswith("upsampler.") for key in model.state_dict())


@pytest.mark.parametrize(
    "config",
    [
        UpsamplerConfig.released_16ch(),
        UpsamplerConfig.released_4ch(),
        # Another interpolation, and blocks with an identity skip that is still resized.
        UpsamplerConfig(
            in_channels=16,
            out_channels=16,
            block_out_channels=(128, 64),
            is_up_samples=(True, False),
            strides=(2, 1),
            interpolate="bicubic",
        ),
        UpsamplerConfig(
            in_channels=8,
            out_channels=8,
            block_out_channels=(64, 64, 32),
            is_up_samples=(True, True, False),
            strides=(2, 2, 1),
            interpolate="nearest",
        ),
    ],
    ids=["16ch", "4ch", "bicubic", "identity-skip-nearest-4x"],
)
def test_forward_matches_functional_reimplementation(config: UpsamplerConfig) -> None:
    model = randomized(config, seed=1).double()
    x = torch.randn(2, config.in_channels, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        got = model(x)
        want = reference_forward(model.state_dict(), config.to_dict(), x)
    assert got.shape == (2, config.out_channels, 5 * config.scale_factor, 7 * config.scale_factor)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_properties_and_alias() -> None:
    model = LatentUpsampler(UpsamplerConfig.released_4ch())
    assert LatentUpSampler is LatentUpsampler
    assert model.config == UpsamplerConfig.released_4ch()
    assert model.in_channels == model.latent_channels == 4
    assert model.scale_factor == 2
    assert model.dtype == torch.float32
    assert model.device == torch.device("cpu")
    assert model.to(torch.bfloat16).dtype == torch.bfloat16


def test_forward_computes_in_weight_dtype_and_returns_input_dtype() -> None:
    model = preset_model(4)
    x = torch.randn(1, 4, 6, 5)
    bf16 = randomized(UpsamplerConfig.released_4ch()).to(torch.bfloat16)
    with torch.no_grad():
        out = bf16(x)
        assert out.dtype == torch.float32
        # Same result as feeding bf16 in: the arithmetic happened in the weights' dtype.
        assert torch.equal(out, bf16(x.to(torch.bfloat16)).float())
        half_in = model(x.to(torch.bfloat16))
        assert half_in.dtype == torch.bfloat16
        assert model(x.double()).dtype == torch.float64


def test_forward_rejects_wrong_channels_and_rank() -> None:
    model = preset_model(16)
    with pytest.raises(ValueError, match=r"4 channels.*in_channels=16"):
        model(torch.randn(1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"4-D"):
        model(torch.randn(16, 8, 8))


def test_check_latent_channels() -> None:
    model = LatentUpsampler(UpsamplerConfig.released_4ch())
    model.check_latent_channels(4)
    expected = (
        "latent_upsampler has in_channels=4 but the VAE's latent has 16 channels; "
        "use an upsampler trained for this VAE"
    )
    with pytest.raises(ValueError) as info:
        model.check_latent_channels(16)
    assert str(info.value) == expected
    with pytest.raises(ValueError, match=r"^upsampler has in_channels=4"):
        model.check_latent_channels(16, argument="upsampler")


# --- config -------------------------------------------------------------------------------------


def test_released_configs_serialize_as_the_originals() -> None:
    assert UpsamplerConfig.released_16ch().to_dict() == RELEASED_16CH_CONFIG
    four = dict(RELEASED_16CH_CONFIG, in_channels=4, out_channels=4, block_out_channels=[64, 32])
    assert UpsamplerConfig.released_4ch().to_dict() == four
    assert UpsamplerConfig.from_dict(RELEASED_16CH_CONFIG) == UpsamplerConfig.released_16ch()
    with_version = dict(RELEASED_16CH_CONFIG, _diffusers_version="0.30.0")
    assert UpsamplerConfig.from_dict(with_version) == UpsamplerConfig.released_16ch()


def test_config_rejects_unknown_and_missing_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown upsampler config keys.*'dropout'"):
        UpsamplerConfig.from_dict(dict(RELEASED_16CH_CONFIG, dropout=0.1))
    incomplete = {k: v for k, v in RELEASED_16CH_CONFIG.items() if k != "strides"}
    with pytest.raises(ValueError, match=r"missing required keys.*'strides'"):
        UpsamplerConfig.from_dict(incomplete)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strides": (2,)}, "same length"),
        ({"block_out_channels": (128, 48)}, r"block_out_channels\[1\]=48.*norm_num_groups=32"),
        ({"act_fn": "tanh"}, "act_fn must be one of.*'silu'"),
        ({"interpolate": "area"}, "interpolate must be one of.*'bicubic'"),
        ({"strides": (1, 1)}, "block 0 has is_up_samples=True and strides=1"),
        ({"is_up_samples": (True, True), "strides": (2, 1)}, "block 1"),
        ({"in_channels": 0}, "in_channels=0 must be an integer >= 1"),
        ({"block_out_channels": (), "is_up_samples": (), "strides": ()}, "at least one block"),
    ],
)
def test_config_validation(changes: dict[str, object], message: str) -> None:
    fields = dict(
        in_channels=16,
        out_channels=16,
        block_out_channels=(128, 64),
        is_up_samples=(True, False),
        strides=(2, 1),
    )
    fields.update(changes)
    with pytest.raises(ValueError, match=message):
        UpsamplerConfig(**fields)  # type: ignore[arg-type]


# --- checkpoint I/O -----------------------------------------------------------------------------


def saved(tmp_path: Path, model: LatentUpsampler, name: str = "up") -> Path:
    folder = tmp_path / name
    model.save_pretrained(folder)
    return folder


def test_save_writes_the_original_layout(tmp_path: Path) -> None:
    folder = saved(tmp_path / "new" / "nested", preset_model(16))
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", WEIGHTS]  # no temp files
    assert json.loads((folder / "config.json").read_text()) == RELEASED_16CH_CONFIG
    with safe_open(str(folder / WEIGHTS), framework="pt") as handle:
        assert {handle.get_slice(k).get_dtype() for k in handle.keys()} == {"F32"}  # noqa: SIM118


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_round_trip_is_bit_exact(tmp_path: Path, dtype: torch.dtype) -> None:
    model = randomized(UpsamplerConfig.released_16ch(), seed=3).to(dtype)
    folder = saved(tmp_path, model)
    stored = load_file(str(folder / WEIGHTS))
    assert {t.dtype for t in stored.values()} == {dtype}
    loaded = LatentUpsampler.from_pretrained(folder)
    assert loaded.config == model.config
    assert loaded.dtype == dtype
    original_state, loaded_state = model.state_dict(), loaded.state_dict()
    assert original_state.keys() == loaded_state.keys()
    for key, value in original_state.items():
        assert torch.equal(value, loaded_state[key]), key
    x = torch.randn(2, 16, 7, 9)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    # Saving what was loaded reproduces the same bytes.
    again = saved(tmp_path, loaded, name="again")
    assert (again / WEIGHTS).read_bytes() == (folder / WEIGHTS).read_bytes()


def test_torch_dtype_casts_and_subfolder(tmp_path: Path) -> None:
    model = randomized(UpsamplerConfig.released_4ch(), seed=4).to(torch.bfloat16)
    saved(tmp_path / "repo", model, name="latent_upsampler")
    loaded = LatentUpsampler.from_pretrained(
        tmp_path / "repo", subfolder="latent_upsampler", torch_dtype=torch.float32, device="cpu"
    )
    assert loaded.dtype == torch.float32
    for key, value in model.state_dict().items():
        assert torch.equal(value.float(), loaded.state_dict()[key]), key
    as_text = LatentUpsampler.from_pretrained(
        tmp_path / "repo" / "latent_upsampler", torch_dtype="float16"
    )
    assert as_text.dtype == torch.float16
    with pytest.raises(ValueError, match=r"torch_dtype"):
        LatentUpsampler.from_pretrained(tmp_path / "repo" / "latent_upsampler", torch_dtype="int8")


def test_save_overwrites_an_existing_folder(tmp_path: Path) -> None:
    folder = saved(tmp_path, randomized(UpsamplerConfig.released_4ch(), seed=5))
    newer = randomized(UpsamplerConfig.released_4ch(), seed=6)
    newer.save_pretrained(folder)
    loaded = LatentUpsampler.from_pretrained(folder)
    key = "upsampler.conv_in.weight"
    assert torch.equal(loaded.state_dict()[key], newer.state_dict()[key])
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", WEIGHTS]


def _rewrite(folder: Path, edit: dict[str, torch.Tensor | None]) -> None:
    tensors = load_file(str(folder / WEIGHTS))
    for key, value in edit.items():
        if value is None:
            del tensors[key]
        else:
            tensors[key] = value
    save_file(tensors, str(folder / WEIGHTS))


def test_wrong_shape_is_reported_with_both_shapes(tmp_path: Path) -> None:
    folder = saved(tmp_path, preset_model(16))
    _rewrite(folder, {"upsampler.conv_out.weight": torch.zeros(4, 64, 3, 3)})
    with pytest.raises(ValueError, match=r"upsampler\.conv_out\.weight.*\[4, 64, 3, 3\].*\[16"):
        LatentUpsampler.from_pretrained(folder)


def test_missing_tensor_is_reported(tmp_path: Path) -> None:
    folder = saved(tmp_path, preset_model(16))
    _rewrite(folder, {"upsampler.up_blocks.1.skip_proj.bias": None})
    with pytest.raises(ValueError, match=r"missing keys.*upsampler\.up_blocks\.1\.skip_proj\.bias"):
        LatentUpsampler.from_pretrained(folder)


def test_extra_tensor_is_reported(tmp_path: Path) -> None:
    folder = saved(tmp_path, preset_model(16))
    _rewrite(folder, {"upsampler.up_blocks.0.skip_proj.weight": torch.zeros(128, 128, 1, 1)})
    with pytest.raises(ValueError, match=r"unexpected keys.*upsampler\.up_blocks\.0\.skip_proj"):
        LatentUpsampler.from_pretrained(folder)


class _Trap:
    """Unpickling this opens (creates) the marker file: proof that unpickling happened."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_pickle_weights_are_refused_without_unpickling(tmp_path: Path) -> None:
    # The trap works: unpickling it really creates its marker.
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Trap(probe))).close()
    assert probe.exists()

    marker = tmp_path / "unpickled"
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(_Trap(marker)))
    with pytest.raises(ValueError, match=r"pickle") as info:
        LatentUpsampler.from_pretrained(folder)
    assert "diffusion_pytorch_model.bin" in str(info.value)
    assert "safetensors" in str(info.value)  # says how to convert
    (folder / "config.json").write_text(json.dumps(RELEASED_16CH_CONFIG))
    with pytest.raises(ValueError, match=r"pickle"):
        LatentUpsampler.from_pretrained(folder)
    with pytest.raises(ValueError, match=r"pickle"):
        LatentUpsampler.from_pretrained(folder / "diffusion_pytorch_model.bin")
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_safetensors_is_a_value_error(tmp_path: Path, damage: str) -> None:
    folder = saved(tmp_path, preset_model(4))
    weights = folder / WEIGHTS
    data = weights.read_bytes()
    damaged = {"truncated": data[: len(data) // 2], "garbage": b"\xff" * 4096, "empty": b""}
    weights.write_bytes(damaged[damage])
    with pytest.raises(ValueError, match=r"not a valid safetensors file") as info:
        LatentUpsampler.from_pretrained(folder)
    assert str(weights) in str(info.value)


def test_missing_files_raise_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere"):
        LatentUpsampler.from_pretrained(tmp_path / "nowhere")
    folder = saved(tmp_path, preset_model(4))
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"config.json"):
        LatentUpsampler.from_pretrained(folder)
    (folder / WEIGHTS).unlink()
    with pytest.raises(FileNotFoundError, match=WEIGHTS):
        LatentUpsampler.from_pretrained(folder)


def test_bad_config_file_is_reported(tmp_path: Path) -> None:
    folder = saved(tmp_path, preset_model(4))
    config = folder / "config.json"
    config.write_text(json.dumps(dict(RELEASED_16CH_CONFIG, dropout=0.0)))
    with pytest.raises(ValueError, match=r"config.json.*unknown upsampler config keys.*dropout"):
        LatentUpsampler.from_pretrained(folder)
    config.write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json is not valid JSON"):
        LatentUpsampler.from_pretrained(folder)
    config.write_text(json.dumps(dict(RELEASED_16CH_CONFIG, _class_name="AutoencoderKL")))
    with pytest.raises(ValueError, match=r"AutoencoderKL"):
        LatentUpsampler.from_pretrained(folder)


def test_config_disagreeing_with_weights_is_reported(tmp_path: Path) -> None:
    folder = saved(tmp_path, preset_model(4))
    (folder / "config.json").write_text(json.dumps(RELEASED_16CH_CONFIG))
    with pytest.raises(ValueError, match=r"shape mismatches.*conv_in\.weight"):
        LatentUpsampler.from_pretrained(folder)


def test_import_stays_light() -> None:
    code = (
        "import sys, lssgen_core.upsample\n"
        "heavy = {'diffusers', 'transformers', 'torchvision', 'cv2', 'matplotlib', 'safetensors'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- scalers ------------------------------------------------------------------------------------


def test_scaling_modes() -> None:
    assert SCALING_MODES == ("resnet", "latent", "bicubic", "bilinear", "nearest", "pixel")


def _decode(latent: torch.Tensor) -> torch.Tensor:
    # A stand-in VAE: 4-channel latent <-> 3-channel image at 8x the size.
    return F.interpolate(latent[:, :3], scale_factor=8, mode="nearest")


def _encode(image: torch.Tensor) -> torch.Tensor:
    pooled = F.avg_pool2d(image, 8)
    return torch.cat([pooled, pooled.mean(1, keepdim=True)], dim=1)


@pytest.mark.parametrize("mode", SCALING_MODES)
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (8, 8)])
def test_every_mode_doubles_the_size(mode: str, size: tuple[int, int]) -> None:
    scaler = make_latent_scaler(mode, upsampler=preset_model(4), decode=_decode, encode=_encode)
    assert isinstance(scaler, LatentScaler)
    latent = torch.randn(2, 4, *size)
    with torch.no_grad():
        out = scaler(latent)
    assert out.shape == (2, 4, 2 * size[0], 2 * size[1])
    assert out.dtype == latent.dtype


@pytest.mark.parametrize(("mode", "torch_mode"), [("latent", "bicubic"), ("bicubic", "bicubic")])
def test_latent_mode_is_bicubic_interpolation(mode: str, torch_mode: str) -> None:
    latent = torch.randn(2, 16, 5, 6)
    want = F.interpolate(latent, scale_factor=2, mode=torch_mode, align_corners=False)
    assert torch.equal(make_latent_scaler(mode)(latent), want)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_interpolation_modes_match_torch(mode: str) -> None:
    latent = torch.randn(1, 4, 4, 7)
    align = None if mode == "nearest" else False
    want = F.interpolate(latent, scale_factor=2, mode=mode, align_corners=align)
    assert torch.equal(make_latent_scaler(mode)(latent), want)
    assert InterpolationScaler(mode)(latent).shape == want.shape


def test_half_precision_interpolation_runs_in_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    real_interpolate = F.interpolate

    def float_only(x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        # Stands in for torch builds without half-precision bicubic kernels on CPU.
        assert x.dtype == torch.float32, f"interpolate called on {x.dtype}"
        return real_interpolate(x, *args, **kwargs)  # type: ignore[arg-type]

    latent = torch.randn(1, 4, 5, 5).to(torch.bfloat16)
    monkeypatch.setattr(F, "interpolate", float_only)
    out = InterpolationScaler("bicubic")(latent)
    want = F.interpolate(latent.float(), scale_factor=2, mode="bicubic", align_corners=False)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, want.to(torch.bfloat16))


def test_resnet_mode_uses_the_upsampler() -> None:
    model = preset_model(16)
    scaler = make_latent_scaler("resnet", upsampler=model)
    latent = torch.randn(1, 16, 4, 4)
    with torch.no_grad():
        assert torch.equal(scaler(latent), model(latent))


def test_pixel_mode_decodes_resizes_and_encodes_once() -> None:
    calls: list[tuple[str, tuple[int, ...]]] = []

    def decode(latent: torch.Tensor) -> torch.Tensor:
        calls.append(("decode", tuple(latent.shape)))
        return _decode(latent)

    def encode(image: torch.Tensor) -> torch.Tensor:
        calls.append(("encode", tuple(image.shape)))
        return _encode(image)

    latent = torch.randn(1, 4, 3, 4)
    out = make_latent_scaler("pixel", decode=decode, encode=encode)(latent)
    assert calls == [("decode", (1, 4, 3, 4)), ("encode", (1, 3, 48, 64))]
    image = F.interpolate(_decode(latent), scale_factor=2, mode="bicubic", align_corners=False)
    assert torch.equal(out, _encode(image))


def test_pixel_mode_checks_what_encode_returns() -> None:
    scaler = PixelRoundTripScaler(_decode, lambda image: F.avg_pool2d(image, 8))  # 3 channels
    with pytest.raises(ValueError, match=r"same VAE"):
        scaler(torch.randn(1, 4, 2, 2))


def test_scaler_argument_errors() -> None:
    with pytest.raises(ValueError, match=r"resnet.*latent.*pixel") as info:
        make_latent_scaler("lanczos")
    assert "'lanczos'" in str(info.value)
    with pytest.raises(ValueError, match=r"latent_upsampler"):
        make_latent_scaler("resnet")
    with pytest.raises(ValueError, match=r"missing: \['decode', 'encode'\]"):
        make_latent_scaler("pixel")
    with pytest.raises(ValueError, match=r"missing: \['encode'\]"):
        make_latent_scaler("pixel", decode=_decode)
    with pytest.raises(ValueError, match=r"mode must be one of"):
        InterpolationScaler("area")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_refused_naming_file_and_tensor(tmp_path: Path, bad: float) -> None:
    # Issue 12: NaN weights loaded without complaint and turned every image black.
    folder = saved(tmp_path, preset_model(4))
    weight = load_file(str(folder / WEIGHTS))["upsampler.up_blocks.1.conv2.weight"].clone()
    weight[0, 0, 1, 1] = bad
    _rewrite(folder, {"upsampler.up_blocks.1.conv2.weight": weight})
    with pytest.raises(ValueError, match=r"non-finite") as info:
        LatentUpsampler.from_pretrained(folder)
    assert str(folder / WEIGHTS) in str(info.value)
    assert "upsampler.up_blocks.1.conv2.weight" in str(info.value)
    assert "upsampler.conv_in.weight" not in str(info.value)  # only the damaged tensor is named


def test_hostile_config_is_refused_from_the_header_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 12: `block_out_channels: [8000, 64]` beside real weights built a 4.4 GB network
    # before the shapes were compared. The header's shapes are enough to refuse it.
    folder = saved(tmp_path, preset_model(16))
    (folder / "config.json").write_text(
        json.dumps(dict(RELEASED_16CH_CONFIG, block_out_channels=[8000, 64]))
    )

    built_on: list[torch.device] = []
    init = LatentUpsampler.__init__

    def record_device(self: LatentUpsampler, config: UpsamplerConfig) -> None:
        built_on.append(torch.empty(0).device)  # the default device the network lands on
        init(self, config)

    monkeypatch.setattr(LatentUpsampler, "__init__", record_device)
    with pytest.raises(ValueError, match=r"block_out_channels") as info:
        LatentUpsampler.from_pretrained(folder)
    message = str(info.value)
    assert "[8000, 64]" in message and "[128, 64]" in message
    assert str(folder / "config.json") in message
    assert all(device.type == "meta" for device in built_on)  # shapes only, no storage


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"in_channels": 4, "out_channels": 4}, "in_channels"),
        ({"block_out_channels": [128, 64, 64], "is_up_samples": [True, False, False],
          "strides": [2, 1, 1]}, "block_out_channels"),
        ({"is_up_samples": [False, False], "strides": [1, 1]}, "is_up_samples"),
    ],
)  # fmt: skip
def test_config_fields_disagreeing_with_the_header_are_named(
    tmp_path: Path, changes: dict[str, object], field: str
) -> None:
    folder = saved(tmp_path, preset_model(16))
    (folder / "config.json").write_text(json.dumps(dict(RELEASED_16CH_CONFIG, **changes)))
    with pytest.raises(ValueError, match=field):
        LatentUpsampler.from_pretrained(folder)
