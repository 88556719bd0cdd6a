"""Resumable training state: weights, AdamW moments, LR schedule, RNG, step. No pickle.

A checkpoint folder holds one `training_state-<step>.safetensors` (every tensor) and
`training_state.json` (everything else, and the name of its tensor file). The tensor file is
written first and the JSON last, each atomically, and older tensor files are deleted only after
the JSON points at the new one: whenever the process dies, the JSON names a complete tensor file
that matches it. Every float round-trips exactly (safetensors stores raw bits; JSON stores
`repr` floats), so a resumed run continues bit for bit.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import save
from torch import Tensor, nn

from lssgen_core.atomic import write_bytes_atomic, write_json_atomic
from lssgen_core.upsample.io import read_weights

STATE_NAME = "training_state.json"
TENSORS_PREFIX = "training_state-"
FORMAT = "lssgen-upsampler-training-state"
VERSION = 1

_MODEL = "model/"
_OPTIM = "optimizer/"
_RNG_CPU = "rng/torch_cpu"
_RNG_CUDA = "rng/torch_cuda/"


class Stateful(Protocol):
    """What a scheduler offers (`torch.optim.lr_scheduler.LRScheduler` does)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


def has_training_state(folder: str | os.PathLike[str]) -> bool:
    """Whether `folder` holds a checkpoint `load_training_state` can read."""
    return (Path(folder) / STATE_NAME).is_file()


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, entries in state["state"].items():
        for name, value in entries.items():
            if isinstance(value, Tensor):
                tensors[f"{_OPTIM}{param_id}/{name}"] = value
            else:
                scalars.setdefault(str(param_id), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_training_state(
    folder: str | os.PathLike[str],
    *,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Stateful,
    info: Mapping[str, Any],
) -> Path:
    """Write a checkpoint of `step` into `folder`, replacing the previous one; returns the JSON."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    tensors = {f"{_MODEL}{k}": v for k, v in model.state_dict().items()}
    optim_tensors, optim_rest = _split_optimizer(optimizer.state_dict())
    tensors.update(optim_tensors)
    tensors[_RNG_CPU] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, rng in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"{_RNG_CUDA}{i}"] = rng
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    tensors_name = f"{TENSORS_PREFIX}{step:08d}.safetensors"
    write_bytes_atomic(root / tensors_name, save(tensors, metadata={"format": "pt"}))
    state = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "tensors": tensors_name,
        "optimizer": optim_rest,
        "scheduler": scheduler.state_dict(),
        "info": dict(info),
    }
    path = write_json_atomic(root / STATE_NAME, state)
    for old in root.glob(f"{TENSORS_PREFIX}*.safetensors"):
        if old.name != tensors_name:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
    return path


def read_training_info(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON half of a checkpoint (step, info, ...), validated; no tensors are read."""
    path = Path(folder) / STATE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no training checkpoint in {Path(folder)} ({STATE_NAME} missing)")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not an lssgen upsampler training checkpoint")
    if state.get("version") != VERSION:
        raise ValueError(f"{path} has version {state.get('version')}, this lssgen reads {VERSION}")
    return state


def _as_stored_types(loaded: Any, fresh: Any) -> Any:
    # JSON turns tuples (AdamW's betas) into lists; give them back the type the optimizer made.
    if isinstance(fresh, tuple) and isinstance(loaded, list):
        return tuple(loaded)
    return loaded


def _optimizer_state(
    tensors: dict[str, Tensor], rest: dict[str, Any], optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(_OPTIM):
            param_id, name = key[len(_OPTIM) :].split("/", 1)
            state.setdefault(int(param_id), {})[name] = value
    for param_id, entries in rest["scalars"].items():
        state.setdefault(int(param_id), {}).update(entries)
    fresh_groups = optimizer.state_dict()["param_groups"]
    if len(fresh_groups) != len(rest["param_groups"]):
        raise ValueError("the checkpoint's optimizer has a different number of parameter groups")
    groups = [
        {k: _as_stored_types(v, fresh.get(k)) for k, v in group.items()}
        for group, fresh in zip(rest["param_groups"], fresh_groups)
    ]
    return {"state": state, "param_groups": groups}


def load_training_state(
    folder: str | os.PathLike[str],
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Stateful,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler (and torch's RNG) in place; returns the JSON state.

    Call before moving the optimizer under a distributed wrapper, with the model already on its
    training device: the optimizer moves its loaded moments to the parameters' device.
    """
    state = read_training_info(folder)
    tensors_path = Path(folder) / str(state["tensors"])
    if not tensors_path.is_file():
        raise FileNotFoundError(f"checkpoint tensors not found: {tensors_path}")
    tensors = read_weights(tensors_path)
    weights = {k[len(_MODEL) :]: v for k, v in tensors.items() if k.startswith(_MODEL)}
    try:
        model.load_state_dict(weights, strict=True)
        optimizer.load_state_dict(_optimizer_state(tensors, state["optimizer"], optimizer))
        scheduler.load_state_dict(state["scheduler"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{tensors_path} does not match this model and optimizer: {exc}") from exc
    if restore_rng:
        torch.set_rng_state(tensors[_RNG_CPU])
        cuda_keys = sorted(
            (k for k in tensors if k.startswith(_RNG_CUDA)), key=lambda k: int(k.rsplit("/", 1)[1])
        )
        cuda = [tensors[k] for k in cuda_keys]
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    return state
