"""The pilot probe: a fixed, small held-out prompt set that scores a transformer during training.

Recipes for lssgen-mini are piloted at equal compute and compared by this probe, never by the
evaluation's prompts, so the evaluation stays untouched by the choice of recipe. Its captions come
from `PROBE_DATA_SEED`, which neither training (`TRAIN_DATA_SEED`) nor `lssgen evaluate`
(`EVAL_DATA_SEED`) uses. It scores what LSS needs of the model: plain generation at the native
size, plain generation at the first stage's size (where LSS puts the structure), and the shipped
LSS call.

`text_reliance` is the probe's low-noise companion: how much worse the transformer predicts when
each scene gets another scene's caption. Accuracy on 48 prompts moves by about 5 points from
noise alone; this figure needs no sampling and no evaluator, so it separates "ignores the prompt"
from "follows it" within seconds. Our measurement: lssgen-mini v1 and every pilot up to 3.5k
steps predicted only about 1 % worse with the wrong caption at t = 0.8, and under 1 % at
t = 0.95, where the image's layout is decided: the models drew the training distribution's
shapes without reading the prompt, which is why their accuracy stayed at the floor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lssgen.mini.model import MINI_SETTINGS, MiniSettings
from lssgen.mini.scenes import scene_for_index
from lssgen.mini.train_data import captions, render_batch
from lssgen.mini.train_vae import encode_mode

PROBE_DATA_SEED = 7_100_001
PROBE_COUNT = 48  # 8 per GenEval category
PROBE_BATCH = 8
# Noise levels of `text_reliance`: where layout and colours are decided (flow t, 1 = noise).
RELIANCE_LEVELS = (0.95, 0.8)


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


@torch.no_grad()
def text_reliance(
    pipe: Any,
    *,
    count: int = 64,
    size: int | None = None,
    levels: Sequence[float] = RELIANCE_LEVELS,
    seed: int = PROBE_DATA_SEED,
    max_sequence_length: int = MINI_SETTINGS.max_sequence_length,
) -> dict[float, float]:
    """Per noise level t, the relative increase of the flow-matching loss when every probe
    scene is paired with the next scene's caption instead of its own (0: the text is ignored).

    Uses the pipeline's own VAE, normalisation and prompt encoding, so it measures the model as
    it is called. `size` defaults to the first LSS stage's (`MINI_SETTINGS.min_size`).
    """
    if count < 2:
        raise ValueError(f"count must be at least 2 (captions are paired with others), got {count}")
    size = size or MINI_SETTINGS.min_size
    indices = range(count)
    vae = pipe.vae
    latents = encode_mode(vae, render_batch(seed, indices, size))
    latents = (latents - vae.config.shift_factor) * vae.config.scaling_factor
    texts = captions(seed, indices)

    embeds, _, pooled, _ = pipe.encode_prompt(
        texts,
        None,
        None,
        device=vae.device,
        do_classifier_free_guidance=False,
        max_sequence_length=max_sequence_length,
    )
    # Each prompt is encoded on its own, so the next scene's caption is the next row.
    right, wrong = (embeds, pooled), (embeds.roll(-1, 0), pooled.roll(-1, 0))
    transformer = pipe.transformer
    result = {}
    for level in levels:
        noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed))
        noisy = (1 - level) * latents + level * noise
        timestep = torch.full((count,), level * pipe.scheduler.config.num_train_timesteps)
        losses = []
        for embeds, pooled in (right, wrong):
            velocity = transformer(
                hidden_states=noisy.to(transformer.dtype),
                encoder_hidden_states=embeds.to(transformer.dtype),
                pooled_projections=pooled.to(transformer.dtype),
                timestep=timestep,
            ).sample
            losses.append(float((velocity.float() - (noise - latents)).pow(2).mean()))
        result[float(level)] = (losses[1] - losses[0]) / losses[0]
    return result
