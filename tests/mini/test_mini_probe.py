"""`lssgen.mini.probe.text_reliance`: how much the transformer reads the prompt."""

from __future__ import annotations

import math

import pytest
import torch
from mini_support import LOW

from lssgen.mini.model import load_shipped_pipeline
from lssgen.mini.probe import text_reliance


class _TextView(torch.nn.Module):
    """The pipeline's transformer with its text inputs replaced by `change(embeds, pooled)`."""

    def __init__(self, inner, change):
        super().__init__()
        self.inner, self.change = inner, change

    @property
    def dtype(self):
        return self.inner.dtype

    def forward(self, *, encoder_hidden_states, pooled_projections, **kwargs):
        embeds, pooled = self.change(encoder_hidden_states, pooled_projections)
        return self.inner(encoder_hidden_states=embeds, pooled_projections=pooled, **kwargs)


@pytest.fixture
def pipe(tiny_folder):
    return load_shipped_pipeline(tiny_folder)


def test_a_model_that_ignores_the_text_relies_on_it_not_at_all(pipe):
    pipe.transformer = _TextView(
        pipe.transformer, lambda e, p: (torch.zeros_like(e), torch.zeros_like(p))
    )
    reliance = text_reliance(pipe, count=4, size=LOW, levels=(0.9, 0.5))
    assert reliance == {0.9: 0.0, 0.5: 0.0}


def test_a_model_that_reads_the_text_shows_a_reliance(pipe):
    # Scale the pooled text up so that it moves the prediction a lot: wrong captions then
    # change the loss.
    pipe.transformer = _TextView(pipe.transformer, lambda e, p: (e, 50 * p))
    reliance = text_reliance(pipe, count=4, size=LOW, levels=(0.9,))
    assert math.isfinite(reliance[0.9]) and reliance[0.9] != 0.0


def test_one_scene_cannot_be_paired_with_another(pipe):
    with pytest.raises(ValueError, match="count must be at least 2"):
        text_reliance(pipe, count=1, size=LOW)
