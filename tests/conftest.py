import os

import pytest

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
