"""Tiny stock video pipelines and the LSS pipelines over them, built once per session."""

from __future__ import annotations

from typing import Any

import pytest

from lssgen_diffusers.ltx import LSSLTXPipeline
from lssgen_diffusers.testing import single_thread
from lssgen_diffusers.testing_video import tiny_ltx_pipeline, tiny_wan_pipeline
from lssgen_diffusers.wan import LSSWanPipeline


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    with single_thread():
        yield


def _quiet(pipe: Any) -> Any:
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def wan() -> tuple[Any, Any]:
    """(stock Wan 2.1, LSSWanPipeline over its components)."""
    stock = _quiet(tiny_wan_pipeline())
    return stock, _quiet(LSSWanPipeline(**stock.components))


@pytest.fixture(scope="session")
def wan22() -> tuple[Any, Any]:
    """(stock Wan 2.2 with two experts, LSSWanPipeline over its components)."""
    stock = _quiet(tiny_wan_pipeline(two_experts=True))
    # boundary_ratio is a config entry, not a component.
    lss = LSSWanPipeline(**stock.components, boundary_ratio=stock.config.boundary_ratio)
    return stock, _quiet(lss)


@pytest.fixture(scope="session")
def ltx() -> tuple[Any, Any]:
    """(stock LTX-Video, LSSLTXPipeline over its components)."""
    stock = _quiet(tiny_ltx_pipeline())
    return stock, _quiet(LSSLTXPipeline(**stock.components))
