"""Rendering: deterministic, any size, anti-aliased, consistent between sizes."""

import numpy as np
import pytest

from lssgen.mini.palette import BACKGROUND_TONES, COLOURS
from lssgen.mini.render import render
from lssgen.mini.scenes import BACKGROUND_KINDS, Background, Scene, SceneObject, scene_for_index
from lssgen.mini.shapes import SHAPES

ONE_CIRCLE = Scene(
    Background("plain", "grey", "grey"), (SceneObject("circle", "red", "large", (0.5, 0.5)),)
)


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def test_rendering_is_deterministic():
    for index in range(12):
        scene, _ = scene_for_index(1, index)
        assert render(scene, 96).tobytes() == render(scene, 96).tobytes()
        assert render(scene_for_index(1, index)[0], 96).tobytes() == render(scene, 96).tobytes()


@pytest.mark.parametrize("size", [8, 64, 100, 128, 256, 512])
def test_any_size_gives_a_square_rgb_image(size):
    image = render(scene_for_index(2, 4)[0], size)
    assert image.mode == "RGB"
    assert image.size == (size, size)


def test_sizes_below_eight_are_refused():
    with pytest.raises(ValueError):
        render(ONE_CIRCLE, 4)


@pytest.mark.parametrize("index", range(12))
def test_one_scene_looks_the_same_at_every_size(index):
    scene, _ = scene_for_index(9, index)
    small = pixels(render(scene, 128))
    large = pixels(render(scene, 256).reduce(2))
    assert np.abs(small - large).mean() < 2.0


def test_edges_are_anti_aliased_and_interiors_exact():
    image = pixels(render(ONE_CIRCLE, 128))
    red, grey = np.array(COLOURS["red"]), np.array(BACKGROUND_TONES["grey"])
    assert (image[64, 64] == red).all()
    assert (image[2, 2] == grey).all()
    # Edge pixels are blends: on the segment from grey to red, strictly between the two.
    blend = ~(image == red).all(axis=-1) & ~(image == grey).all(axis=-1)
    assert blend.sum() > 100
    t = ((image[blend] - grey) @ (red - grey)) / ((red - grey) @ (red - grey))
    assert ((t > 0) & (t < 1)).all()
    assert np.abs(grey + t[:, None] * (red - grey) - image[blend]).max() <= 1.0
    # Without supersampling every pixel is one colour or the other.
    hard = pixels(render(ONE_CIRCLE, 128, supersample=1))
    assert ((hard == red).all(axis=-1) | (hard == grey).all(axis=-1)).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_the_drawn_area_matches_the_geometry(shape):
    obj = SceneObject(shape, "red", "large", (0.5, 0.5))
    red, grey = np.array(COLOURS["red"]), np.array(BACKGROUND_TONES["grey"])
    for size in (64, 128, 256):
        image = pixels(render(Scene(ONE_CIRCLE.background, (obj,)), size))
        coverage = ((image - grey) @ (red - grey) / ((red - grey) @ (red - grey))).sum()
        # PIL fills the pixels its outline touches: up to 3% large at 64 px, less above.
        assert coverage / size**2 == pytest.approx(obj.area(), rel=0.035)


@pytest.mark.parametrize("kind", BACKGROUND_KINDS)
def test_textures_blend_only_their_two_tones(kind):
    background = Background(kind, "slate", "sand", angle=0.4, period=0.15, seed=3)
    image = pixels(render(Scene(background, ()), 96))
    a, b = np.array(BACKGROUND_TONES["slate"]), np.array(BACKGROUND_TONES["sand"])
    t = np.clip(((image - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
    assert np.abs(a + t[..., None] * (b - a) - image).max() <= 1.5
    if kind != "plain":
        assert t.std() > 0.1  # the texture is visible


def test_objects_partly_outside_the_frame_are_clipped_not_refused():
    scene = Scene(ONE_CIRCLE.background, (SceneObject("star", "blue", "large", (0.98, 0.02)),))
    image = pixels(render(scene, 64))
    assert (image[1, 62] == COLOURS["blue"]).all()
