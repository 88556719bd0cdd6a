"""What may be resumed: a checkpoint continues only a run made with the same settings.

Each trainer states its run's identity (everything that changes the trained weights); the
checkpoint stores it, and a resume with another identity is refused, naming every difference.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lssgen.training.checkpoint import Stateful, has_training_state, load_training_state


class ResumeError(ValueError):
    """The checkpoint cannot be resumed (damaged, or made with other settings)."""


def normalised_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    """`identity` as it reads back from the checkpoint's JSON (tuples become lists), so that
    equal means equal."""
    normalised: dict[str, Any] = json.loads(json.dumps(dict(identity)))
    return normalised


def identity_differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """One line per setting that differs, nested keys joined with dots."""
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = sorted(set(saved) | set(current))
        return [
            line
            for key in keys
            for line in identity_differences(saved.get(key), current.get(key), f"{prefix}{key}.")
        ]
    if saved == current:
        return []
    return [f"{prefix.rstrip('.')}: checkpoint {saved!r}, now {current!r}"]


def check_identity(
    saved: Mapping[str, Any], current: Mapping[str, Any], source: Path, advice: str
) -> None:
    """Refuse to resume a checkpoint made with settings (or data) that change the result;
    `advice` says what the user can do instead."""
    problems = identity_differences(dict(saved), dict(current))
    if problems:
        raise ResumeError(
            f"cannot resume from {source}: it was made with other settings ("
            + "; ".join(problems)
            + f"). {advice}"
        )


def restore(
    checkpoint_dir: str | os.PathLike[str],
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Stateful,
    identity: Mapping[str, Any],
    advice: str,
) -> tuple[int, float | None]:
    """Load the checkpoint into `model`, `optimizer` and `scheduler` after checking that it
    continues this run; returns (step, loss EMA). Every failure is a `ResumeError`."""
    if not has_training_state(checkpoint_dir):
        raise ResumeError(f"no training checkpoint to resume in {checkpoint_dir}")
    try:
        state = load_training_state(
            checkpoint_dir, model=model, optimizer=optimizer, scheduler=scheduler
        )
    except (FileNotFoundError, ValueError) as exc:
        raise ResumeError(str(exc)) from exc
    saved = state["info"].get("identity", {})
    check_identity(saved, identity, Path(checkpoint_dir), advice)
    return int(state["step"]), state["info"].get("loss_ema")
