"""A GenEval-like evaluator for lssgen-mini images: exact rules instead of a detector.

`check(image, caption)` segments the image by the known palette and judges the caption with the
rules of `lssgen.mini.rules`; `score(images, captions)` aggregates accuracy per GenEval category;
`sharpness` / `laplacian_variance` / `high_frequency_ratio` measure detail.

Segmentation (`segment`), per image:

1. each pixel takes its nearest palette colour if it is within `SEGMENT_THRESHOLD` (RGB distance)
   of it, else none: backgrounds are built to be far from every palette colour;
2. per colour, connected components (4-connected) are taken and holes filled; a component is
   an object if, after a 3x3 opening, at least `MIN_AREA` of the smallest object the grammar
   draws remains. The opening discards the thin fringes that anti-aliased or blurred edges leave
   in other colours (a red edge on grey passes near orange, say) and specks of noise, while the
   shape is measured on the unopened component so that thin tips still count;
3. each component's shape comes from three rotation-invariant measures (`shape_features`):
   solidity (area / convex hull area) singles out the star, the only non-convex shape;
   roundness (area / area of the circle through its farthest point) the circle;
   rectangularity (area / smallest enclosing rectangle) the square (1) from the triangle (1/2);
   and a convex shape that is neither, with a near-regular pentagon for a hull, is a star
   blurred enough to fill its inner corners (`classify_shape`).

What it cannot see: objects in colours far from the palette, objects merged with a same-coloured
neighbour (counted as one, usually of the wrong shape), and shapes the palette renders too small
(below about 8 px across) to measure.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import attrs
import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from lssgen.mini.captions import CATEGORIES, Caption, parse_caption
from lssgen.mini.palette import COLOUR_NAMES, SEGMENT_THRESHOLD, distance_to_palette
from lssgen.mini.rules import CheckResult, Detection, judge
from lssgen.mini.shapes import smallest_area

# Components under this fraction of the smallest object's area are specks, not objects.
MIN_AREA = 0.25
# Shape decision boundaries (see `classify_shape`), set between the ranges measured on clean,
# blurred (sigma 1 and 2 px at 128), noisy and JPEG-compressed renders at 64-256 px.
STAR_SOLIDITY = 0.77
CIRCLE_ROUNDNESS = 0.83
SQUARE_RECTANGULARITY = 0.77
TRIANGLE_HULL_RATIO = 0.69
_OPENING = np.ones((3, 3), dtype=bool)


def to_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """An image as float32 (H, W, 3) RGB in 0..255: a PIL image, a uint8 array, or a float array
    in 0..1 (a float array with values above 1 is taken as 0..255 already)."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.float32)
    source = np.asarray(image)
    if source.ndim != 3 or source.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB array, got shape {source.shape}")
    array = source.astype(np.float32)
    if np.issubdtype(source.dtype, np.floating) and array.max(initial=0.0) <= 1.0:
        return array * 255.0
    return array


@attrs.frozen
class ShapeFeatures:
    """Rotation-invariant measures of one component; ideal values (circle / square / triangle /
    star): solidity 1 / 1 / 1 / 0.56, roundness 1 / 0.64 / 0.41 / 0.42, rectangularity
    0.79 / 1 / 0.5 / 0.38, hull ratio 1 / 0.71 / 0.5 / 0.81."""

    solidity: float  # area / convex hull area
    roundness: float  # area / area of the circle about the centroid through the farthest point
    rectangularity: float  # area / smallest enclosing rectangle (any orientation)
    # Nearest over farthest convex hull boundary point, about the centroid: the hull of a star is
    # a pentagon (0.81) however blurred its inner corners are; a triangle's is 0.5.
    hull_ratio: float


def shape_features(mask: np.ndarray) -> ShapeFeatures:
    """The measures of one filled component given as a boolean mask.

    Areas count pixels as unit squares and the hull is taken over pixel corners, so the measures
    stay near their continuous values down to about 8 px across.
    """
    ys, xs = np.nonzero(mask)
    pixels = float(xs.size)
    cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
    ey, ex = np.nonzero(mask & ~ndimage.binary_erosion(mask))
    corners = np.concatenate(
        [np.stack([ex + dx, ey + dy], axis=1) for dx in (0, 1) for dy in (0, 1)]
    ).astype(np.float64)
    try:
        hull = ConvexHull(corners)
    except QhullError:  # degenerate: a line of pixels
        return ShapeFeatures(0.0, 0.0, 0.0, 0.0)
    vertices = corners[hull.vertices]
    # Corners overshoot the boundary by up to half a pixel diagonal: take about half back.
    reach = np.hypot(vertices[:, 0] - cx, vertices[:, 1] - cy).max() - 0.35
    inner = -(hull.equations[:, :2] @ (cx, cy) + hull.equations[:, 2]).max() - 0.35
    return ShapeFeatures(
        solidity=pixels / hull.volume,
        roundness=pixels / (math.pi * reach**2),
        rectangularity=pixels / _min_rectangle_area(vertices),
        hull_ratio=max(inner, 0.0) / reach,
    )


def _min_rectangle_area(hull: np.ndarray) -> float:
    """Area of the smallest rectangle around a convex polygon: one side lies along a hull edge."""
    edges = np.diff(np.vstack([hull, hull[:1]]), axis=0)
    angles = np.arctan2(edges[:, 1], edges[:, 0])
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    u = hull[:, 0] * cos + hull[:, 1] * sin  # (edges, vertices)
    v = -hull[:, 0] * sin + hull[:, 1] * cos
    return float((np.ptp(u, axis=1) * np.ptp(v, axis=1)).min())


