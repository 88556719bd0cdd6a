"""The pilot probe: a fixed, small held-out prompt set that scores a transformer during training.

Recipes for lssgen-mini are piloted at equal compute and compared by this probe, never by the
evaluation's prompts, so the evaluation stays untouched by the choice of recipe. Its captions come
from `PROBE_DATA_SEED`, which neither training (`TRAIN_DATA_SEED`) nor `lssgen evaluate`
(`EVAL_DATA_SEED`) uses. It scores what LSS needs of the model: plain generation at the native
size, plain generation at the first stage's size (where LSS puts the structure), and the shipped
LSS call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lssgen.mini.model import MINI_SETTINGS, MiniSettings
from lssgen.mini.scenes import scene_for_index

PROBE_DATA_SEED = 7_100_001
PROBE_COUNT = 48  # 8 per GenEval category
PROBE_BATCH = 8


def probe_calls(settings: MiniSettings = MINI_SETTINGS) -> dict[str, dict[str, Any]]:
    """The probe's configurations: plain at the native and the first stage's size, and LSS."""
    low = settings.min_size
    return {
        f"plain{settings.size}": settings.plain(),
        f"plain{low}": settings.plain(height=low, width=low),
        "lss": settings.lss(),
    }


def probe(
    pipe: Any,
    *,
    calls: Mapping[str, Mapping[str, Any]] | None = None,
    count: int = PROBE_COUNT,
    seed: int = PROBE_DATA_SEED,
    names: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """`lssgen.mini.scoring.score` of each call over the probe's captions (image i from seed i).

    `names` limits the run to some of `calls` (default: every one of `probe_calls()`).
    """
    # Lazy for start-up: scoring loads scipy (~0.5 s); only judging images needs it.
    from lssgen.mini.scoring import score

    calls = dict(calls or probe_calls())
    chosen = list(names or calls)
    unknown = [name for name in chosen if name not in calls]
    if unknown:
        raise ValueError(f"unknown probe call(s) {unknown}; choose from {sorted(calls)}")
    captions = [scene_for_index(seed, i)[1] for i in range(count)]
    results = {}
    for name in chosen:
        images = []
        for first in range(0, count, PROBE_BATCH):
            batch = captions[first : first + PROBE_BATCH]
            generators = [torch.Generator().manual_seed(first + i) for i in range(len(batch))]
            call = {**calls[name], "generator": generators}
            images += pipe([c.text for c in batch], **call).images
        results[name] = score(images, captions)
    return results
