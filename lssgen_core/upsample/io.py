"""Load and save latent upsamplers in the released folder layout (Diffusers `save_pretrained`).

A folder holds `config.json` and `diffusion_pytorch_model.safetensors`. Only safetensors are
read: pickle-based weight files can execute code when loaded, and users get these folders from
the internet. `safetensors` is imported inside the functions so importing the core stays light.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor

from lssgen_core.atomic import write_bytes_atomic
from lssgen_core.upsample.calibration import (
    ScalerCalibration,
    calibrations_from_config,
    calibrations_to_config,
)
from lssgen_core.upsample.config import CONFIG_CLASS_NAME, UpsamplerConfig
from lssgen_core.upsample.network import LatentUpsampler

# A Diffusers component folder's config (upsampler, VAE, transformer ...): one name for all.
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Spellings of the class name we accept in `_class_name` (ours and the original's).
_CLASS_NAMES = (CONFIG_CLASS_NAME, LatentUpsampler.__name__)

DTypeLike = torch.dtype | str
_M = TypeVar("_M", bound=LatentUpsampler)


def resolve_dtype(torch_dtype: DTypeLike) -> torch.dtype:
    """A floating torch dtype from a dtype or its name ("bfloat16", "torch.float16")."""
    dtype = torch_dtype
    if isinstance(torch_dtype, str):
        dtype = getattr(torch, torch_dtype.removeprefix("torch."), None)  # type: ignore[assignment]
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"torch_dtype must be a floating torch dtype such as torch.float32 or "
            f"torch.bfloat16, got {torch_dtype!r}"
        )
    return dtype


def _pickle_refusal(folder: Path, pickles: list[Path]) -> ValueError:
    names = ", ".join(p.name for p in pickles)
    return ValueError(
        f"{folder} has no {WEIGHTS_NAME}, only pickle weight files ({names}). Pickle files are "
        "not loaded because unpickling can run arbitrary code. Convert a file you trust with: "
        'python -c "import torch; from safetensors.torch import save_file; '
        f"save_file(torch.load('{pickles[0]}', weights_only=True), "
        f"'{folder / WEIGHTS_NAME}')\""
    )


def _find_files(
    path: str | os.PathLike[str], subfolder: str | None, weights_name: str = WEIGHTS_NAME
) -> tuple[Path, Path]:
    folder = Path(path)
    if subfolder:
        folder = folder / subfolder
    if not folder.exists():
        raise FileNotFoundError(f"upsampler folder not found: {folder}")
    if not folder.is_dir():
        if folder.suffix in PICKLE_SUFFIXES:
            raise _pickle_refusal(folder.parent, [folder])
        raise ValueError(
            f"{folder} is a file; pass the folder holding {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
    weights = folder / weights_name
    if not weights.is_file():
        # Checked before config.json: a pickle-only folder deserves the actionable message.
        pickles = sorted(p for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise _pickle_refusal(folder, pickles)
        raise FileNotFoundError(f"upsampler weights not found: {weights}")
    config = folder / CONFIG_NAME
    if not config.is_file():
        raise FileNotFoundError(f"upsampler config not found: {config}")
    return config, weights


def _read_json_object(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def read_calibrations(path: Path) -> dict[str, ScalerCalibration]:
    """The scaler calibrations a config.json holds (see ``calibration``); failures name the
    file."""
    try:
        return calibrations_from_config(_read_json_object(path))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc


def read_config(path: Path) -> UpsamplerConfig:
    """Parse a config.json; every failure names the file."""
    data = _read_json_object(path)
    class_name = data.get("_class_name")
    if class_name is not None and class_name not in _CLASS_NAMES:
        raise ValueError(f"{path} describes a {class_name!r}, not a {CONFIG_CLASS_NAME}")
    try:
        return UpsamplerConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc


def read_weights(path: Path) -> dict[str, Tensor]:
    """Read a safetensors file into CPU tensors; a damaged file raises ValueError naming it."""
    from safetensors.torch import load

    # Reading the bytes (instead of mmap) releases the file at once, so a later save can
    # replace it even on Windows.
    data = path.read_bytes()
    try:
        return load(data)
    except Exception as exc:  # safetensors raises its own error types for damaged headers
        raise ValueError(f"{path} is not a valid safetensors file: {exc}") from exc


def shape_problems(
    shapes: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]
) -> list[str]:
    """Missing, unexpected and misshapen tensors of a checkpoint against the expected shapes."""
    missing = sorted(expected.keys() - shapes.keys())
    unexpected = sorted(shapes.keys() - expected.keys())
    mismatched = [
        f"{key}: checkpoint {list(shapes[key])} vs expected {list(expected[key])}"
        for key in sorted(expected.keys() & shapes.keys())
        if shapes[key] != expected[key]
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {missing}")
    if unexpected:
        problems.append(f"unexpected keys: {unexpected}")
    if mismatched:
        problems.append(f"shape mismatches: {mismatched}")
    return problems


def check_state_dict(
    tensors: dict[str, Tensor], expected: dict[str, Tensor], *, source: Path
) -> None:
    """Strict key and shape match, reporting every problem at once."""
    problems = shape_problems(
        {key: tuple(t.shape) for key, t in tensors.items()},
        {key: tuple(t.shape) for key, t in expected.items()},
    )
    not_float = [
        f"{key}: {tensors[key].dtype}"
        for key in sorted(expected.keys() & tensors.keys())
        if not tensors[key].is_floating_point()
    ]
    if not_float:
        problems.append(f"non-floating tensors: {not_float}")
    if problems:
        raise ValueError(
            f"{source} does not match the upsampler described by its config.json; "
            + "; ".join(problems)
        )


def read_header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors header, without reading the tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            names = handle.keys()  # safe_open handles are not iterable
            return {key: tuple(handle.get_slice(key).get_shape()) for key in names}
    except Exception as exc:  # safetensors raises its own error types for damaged headers
        raise ValueError(f"{path} is not a valid safetensors file: {exc}") from exc


_PREFIX = "upsampler."


def _header_fields(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[object, str]]:
    """The config fields the tensor shapes determine: field -> (value, the tensor it is read
    from). Fields whose tensors are absent are left out (the key check reports those)."""
    found: dict[str, tuple[object, str]] = {}

    def dim(key: str, index: int) -> int | None:
        shape = shapes.get(_PREFIX + key)
        return shape[index] if shape is not None and len(shape) > abs(index) else None

    if (value := dim("conv_in.weight", 1)) is not None:
        found["in_channels"] = (value, _PREFIX + "conv_in.weight")
    if (value := dim("conv_out.weight", 0)) is not None:
        found["out_channels"] = (value, _PREFIX + "conv_out.weight")
    indices = {
        int(key.split(".")[2])
        for key in shapes
        if key.startswith(_PREFIX + "up_blocks.") and key.split(".")[2].isdigit()
    }
    blocks = range(max(indices) + 1) if indices else range(0)
    channels = [dim(f"up_blocks.{i}.conv2.weight", 0) for i in blocks]
    # ConvTranspose2d(k=4) makes an upsampling block; Conv2d(k=3) a same-size one.
    kernels = [dim(f"up_blocks.{i}.conv1.weight", -1) for i in blocks]
    if indices and None not in channels:
        found["block_out_channels"] = (channels, _PREFIX + "up_blocks.*.conv2.weight")
    if indices and None not in kernels:
        found["is_up_samples"] = ([k == 4 for k in kernels], _PREFIX + "up_blocks.*.conv1.weight")
    return found


def _expected_shapes(config: UpsamplerConfig, cls: type[LatentUpsampler]) -> dict[str, Tensor]:
    # On the meta device a network of any size costs nothing: shapes only, no storage.
    with torch.device("meta"):
        return cls(config).state_dict()


def check_config_matches_header(
    config: UpsamplerConfig,
    shapes: dict[str, tuple[int, ...]],
    *,
    config_path: Path,
    source: Path,
    cls: type[LatentUpsampler] = LatentUpsampler,
) -> None:
    """Refuse a config that does not describe the weights, from the header's shapes alone and
    before any network is allocated: each disagreeing config field is named with both values,
    then every missing, unexpected and misshapen tensor."""
    problems = []
    for field, (value, tensor) in _header_fields(shapes).items():
        stated = getattr(config, field)
        stated = list(stated) if isinstance(stated, tuple) else stated
        if stated != value:
            problems.append(f"{field} is {stated} there but {value} in the weights (from {tensor})")
    expected = {key: tuple(t.shape) for key, t in _expected_shapes(config, cls).items()}
    problems += shape_problems(shapes, expected)
    if problems:
        raise ValueError(
            f"{source} does not match the upsampler described by {config_path}; "
            + "; ".join(problems)
        )


def check_finite(tensors: dict[str, Tensor], *, source: Path) -> None:
    """Refuse weights holding NaN or inf, naming every such tensor: they make black images."""
    bad = [
        f"{key} ({int(torch.isnan(t).sum())} NaN, {int(torch.isinf(t).sum())} inf)"
        for key, t in sorted(tensors.items())
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if bad:
        raise ValueError(
            f"{source} holds non-finite values (NaN or inf) in {', '.join(bad)}; an upsampler "
            "with them makes black images. Use an undamaged checkpoint (retrain or download it "
            "again)"
        )


def _stored_dtype(tensors: dict[str, Tensor]) -> torch.dtype:
    dtypes = {tensor.dtype for tensor in tensors.values()}
    # One dtype (fp32, or bf16 for CogView4's) is kept; a mixed file has no single answer.
    return dtypes.pop() if len(dtypes) == 1 else torch.float32


def load_upsampler(
    path: str | os.PathLike[str],
    *,
    subfolder: str | None = None,
    torch_dtype: DTypeLike | None = None,
    device: str | torch.device | None = None,
    cls: type[_M] = LatentUpsampler,  # type: ignore[assignment]
    weights_name: str = WEIGHTS_NAME,
) -> _M:
    """Load an upsampler folder.

    `torch_dtype=None` keeps the dtype the weights are stored in (bf16 stays bf16), so a
    save/load round trip reproduces outputs bit for bit; pass a dtype to cast.
    """
    dtype = None if torch_dtype is None else resolve_dtype(torch_dtype)
    config_path, weights_path = _find_files(path, subfolder, weights_name)
    config = read_config(config_path)
    calibrations = read_calibrations(config_path)
    # The header alone (a few kB) shows whether config.json describes these weights, so a
    # hostile or mistaken config fails before a network of its size is allocated.
    shapes = read_header_shapes(weights_path)
    check_config_matches_header(
        config, shapes, config_path=config_path, source=weights_path, cls=cls
    )
    tensors = read_weights(weights_path)
    check_finite(tensors, source=weights_path)
    model = cls(config)
    check_state_dict(tensors, model.state_dict(), source=weights_path)
    model.to(dtype or _stored_dtype(tensors))
    model.load_state_dict(tensors, strict=True)
    model.calibration = calibrations
    if device is not None:
        model.to(device)
    return model.eval()


def save_upsampler(
    model: LatentUpsampler, path: str | os.PathLike[str], *, weights_name: str = WEIGHTS_NAME
) -> None:
    """Write `config.json` and `diffusion_pytorch_model.safetensors` into the folder `path`.

    Tensors are stored in the module's own dtype (fp32 unless it was cast), unchanged.
    """
    from safetensors.torch import save

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        key: tensor.detach().to("cpu").contiguous() for key, tensor in model.state_dict().items()
    }
    write_bytes_atomic(folder / weights_name, save(tensors, metadata={"format": "pt"}))
    # Config last: a folder whose config.json is new also has its new weights.
    config = {**model.config.to_dict(), **calibrations_to_config(model.calibration)}
    config_text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    write_bytes_atomic(folder / CONFIG_NAME, config_text.encode("utf-8"))


def write_calibrations(
    path: str | os.PathLike[str], calibrations: Mapping[str, ScalerCalibration]
) -> Path:
    """Store ``calibrations`` in the upsampler folder ``path``'s config.json (atomically), each
    replacing that mode's earlier one; every other key and the weights stay as they are."""
    config_path = Path(path) / CONFIG_NAME
    data = _read_json_object(config_path)
    read_config(config_path)  # only an upsampler's config gets a calibration
    merged = {**read_calibrations(config_path), **calibrations}
    data.update(calibrations_to_config(merged))
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return write_bytes_atomic(config_path, text.encode("utf-8"))
