"""Procedural scenes and their captions: the data lssgen-mini is trained and evaluated on.

A `Scene` is a background and a few coloured shapes, all in image fractions (so one scene renders
at any size, see `lssgen.mini.render`). `sample_scene(rng, category)` draws a scene *and* the
caption it is true to: the caption's objects are exactly the scene's objects, objects never
overlap and stay inside the frame, and position relations hold with a wide margin (so that
blur or a VAE round trip cannot flip them). `scene_for_index(seed, index)` makes that a
deterministic, random-access dataset: the same (seed, index) always gives the same sample, and
categories cycle with the index so any prefix of a dataset is balanced.

What may be drawn (shapes, colours, sizes, counts, relations, categories, background kinds) is a
`Grammar`; the default uses everything. `satisfies(scene, caption)` is the ground truth, by the
same rules the image evaluator applies (`lssgen.mini.rules`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import numpy as np

from lssgen.mini.captions import CATEGORIES, MAX_COUNT, RELATIONS, Caption, Phrase
from lssgen.mini.palette import BACKGROUND_TONES, COLOUR_NAMES
from lssgen.mini.rules import Detection, judge
from lssgen.mini.shapes import SHAPES, SIZES, area, bounding_radius, bounds

BACKGROUND_KINDS: tuple[str, ...] = ("plain", "stripes", "checker", "noise", "gradient")
# Plain grounds are the most common; textures are there so the model learns to ignore them.
BACKGROUND_WEIGHTS: dict[str, float] = {
    "plain": 0.4,
    "stripes": 0.15,
    "checker": 0.15,
    "noise": 0.15,
    "gradient": 0.15,
}
# Stripe / checker period and noise cell size, image fractions.
PERIOD_RANGE: dict[str, tuple[float, float]] = {
    "stripes": (0.08, 0.25),
    "checker": (0.1, 0.3),
    "noise": (0.15, 0.4),
    "gradient": (1.0, 1.0),
}
MIN_TEXTURE_CONTRAST = 25.0  # RGB distance between a texture's two tones: visible, not loud

EDGE_MARGIN = 0.02  # every shape's bounding box keeps this far from the frame
# Bounding circles keep this far apart: same-coloured neighbours stay separate components even
# after a blur of a few pixels at 128 px.
OBJECT_GAP = 0.03
# A position relation is drawn with the subject at least this far along the relation's axis
# from the reference, within this angle of the axis. The evaluator needs only 60 degrees
# (GenEval's rule), and 25 < 30 keeps the perpendicular relations clearly false.
RELATION_MIN_OFFSET = 0.2
RELATION_MAX_ANGLE = math.radians(25)
AXES: dict[str, tuple[float, float]] = {
    "left of": (-1.0, 0.0),
    "right of": (1.0, 0.0),
    "above": (0.0, -1.0),
    "below": (0.0, 1.0),
}
_CANDIDATES = 64  # centre candidates drawn at once per object
_ATTEMPTS = 200  # layouts tried (sizes redrawn each time) before giving up


@attrs.frozen
class Background:
    """A plain colour (`tone2 == tone`) or a two-tone texture; tones name `BACKGROUND_TONES`.

    `angle` (radians) orients stripes, checker and gradient; `period` is the stripe / checker
    period or the noise cell, as an image fraction; `seed` fixes the noise.
    """

    kind: str = attrs.field(validator=attrs.validators.in_(BACKGROUND_KINDS))
    tone: str = attrs.field(validator=attrs.validators.in_(BACKGROUND_TONES))
    tone2: str = attrs.field(validator=attrs.validators.in_(BACKGROUND_TONES))
    angle: float = 0.0
    period: float = 1.0
    seed: int = 0


def _point(center: Sequence[float]) -> tuple[float, float]:
    return float(center[0]), float(center[1])


@attrs.frozen
class SceneObject:
    """A shape of a size class in a palette colour, centred (area centroid) at `center`."""

    shape: str = attrs.field(validator=attrs.validators.in_(SHAPES))
    colour: str = attrs.field(validator=attrs.validators.in_(COLOUR_NAMES))
    size: str = attrs.field(validator=attrs.validators.in_(SIZES))
    center: tuple[float, float] = attrs.field(converter=_point)

    @property
    def extent(self) -> float:
        return SIZES[self.size]

    @property
    def radius(self) -> float:
        return bounding_radius(self.shape, self.extent)

    def bounds(self) -> tuple[float, ...]:
        """(left, top, right, bottom), image fractions."""
        return bounds(self.shape, self.center, self.extent)

    def detection(self) -> Detection:
        """What a perfect evaluator would see of this object."""
        left, top, right, bottom = self.bounds()
        return Detection(
            self.colour, self.shape, self.center, (right - left, bottom - top), self.area()
        )

    def area(self) -> float:
        return area(self.shape, self.extent)


def _scene_objects(objects: Iterable[SceneObject]) -> tuple[SceneObject, ...]:
    return tuple(objects)


@attrs.frozen
class Scene:
    """What one image shows: a background and the objects painted over it, none overlapping."""

    background: Background
    objects: tuple[SceneObject, ...] = attrs.field(converter=_scene_objects)


@attrs.frozen
class Grammar:
    """What `sample_scene` may draw. Restrict it to make an easier dataset for a small model."""

    shapes: tuple[str, ...] = SHAPES
    colours: tuple[str, ...] = COLOUR_NAMES
    sizes: tuple[str, ...] = tuple(SIZES)
    counts: tuple[int, ...] = tuple(range(1, MAX_COUNT + 1))
    relations: tuple[str, ...] = RELATIONS
    categories: tuple[str, ...] = CATEGORIES
    backgrounds: tuple[str, ...] = BACKGROUND_KINDS

    def __attrs_post_init__(self) -> None:
        # Two-object captions need two distinct shapes and two distinct colours.
        if len(set(self.shapes)) < 2 or len(set(self.colours)) < 2:
            raise ValueError("a grammar needs at least two shapes and two colours")
        for name, values, allowed in (
            ("shape", self.shapes, SHAPES),
            ("colour", self.colours, COLOUR_NAMES),
            ("size", self.sizes, tuple(SIZES)),
            ("count", self.counts, tuple(range(1, MAX_COUNT + 1))),
            ("relation", self.relations, RELATIONS),
            ("category", self.categories, CATEGORIES),
            ("background", self.backgrounds, BACKGROUND_KINDS),
        ):
            unknown = set(values) - set(allowed)
            if unknown or not values:
                raise ValueError(f"bad {name} list {values!r}; allowed: {allowed}")


GRAMMAR = Grammar()


def detections(scene: Scene) -> tuple[Detection, ...]:
    return tuple(obj.detection() for obj in scene.objects)


def satisfies(scene: Scene, caption: Caption) -> bool:
    """The ground truth: whether the scene's exact objects satisfy the caption's rules."""
    return judge(caption, detections(scene)).passed


def scene_for_index(seed: int, index: int, grammar: Grammar = GRAMMAR) -> tuple[Scene, Caption]:
    """Sample `index` of the dataset `seed`: deterministic, independent of every other index.

    The category is `grammar.categories[index % len(grammar.categories)]`.
    """
    if seed < 0 or index < 0:
        raise ValueError("seed and index are non-negative")
    rng = np.random.default_rng([seed, index])
    category = grammar.categories[index % len(grammar.categories)]
    return sample_scene(rng, category, grammar)


def sample_scene(
    rng: np.random.Generator, category: str, grammar: Grammar = GRAMMAR
) -> tuple[Scene, Caption]:
    """A random scene of `category` and the caption it satisfies."""
    caption, colours = _sample_caption(rng, category, grammar)
    background = sample_background(rng, grammar.backgrounds)
    shapes = [p.shape for p in caption.objects for _ in range(p.count)]
    for _ in range(_ATTEMPTS):
        sizes = [_pick(rng, grammar.sizes) for _ in shapes]
        centers = _place(rng, shapes, sizes, caption.relation)
        if centers is not None:
            objects = tuple(map(SceneObject, shapes, colours, sizes, centers))
            return Scene(background, objects), caption
    raise RuntimeError(f"no layout found for {caption.text!r}")  # not seen in practice


def sample_background(
    rng: np.random.Generator, kinds: tuple[str, ...] = BACKGROUND_KINDS
) -> Background:
    """A background of one of `kinds` (plain ones most often), tones and texture drawn at random."""
    weights = np.array([BACKGROUND_WEIGHTS[k] for k in kinds])
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    tones = tuple(BACKGROUND_TONES)
    tone = _pick(rng, tones)
    if kind == "plain":
        return Background(kind, tone, tone)
    first = np.array(BACKGROUND_TONES[tone], dtype=float)
    seconds = tuple(
        t for t in tones if np.linalg.norm(first - BACKGROUND_TONES[t]) >= MIN_TEXTURE_CONTRAST
    )
    return Background(
        kind,
        tone,
        _pick(rng, seconds),
        angle=float(rng.uniform(0.0, math.pi)),
        period=float(rng.uniform(*PERIOD_RANGE[kind])),
        seed=int(rng.integers(2**31)),
    )


def _pick(rng: np.random.Generator, options: tuple[Any, ...]) -> Any:
    return options[int(rng.integers(len(options)))]


def _distinct(rng: np.random.Generator, options: tuple[Any, ...], n: int) -> list[Any]:
    return [options[i] for i in rng.permutation(len(options))[:n]]


def _sample_caption(
    rng: np.random.Generator, category: str, grammar: Grammar
) -> tuple[Caption, list[str]]:
    """The caption and the colour of each object it implies, in phrase order."""
    if category in ("single_object", "colors"):
        shape, colour = _pick(rng, grammar.shapes), _pick(rng, grammar.colours)
        named = colour if category == "colors" else None
        return Caption(category, (Phrase(shape, named),)), [colour]
    if category == "counting":
        shape, colour = _pick(rng, grammar.shapes), _pick(rng, grammar.colours)
        count = _pick(rng, grammar.counts)
        return Caption(category, (Phrase(shape, colour, count),)), [colour] * count
    if category in ("two_object", "color_attr"):
        shapes = _distinct(rng, grammar.shapes, 2)
        if category == "two_object":
            colours = [_pick(rng, grammar.colours) for _ in shapes]
            return Caption(category, tuple(Phrase(s) for s in shapes)), colours
        colours = _distinct(rng, grammar.colours, 2)
        phrases = tuple(Phrase(s, c) for s, c in zip(shapes, colours))
        return Caption(category, phrases), colours
    if category == "position":
        # Distinct colours tell the two objects apart even when their shapes are the same.
        shapes = [_pick(rng, grammar.shapes) for _ in range(2)]
        colours = _distinct(rng, grammar.colours, 2)
        relation = _pick(rng, grammar.relations)
        phrases = tuple(Phrase(s, c) for s, c in zip(shapes, colours))
        return Caption(category, phrases, relation), colours
    raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")


def _place(
    rng: np.random.Generator, shapes: list[str], sizes: list[str], relation: str | None
) -> list[tuple[float, float]] | None:
    """Centres for the objects, or None when this draw leaves no room for one of them.

    With a relation, objects[0] is the subject and objects[1] the reference: the reference is
    placed first and the subject's candidates are filtered by the relation's margin.
    """
    order = [1, 0] if relation is not None else list(range(len(shapes)))
    centers: dict[int, np.ndarray] = {}
    for i in order:
        extent = SIZES[sizes[i]]
        left, top, right, bottom = bounds(shapes[i], (0.0, 0.0), extent)
        low = np.array([EDGE_MARGIN - left, EDGE_MARGIN - top])
        high = np.array([1 - EDGE_MARGIN - right, 1 - EDGE_MARGIN - bottom])
        candidates = low + (high - low) * rng.random((_CANDIDATES, 2))
        ok = np.ones(_CANDIDATES, dtype=bool)
        radius = bounding_radius(shapes[i], extent)
        for j, center in centers.items():
            clearance = radius + bounding_radius(shapes[j], SIZES[sizes[j]]) + OBJECT_GAP
            ok &= np.hypot(*(candidates - center).T) >= clearance
        if relation is not None and i == 0:
            offset = candidates - centers[1]
            axis = np.array(AXES[relation])
            along = offset @ axis
            across = np.abs(offset @ axis[::-1])
            ok &= (along >= RELATION_MIN_OFFSET) & (across <= math.tan(RELATION_MAX_ANGLE) * along)
        hits = np.flatnonzero(ok)
        if hits.size == 0:
            return None
        centers[i] = candidates[hits[0]]
    return [(float(c[0]), float(c[1])) for _, c in sorted(centers.items())]
