"""torch's process-wide settings (intra-op threads, default dtype) set for a block, then reset."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

Value = TypeVar("Value")


@contextlib.contextmanager
def _setting(
    get: Callable[[], Value], set_to: Callable[[Value], None], value: Value
) -> Iterator[None]:
    before = get()
    set_to(value)
    try:
        yield
    finally:
        set_to(before)


def torch_threads(count: int) -> contextlib.AbstractContextManager[None]:
    """torch's intra-op thread count set to `count` for the block."""
    return _setting(torch.get_num_threads, torch.set_num_threads, count)


def default_dtype(dtype: torch.dtype) -> contextlib.AbstractContextManager[None]:
    """torch's default floating-point dtype set to `dtype` for the block: modules built in it
    are born in it (never held in float32 first)."""
    return _setting(torch.get_default_dtype, torch.set_default_dtype, dtype)
