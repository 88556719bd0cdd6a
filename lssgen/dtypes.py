"""The dtype names lssgen's commands and configs take (`--dtype bf16`), each once."""

from __future__ import annotations

import torch

TORCH_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}

# What the trainers train in (and the upsampler evaluation runs its VAE in). No fp16: training
# in it needs loss scaling, which the loop does not do, and bf16 has fp32's range.
TRAINING_DTYPES = ("fp32", "bf16")


def autocast_dtype(name: str) -> torch.dtype | None:
    """The autocast dtype of a training dtype name: bf16 autocasts, fp32 runs as it is."""
    return TORCH_DTYPES[name] if name != "fp32" else None
