"""The named colours of lssgen-mini: the object palette and the background tones.

Every object is painted in one of `COLOURS`; backgrounds only use `BACKGROUND_TONES` and blends
between two of them. The two sets are chosen so that a rule-based evaluator can segment an image
by nearest palette colour: object colours are far from each other (RGB distance >= 100) and every
background tone, and every blend of two tones, stays far from all object colours (>= 105, checked
by the tests), so a segmentation threshold of `SEGMENT_THRESHOLD` leaves room on both sides for
anti-aliasing, blur, noise and a VAE round trip.

Colours are sRGB triples in 0..255. Distances are plain Euclidean RGB distances: crude
perceptually, but the palette is spaced widely enough that it does not matter, and it is what the
evaluator computes per pixel.
"""

from __future__ import annotations

import numpy as np

from lssgen.mini.data_files import read_config

RGB = tuple[int, int, int]

# Object colours: saturated, mutually distant; the names are the words the captions use. Red /
# orange / yellow are the closest trio (about 105-112 apart), so they are spaced along green on
# purpose. Background tones: muted mid-luminance, far from every object colour, including white
# and black (no very light or very dark backgrounds), so objects always stand out and never merge
# with the ground. Both tables are data: configs/palette.json.
_TABLES = read_config("palette")


def _colours(table: dict[str, list[int]]) -> dict[str, RGB]:
    return {name: (rgb[0], rgb[1], rgb[2]) for name, rgb in table.items()}


COLOURS: dict[str, RGB] = _colours(_TABLES["colours"])
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
BACKGROUND_TONES: dict[str, RGB] = _colours(_TABLES["background_tones"])

# A pixel counts as an object colour only when it is this close to it (RGB distance); background
# tones are at least 105 away, object colours at least 100 apart.
SEGMENT_THRESHOLD = 75.0


def palette_array(names: tuple[str, ...] = COLOUR_NAMES) -> np.ndarray:
    """The named colours as a float32 (K, 3) array, rows in the order of `names`."""
    return np.array([COLOURS[name] for name in names], dtype=np.float32)


def distance_to_palette(rgb: np.ndarray, names: tuple[str, ...] = COLOUR_NAMES) -> np.ndarray:
    """RGB distance from each colour in `rgb` (..., 3) to each named colour: shape (..., K)."""
    diff = np.asarray(rgb, dtype=np.float32)[..., None, :] - palette_array(names)
    return np.sqrt(np.einsum("...kc,...kc->...k", diff, diff))
