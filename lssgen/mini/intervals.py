"""95% intervals for the accuracies `lssgen evaluate` reports, so a difference can be read.

- Per category: the Wilson score interval of a binomial proportion. With 40 prompts a category
  the normal ("Wald") interval is too narrow near 0 and 1 and can leave [0, 1]; Wilson's does
  neither (Wilson 1927; Brown, Cai and DasGupta 2001 recommend it for small n).
- Overall (GenEval's mean of the per-category accuracies): a stratified bootstrap, resampling
  prompts within each category, so the interval has the same category balance as the score.
- LSS against plain on the same prompts and seeds: a paired bootstrap of the difference. Pairing
  removes the prompt-to-prompt variation both configurations share, so it is much tighter than
  comparing the two separate intervals.

All resampling uses a fixed seed: the same results give the same intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0

Interval = tuple[float, float]


def wilson_interval(passed: int, total: int, z: float = Z_95) -> Interval:
    """The Wilson score interval of `passed` successes in `total` trials."""
    if total <= 0 or not 0 <= passed <= total:
        raise ValueError(f"need 0 <= passed <= total and total >= 1, got {passed}/{total}")
    p = passed / total
    z2 = z * z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    # At p = 0 (or 1) the lower (upper) bound is exactly 0 (1); rounding would move it off.
    low = 0.0 if passed == 0 else max(0.0, centre - half)
    high = 1.0 if passed == total else min(1.0, centre + half)
    return low, high


def _stratified_means(
    outcomes: Mapping[str, np.ndarray], rng: np.random.Generator, samples: int
) -> np.ndarray:
    """`samples` bootstrap draws of the mean over categories of each category's mean."""
    per_category = []
    for values in outcomes.values():
        picks = rng.integers(0, len(values), size=(samples, len(values)))
        per_category.append(values[picks].mean(axis=1))
    return np.mean(per_category, axis=0)


def _percentiles(draws: np.ndarray) -> Interval:
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def overall_interval(
    passed: Mapping[str, Sequence[bool]], samples: int = BOOTSTRAP_SAMPLES
) -> Interval:
    """95% interval of the mean of per-category accuracies (categories with no prompt dropped)."""
    outcomes = {c: np.asarray(v, dtype=float) for c, v in passed.items() if len(v)}
    if not outcomes:
        raise ValueError("no outcomes to bootstrap")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    return _percentiles(_stratified_means(outcomes, rng, samples))


def paired_difference_interval(
    passed: Mapping[str, Sequence[bool]],
    reference: Mapping[str, Sequence[bool]],
    samples: int = BOOTSTRAP_SAMPLES,
) -> Interval:
    """95% interval of overall(passed) - overall(reference), prompts paired by position."""
    outcomes = {}
    for category, values in passed.items():
        other = reference.get(category, ())
        if len(values) != len(other):
            raise ValueError(
                f"category {category!r}: {len(values)} outcomes against {len(other)} to pair"
            )
        if len(values):
            outcomes[category] = np.asarray(values, dtype=float) - np.asarray(other, dtype=float)
    if not outcomes:
        raise ValueError("no paired outcomes to bootstrap")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    return _percentiles(_stratified_means(outcomes, rng, samples))
