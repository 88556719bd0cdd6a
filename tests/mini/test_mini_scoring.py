"""The evaluator: right on the data's own renders, wrong captions fail, mild degradation is
tolerated, shapes are told apart in any orientation, sharpness orders blur."""

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from lssgen.mini.captions import CATEGORIES, perturbations
from lssgen.mini.render import render
from lssgen.mini.rules import judge
from lssgen.mini.scenes import Background, Scene, SceneObject, satisfies, scene_for_index
from lssgen.mini.scoring import (
    check,
    classify_shape,
    high_frequency_ratio,
    laplacian_variance,
    score,
    segment,
    shape_features,
    sharpness,
    to_array,
)
from lssgen.mini.shapes import SHAPES, unit_outline


def samples(n: int, seed: int = 2024):
    return [scene_for_index(seed, i) for i in range(n)]


def degrade(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Gaussian blur of 1 px per 128 px, then noise of 10 grey levels (sigma)."""
    blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(image.width / 128)), dtype=float)
    noisy = blurred + rng.normal(0.0, 10.0, blurred.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


@pytest.mark.parametrize(("size", "n"), [(128, 500), (256, 250)])
def test_own_renders_pass(size, n):
    data = samples(n)
    result = score([render(scene, size) for scene, _ in data], [c for _, c in data])
    assert result["overall"] >= 0.98
    assert min(result["per_category"].values()) >= 0.95
    assert set(result["per_category"]) == set(CATEGORIES)


def test_wrong_captions_fail():
    passed = []
    for scene, caption in samples(120, seed=7):
        found = segment(render(scene, 128))  # segment once, judge every variant
        for _, wrong in perturbations(caption):
            if not satisfies(scene, wrong):
                passed.append(judge(wrong, found).passed)
    assert len(passed) > 1000
    assert np.mean(passed) <= 0.05


def test_blurred_noisy_renders_still_pass():
    rng = np.random.default_rng(0)
    data = samples(120, seed=11)
    images = [degrade(render(scene, 128), rng) for scene, _ in data]
    assert score(images, [c for _, c in data])["overall"] >= 0.9


def test_text_captions_are_parsed():
    scene, caption = scene_for_index(0, 4)  # a position caption
    image = render(scene, 128)
    assert check(image, caption.text) == check(image, caption)
    assert check(image, caption.text).passed


def test_a_failure_says_why():
    scene = Scene(
        Background("plain", "grey", "grey"),
        (
            SceneObject("circle", "red", "medium", (0.25, 0.5)),
            SceneObject("square", "blue", "medium", (0.75, 0.5)),
        ),
    )
    image = render(scene, 128)
    assert check(image, "a red circle to the left of a blue square").passed
    flipped = check(image, "a red circle to the right of a blue square")
    assert not flipped.passed
    assert flipped.reasons == ("expected right of, found left of",)
    missing = check(image, "two red circles")
    assert missing.reasons == ("expected exactly 2 x red circle, found 1",)
    assert missing.category == "counting"


def test_detections_measure_the_objects():
    obj = SceneObject("triangle", "green", "large", (0.4, 0.6))
    (found,) = segment(render(Scene(Background("stripes", "sand", "slate", 1.0, 0.1), (obj,)), 256))
    assert (found.colour, found.shape) == ("green", "triangle")
    assert math.dist(found.center, obj.center) < 1 / 256
    assert found.area == pytest.approx(obj.area(), rel=0.05)
    left, top, right, bottom = obj.bounds()
    assert found.size == pytest.approx((right - left, bottom - top), abs=2 / 256)


def test_backgrounds_alone_hold_no_objects():
    for index in range(30):
        scene, _ = scene_for_index(5, index)
        assert segment(render(Scene(scene.background, ()), 128)) == ()
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    assert segment(noise) == ()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("degrees", [0, 17, 45, 90, 150])
@pytest.mark.parametrize("extent", [0.15, 0.3])
def test_shapes_are_recognised_in_any_orientation(shape, degrees, extent):
    # The model may draw shapes rotated: the rules must not depend on the canonical pose.
    angle = math.radians(degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = (unit_outline(shape) @ rotation.T * extent + 0.5) * 512
    mask = Image.new("L", (512, 512), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in points.tolist()], fill=255)
    mask = np.asarray(mask.reduce(4)) >= 128
    assert classify_shape(shape_features(mask)) == shape


def test_arrays_are_accepted_in_either_range():
    image = render(scene_for_index(0, 0)[0], 64)
    as_uint8 = np.asarray(image)
    assert np.array_equal(to_array(as_uint8), to_array(image))
    assert np.allclose(to_array(as_uint8 / 255.0), to_array(image), atol=1e-3)
    with pytest.raises(ValueError):
        to_array(np.zeros((8, 8)))


def test_sharpness_drops_with_blur():
    images = [render(scene_for_index(3, i)[0], 128) for i in range(6)]
    blurred = [image.filter(ImageFilter.GaussianBlur(1.5)) for image in images]
    assert sharpness(blurred) < 0.5 * sharpness(images)
    for sharp, soft in zip(images, blurred):
        assert high_frequency_ratio(soft) < high_frequency_ratio(sharp)
    flat = Image.new("RGB", (64, 64), (128, 128, 128))
    assert laplacian_variance(flat) == 0.0
    assert high_frequency_ratio(flat) == 0.0


def test_score_reports_per_category_and_overall():
    data = samples(12)
    images = [render(scene, 96) for scene, _ in data]
    captions = [c for _, c in data]
    captions[0] = next(wrong for _, wrong in perturbations(captions[0]))  # one failure
    result = score(images, captions)
    assert result["count"] == {c: 2 for c in CATEGORIES}
    assert result["per_category"][captions[0].category] == 0.5
    assert result["overall"] == pytest.approx(1 - 0.5 / 6)
    assert result["overall_images"] == pytest.approx(11 / 12)
    assert result["sharpness"] > 0
    with pytest.raises(ValueError):
        score(images, captions[:-1])


def test_a_dark_uint8_image_is_not_rescaled():
    dark = np.ones((8, 8, 3), dtype=np.uint8)
    assert to_array(dark).max() == 1.0
