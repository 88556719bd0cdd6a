"""Render a `Scene` to an anti-aliased RGB image of any size.

Edges are anti-aliased by supersampling: each shape is drawn into a mask `supersample` times
finer than the output, only over the shape's own box, then averaged down with a box filter
(`Image.reduce`, an exact area average) and used as the alpha of a solid-colour paste. Hard-edged
textures (stripes, checker) are made the same way over the whole frame; smooth ones (gradient,
noise) are computed at the output size directly. Everything is in image fractions, so the same
scene renders consistently at 64, 128, 256 or 512 px; the output depends only on the scene, the
size and `supersample` (no hidden randomness: the noise texture is seeded by the scene).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from lssgen.mini.palette import BACKGROUND_TONES, COLOURS
from lssgen.mini.scenes import Background, Scene, SceneObject
from lssgen.mini.shapes import outline

SUPERSAMPLE = 4  # 17 coverage levels per edge pixel: visually smooth, still cheap


def render(scene: Scene, size: int, supersample: int = SUPERSAMPLE) -> Image.Image:
    """The scene as a `size` x `size` RGB image."""
    if size < 8 or supersample < 1:
        raise ValueError("size must be at least 8 and supersample at least 1")
    image = render_background(scene.background, size, supersample)
    for obj in scene.objects:
        _paint(image, obj, supersample)
    return image


def render_background(
    background: Background, size: int, supersample: int = SUPERSAMPLE
) -> Image.Image:
    """The background alone, `size` x `size` RGB."""
    tone = BACKGROUND_TONES[background.tone]
    if background.kind == "plain":
        return Image.new("RGB", (size, size), tone)
    mask = _texture_mask(background, size, supersample)
    return Image.composite(
        Image.new("RGB", (size, size), BACKGROUND_TONES[background.tone2]),
        Image.new("RGB", (size, size), tone),
        mask,
    )


def _texture_mask(background: Background, size: int, supersample: int) -> Image.Image:
    """Weight of the second tone, as an "L" image: 255 is pure `tone2`."""
    kind, angle, period = background.kind, background.angle, background.period
    if kind == "noise":
        # A coarse seeded grid, smoothly upsampled: the same grid at every output size.
        cells = max(2, math.ceil(1 / period)) + 1
        grid = np.random.default_rng(background.seed).random((cells, cells), dtype=np.float32)
        field = Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC)
        return _to_mask(np.clip(np.asarray(field), 0.0, 1.0))
    fine = size * (1 if kind == "gradient" else supersample)
    coords = (np.arange(fine, dtype=np.float32) + 0.5) / fine - 0.5
    x, y = coords[None, :], coords[:, None]
    u = x * math.cos(angle) + y * math.sin(angle)
    if kind == "gradient":
        half = 0.5 * (abs(math.cos(angle)) + abs(math.sin(angle)))  # u's range over the frame
        return _to_mask(u / (2 * half) + 0.5)
    if kind == "stripes":
        weight = np.floor(u / period) % 2
    else:  # checker
        v = -x * math.sin(angle) + y * math.cos(angle)
        weight = (np.floor(u / period) + np.floor(v / period)) % 2
    return _to_mask(weight).reduce(supersample) if supersample > 1 else _to_mask(weight)


def _to_mask(weight: np.ndarray) -> Image.Image:
    return Image.fromarray(np.rint(weight * 255).astype(np.uint8), mode="L")


def _paint(image: Image.Image, obj: SceneObject, supersample: int) -> None:
    """Alpha-paste one object over `image`, anti-aliased, touching only the object's box."""
    size = image.width
    left, top, right, bottom = obj.bounds()
    # The box in output pixels, one pixel of slack so edge coverage is never cut off.
    x0, y0 = max(0, math.floor(left * size) - 1), max(0, math.floor(top * size) - 1)
    x1, y1 = min(size, math.ceil(right * size) + 1), min(size, math.ceil(bottom * size) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    mask = Image.new("L", ((x1 - x0) * supersample, (y1 - y0) * supersample), 0)
    # Fine pixel (i, j) covers [i, i + 1) while PIL puts pixel centres on integers, hence the
    # half-pixel shift. PIL also fills the pixels the outline touches, so at 4x areas come out
    # 0.3-3% large (most at 64 px): harmless, and the same for every render of a scene.
    points = (outline(obj.shape, obj.center, obj.extent) * size - (x0, y0)) * supersample - 0.5
    ImageDraw.Draw(mask).polygon([tuple(p) for p in points.tolist()], fill=255)
    if supersample > 1:
        mask = mask.reduce(supersample)
    image.paste(COLOURS[obj.colour], (x0, y0, x1, y1), mask)
