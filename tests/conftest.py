import os

import pytest
from hypothesis import settings

# Speed is never asserted in a test: hypothesis' per-example deadline (200 ms) is one, and it fails
# property tests on a loaded machine (our measurement: a core property test under a load of 8 on
# two cores).
settings.register_profile("lssgen", deadline=None)
# CI draws the same examples on every run, so a merge is judged on the code, not on the draw;
# local runs keep drawing new ones, and each one that fails is kept as an ``@example``.
settings.register_profile("ci", parent=settings.get_profile("lssgen"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "lssgen")

# Tests never reach the hub: every model is built from a config or saved by the test itself.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a test module (use with ``pytest.mark.usefixtures``)."""
    from lssgen_diffusers.testing import single_thread

    with single_thread():
        yield
