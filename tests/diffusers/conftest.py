"""Session cache of tiny LSS pipelines for the LSS adapter tests (never modified by tests)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lss_testkit import Pair, lss_from_stock

from lssgen_diffusers.testing import tiny_pipeline


@pytest.fixture(scope="session")
def lss_pair() -> Callable[[str], Pair]:
    """``lss_pair(kind)``: the stock tiny pipeline of ``kind`` and an LSS pipeline over it."""
    cache: dict[str, Pair] = {}

    def get(kind: str) -> Pair:
        if kind not in cache:
            stock = tiny_pipeline(kind)
            stock.set_progress_bar_config(disable=True)
            cache[kind] = Pair(kind, stock, lss_from_stock(kind, stock))
        return cache[kind]

    return get
