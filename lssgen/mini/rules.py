"""The rules that decide whether a set of objects satisfies a caption (GenEval's, on exact data).

Both the ground truth of a generated scene (`lssgen.mini.scenes.satisfies`) and the image
evaluator (`lssgen.mini.scoring.check`) reduce what they know to `Detection`s and call `judge`,
so a scene and its render are held to literally the same rules:

- every phrase needs at least `count` matching objects (shape equal, colour equal when the phrase
  names one); phrases that are identical claim distinct objects;
- counting captions need exactly `count` matching objects;
- position captions compare the largest match of each phrase with GenEval's rule
  (`relations_between`): the centre offset, shrunk per axis by 0.1 x the summed box sizes, must
  point within 60 degrees of the relation's direction.

Coordinates are image fractions, x right and y down.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import attrs
import numpy as np

from lssgen.mini.captions import Caption, Phrase

# GenEval's POSITION_THRESHOLD: the offset is shrunk by this times the summed box sizes.
POSITION_THRESHOLD = 0.1


@attrs.frozen
class Detection:
    """One object: its colour and shape names, centroid, bounding-box size and area."""

    colour: str
    shape: str
    center: tuple[float, float]
    size: tuple[float, float]  # bounding-box width, height
    area: float  # fraction of the image


@attrs.frozen
class CheckResult:
    """The judgement of one caption: `passed`, and `reasons` for a failure (empty on a pass)."""

    caption: Caption
    passed: bool
    reasons: tuple[str, ...]
    detections: tuple[Detection, ...]

    @property
    def category(self) -> str:
        return self.caption.category


def relations_between(a: Detection, b: Detection) -> frozenset[str]:
    """Every relation in which `a` stands to `b` ("left of", "right of", "above", "below").

    GenEval's rule: a diagonal offset can hold two relations at once, and objects whose centres
    are closer than about a tenth of their sizes hold none.
    """
    offset = np.subtract(a.center, b.center)
    dims = np.add(a.size, b.size)
    revised = np.maximum(np.abs(offset) - POSITION_THRESHOLD * dims, 0.0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return frozenset()
    dx, dy = revised / np.linalg.norm(offset)
    found = {
        "left of": dx < -0.5,
        "right of": dx > 0.5,
        "above": dy < -0.5,
        "below": dy > 0.5,
    }
    return frozenset(name for name, holds in found.items() if holds)


def matches(phrase: Phrase, detections: Sequence[Detection]) -> list[Detection]:
    """The detections a phrase can refer to, largest first."""
    found = [
        d
        for d in detections
        if d.shape == phrase.shape and (phrase.colour is None or d.colour == phrase.colour)
    ]
    return sorted(found, key=lambda d: -d.area)


def judge(caption: Caption, detections: Sequence[Detection]) -> CheckResult:
    """Whether `detections` satisfy `caption`, with the reasons when they do not."""
    reasons: list[str] = []
    needed = Counter((p.shape, p.colour) for p in caption.objects for _ in range(p.count))
    found = [matches(p, detections) for p in caption.objects]
    for phrase, hits in zip(caption.objects, found):
        if caption.category == "counting":
            if len(hits) != phrase.count:
                reasons.append(
                    f"expected exactly {phrase.count} x {_name(phrase)}, found {len(hits)}"
                )
        elif len(hits) < needed[(phrase.shape, phrase.colour)]:
            reasons.append(f"expected {_name(phrase)}, found {len(hits)}")
    if caption.relation is not None and not reasons:
        subject = found[0][0]
        reference = next((d for d in found[1] if d is not subject), None)
        held = frozenset() if reference is None else relations_between(subject, reference)
        if reference is None:
            reasons.append("expected two distinct objects for the relation, found one")
        elif caption.relation not in held:
            shown = ", ".join(sorted(held)) or "no clear relation"
            reasons.append(f"expected {caption.relation}, found {shown}")
    return CheckResult(caption, not reasons, tuple(reasons), tuple(detections))


def _name(phrase: Phrase) -> str:
    return phrase.shape if phrase.colour is None else f"{phrase.colour} {phrase.shape}"
