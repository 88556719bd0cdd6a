"""Shape geometry: outlines, bounds and areas of the shapes lssgen-mini draws.

All geometry is in image fractions: (x, y) in [0, 1]^2 with x to the right and y *downwards*
(image convention), so "above" means a smaller y. A shape is placed by its centre, which is its
area centroid: that is what the evaluator measures on a segmented component, so the spec and
the measurement agree for every shape (a triangle's bounding-box centre would not).

Each shape is scaled from its nominal `extent` (the size class, a fraction of the image side) by
its own factors so that the shapes look about equally heavy: a triangle or star of the same
extent as a circle would otherwise look much smaller. Orientation is canonical (axis-aligned
square, triangle and star pointing up); the evaluator's shape rules do not depend on it.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")

# Size class -> nominal extent as a fraction of the image side.
SIZES: dict[str, float] = {"small": 0.15, "medium": 0.21, "large": 0.30}

CIRCLE_RADIUS = 0.5  # x extent
SQUARE_SIDE = 0.86  # x extent: about the circle's area
TRIANGLE_SIDE = 1.1  # x extent, equilateral: height about one extent
STAR_RADIUS = 0.65  # x extent, tips
# Inner / outer radius of the five-pointed star. 0.38 is the regular pentagram; fatter arms
# survive blur and small sizes better and still leave the star clearly non-convex.
STAR_INNER_RATIO = 0.45
CIRCLE_VERTICES = 64  # for geometry only; rendering draws a true ellipse


@cache
def unit_outline(shape: str) -> np.ndarray:
    """Vertices (N, 2) of `shape` at extent 1, centroid at the origin, y down; clockwise on screen.

    A circle is approximated by a fine polygon: good enough for bounds and overlap checks.
    """
    if shape == "circle":
        angles = np.linspace(0.0, 2 * math.pi, CIRCLE_VERTICES, endpoint=False)
        return CIRCLE_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if shape == "square":
        h = SQUARE_SIDE / 2
        return np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    if shape == "triangle":
        a = TRIANGLE_SIDE
        height = math.sqrt(3) / 2 * a
        # The centroid sits a third of the height above the base.
        return np.array([[0.0, -2 * height / 3], [a / 2, height / 3], [-a / 2, height / 3]])
    if shape == "star":
        k = np.arange(10)
        radius = np.where(k % 2 == 0, STAR_RADIUS, STAR_RADIUS * STAR_INNER_RATIO)
        angles = -math.pi / 2 + k * math.pi / 5
        return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def outline(shape: str, center: tuple[float, float], extent: float) -> np.ndarray:
    """Vertices (N, 2) of `shape` of nominal `extent` centred (centroid) at `center`."""
    return np.asarray(center, dtype=float) + extent * unit_outline(shape)


def bounds(shape: str, center: tuple[float, float], extent: float) -> tuple[float, ...]:
    """(left, top, right, bottom) of the shape's bounding box."""
    points = outline(shape, center, extent)
    return (*points.min(axis=0).tolist(), *points.max(axis=0).tolist())


def bounding_radius(shape: str, extent: float) -> float:
    """Distance from the centroid to the farthest point: two shapes whose centres are farther
    apart than the sum of their radii cannot overlap."""
    return extent * float(np.hypot(*unit_outline(shape).T).max())


def area(shape: str, extent: float) -> float:
    """Area as a fraction of the image area (a circle exactly, not its polygon)."""
    if shape == "circle":
        return math.pi * (CIRCLE_RADIUS * extent) ** 2
    x, y = unit_outline(shape).T
    return extent**2 * 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def smallest_area() -> float:
    """Area of the smallest shape of the smallest size class (image fraction)."""
    return min(area(shape, min(SIZES.values())) for shape in SHAPES)