def classify_shape(features: ShapeFeatures) -> str:
    """Star if clearly non-convex; else circle if round; else square if it fills its enclosing
    rectangle; else triangle, unless its hull is a near-regular pentagon: a star blurred enough
    to fill its inner corners."""
    if features.solidity < STAR_SOLIDITY:
        return "star"
    if features.roundness > CIRCLE_ROUNDNESS:
        return "circle"
    if features.rectangularity > SQUARE_RECTANGULARITY:
        return "square"
    return "triangle" if features.hull_ratio < TRIANGLE_HULL_RATIO else "star"


def segment(
    image: Image.Image | np.ndarray, threshold: float = SEGMENT_THRESHOLD
) -> tuple[Detection, ...]:
    """The palette-coloured objects in an image, as `Detection`s (image-fraction geometry)."""
    rgb = to_array(image)
    height, width = rgb.shape[:2]
    distance = distance_to_palette(rgb)
    nearest = distance.argmin(axis=-1)
    nearest[distance.min(axis=-1) >= threshold] = -1
    min_pixels = MIN_AREA * smallest_area() * height * width
    found: list[Detection] = []
    present = np.bincount(nearest[nearest >= 0].ravel(), minlength=len(COLOUR_NAMES))
    for k in np.flatnonzero(present >= min_pixels):
        raw = nearest == k
        labels, count = ndimage.label(raw)
        if count == 0:
            continue
        # A component is an object when enough of it survives the opening; its outline is then
        # taken from the raw mask, so thin parts (star and triangle tips) still count for shape.
        solid = np.bincount(
            labels[ndimage.binary_opening(raw, structure=_OPENING)], minlength=count + 1
        )
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            if box is None or solid[index] < min_pixels:
                continue
            component = ndimage.binary_fill_holes(labels[box] == index)
            found.append(_detection(COLOUR_NAMES[k], component, box, width, height))
    return tuple(found)


def _detection(
    colour: str, component: np.ndarray, box: tuple[slice, slice], width: int, height: int
) -> Detection:
    ys, xs = np.nonzero(component)
    rows, cols = box
    center = ((cols.start + xs.mean() + 0.5) / width, (rows.start + ys.mean() + 0.5) / height)
    size = ((xs.max() - xs.min() + 1) / width, (ys.max() - ys.min() + 1) / height)
    shape = classify_shape(shape_features(component))
    return Detection(colour, shape, center, size, xs.size / (width * height))


def check(image: Image.Image | np.ndarray, caption: Caption | str) -> CheckResult:
    """Whether `image` shows what `caption` (structured, or text the grammar wrote) says."""
    if isinstance(caption, str):
        caption = parse_caption(caption)
    return judge(caption, segment(image))


def laplacian_variance(image: Image.Image | np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (0..1): the classic focus measure.

    Higher is sharper. It grows with edge contrast, background texture and, strongly, with pixel
    noise (grain of 10 grey levels outweighs every edge in a render), and shrinks with image size
    at a fixed content, so compare it only between images of the same size and prompts, e.g.
    plain versus LSS sampling from the same seeds, and read it next to `high_frequency_ratio`.
    """
    grey = to_array(image) @ np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255.0
    return float(ndimage.laplace(grey.astype(np.float64), mode="reflect").var())


def high_frequency_ratio(image: Image.Image | np.ndarray, cutoff: float = 0.25) -> float:
    """Share of the grey image's spectral energy (DC excluded) above `cutoff` cycles per pixel
    (Nyquist is 0.5): 0 for a flat or very blurred image, larger for crisper edges.

    Less sensitive to overall contrast than `laplacian_variance`; the same caveat about
    comparing only equal sizes applies.
    """
    grey = to_array(image) @ np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255.0
    power = np.abs(np.fft.fft2(grey - grey.mean())) ** 2
    fy = np.fft.fftfreq(grey.shape[0])[:, None]
    fx = np.fft.fftfreq(grey.shape[1])[None, :]
    total = power.sum()
    return float(power[np.hypot(fx, fy) > cutoff].sum() / total) if total > 0 else 0.0


def sharpness(images: Iterable[Image.Image | np.ndarray]) -> float:
    """Mean `laplacian_variance` over images: the sharpness column of the benchmark."""
    values = [laplacian_variance(image) for image in images]
    return float(np.mean(values)) if values else float("nan")


def score(
    images: Sequence[Image.Image | np.ndarray], captions: Sequence[Caption | str]
) -> dict[str, object]:
    """Accuracy of `images` against their `captions`, GenEval style.

    Returns {"overall": mean of the per-category accuracies (GenEval's overall score),
    "overall_images": share of all images that pass, "per_category": {category: accuracy},
    "count": {category: images}, "sharpness": mean Laplacian variance, "passed": {category:
    [verdict per image, in prompt order]}}. Categories without images are left out.
    """
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images for {len(captions)} captions")
    passed: dict[str, list[bool]] = defaultdict(list)
    for image, caption in zip(images, captions):
        result = check(image, caption)
        passed[result.category].append(result.passed)
    per_category = {c: float(np.mean(passed[c])) for c in CATEGORIES if passed[c]}
    every = [p for results in passed.values() for p in results]
    return {
        "overall": float(np.mean(list(per_category.values()))) if every else float("nan"),
        "overall_images": float(np.mean(every)) if every else float("nan"),
        "per_category": per_category,
        "count": {c: len(passed[c]) for c in per_category},
        "sharpness": sharpness(images),
        "passed": {c: passed[c] for c in per_category},  # per image, in prompt order
    }
