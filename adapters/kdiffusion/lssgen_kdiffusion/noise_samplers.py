"""Noise samplers for k-diffusion's stochastic samplers, drawing from the caller's generators.

k-diffusion's ancestral samplers default to ``torch.randn_like`` and its SDE samplers to a
``BrownianTreeNoiseSampler`` seeded from torch's global RNG, so neither follows a
``torch.Generator``. The samplers here take their randomness from the generator (one, or one per
batch element as in :func:`lssgen_core.noise.randn`), so an image is fixed by its generator.

A noise sampler is called as ``noise_sampler(sigma, sigma_next)`` and returns standard normal
noise shaped like the latent; a factory builds one per stage as ``factory(x, sigmas, generator)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

from lssgen_core.noise import Generators, randn

NoiseSampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NoiseSamplerFactory = Callable[[torch.Tensor, torch.Tensor, Generators], NoiseSampler]

_SEED_BOUND = 2**63 - 1


def draw_seeds(generator: Generators, device: torch.device | str | None = None) -> list[int]:
    """One integer seed from each generator (from torch's global RNG when ``generator`` is None).

    Every generator of a list advances alike, so each batch element's stream stays its own.
    """
    if generator is None or isinstance(generator, torch.Generator):
        generators: Sequence[torch.Generator | None] = [generator]
    else:
        generators = list(generator)
    return [
        int(
            torch.randint(
                0, _SEED_BOUND, (), generator=g, device=g.device if g is not None else device
            )
        )
        for g in generators
    ]


def gaussian_noise_sampler(
    x: torch.Tensor, sigmas: torch.Tensor | None = None, generator: Generators = None
) -> NoiseSampler:
    """Fresh independent noise at every call, drawn from ``generator``; ``sigmas`` is unused."""

    def sample(sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        return randn(x.shape, generator, device=x.device, dtype=x.dtype)

    return sample


class BrownianNoiseSampler:
    """Brownian-motion increments between noise levels, as k-diffusion's BrownianTreeNoiseSampler.

    The noise of a level interval is the same whatever steps cross it, which keeps SDE samplers'
    results stable when the step count changes. One Brownian tree serves the whole batch for an
    integer ``seed``, one tree per element for a list of seeds (k-diffusion's convention, and with
    the same seed the same noise). Needs ``torchsde`` (imported when the first noise is drawn;
    a one-step stage never draws).
    """

    def __init__(
        self, x: torch.Tensor, sigma_min: float, sigma_max: float, seed: int | Sequence[int]
    ) -> None:
        self.x = x
        self.low, self.high = sorted((float(sigma_min), float(sigma_max)))
        self.batched = isinstance(seed, Sequence)
        self.seeds = [int(s) for s in seed] if isinstance(seed, Sequence) else [int(seed)]
        if self.batched and len(self.seeds) != x.shape[0]:
            raise ValueError(f"{len(self.seeds)} seeds for a batch of {x.shape[0]} latents")
        self._trees: list[Any] | None = None

    def _build(self) -> list[Any]:
        import torchsde

        w0 = torch.zeros_like(self.x[0] if self.batched else self.x)
        low, high = torch.as_tensor(self.low), torch.as_tensor(self.high)
        return [torchsde.BrownianTree(low, w0, high, entropy=seed) for seed in self.seeds]

    def __call__(self, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        if self._trees is None:
            self._trees = self._build()
        a, b = torch.as_tensor(sigma), torch.as_tensor(sigma_next)
        # The increment W(sigma_next) - W(sigma): k-diffusion's sign, so equal seeds agree.
        low, high, sign = (a, b, 1) if a < b else (b, a, -1)
        with warnings.catch_warnings():
            # torchsde rounds the tree's ends to its 1e-6 tolerance, then warns that the unrounded
            # end levels lie outside and clamps them: the increments are right, the warning noise.
            warnings.filterwarnings("ignore", "Should have", UserWarning, "torchsde")
            w = torch.stack([tree(low, high) for tree in self._trees])
        return (w if self.batched else w[0]) * sign / (high - low).sqrt()


def brownian_noise_sampler(
    x: torch.Tensor, sigmas: torch.Tensor, generator: Generators = None
) -> BrownianNoiseSampler:
    """A :class:`BrownianNoiseSampler` over the stage's levels, seeded from ``generator``.

    A list of generators gives each batch element its own tree.
    """
    positive = sigmas[sigmas > 0]
    seeds = draw_seeds(generator, x.device)
    seed: int | list[int] = seeds if isinstance(generator, Sequence) else seeds[0]
    return BrownianNoiseSampler(x, float(positive.min()), float(positive.max()), seed)


NOISE_SAMPLERS: dict[str, NoiseSamplerFactory] = {
    "gaussian": gaussian_noise_sampler,
    "brownian": brownian_noise_sampler,
}


def noise_sampler_factory(kind: str | NoiseSamplerFactory) -> NoiseSamplerFactory:
    """The factory named ``kind`` ("gaussian" or "brownian"), or ``kind`` itself if callable."""
    if callable(kind):
        return kind
    if kind not in NOISE_SAMPLERS:
        raise ValueError(f"noise_sampler={kind!r} must be one of {tuple(NOISE_SAMPLERS)}")
    return NOISE_SAMPLERS[kind]
