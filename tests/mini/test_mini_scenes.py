"""Scenes: every sample is true to its caption, with margins; the dataset API is deterministic;
the palette keeps objects and backgrounds apart."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lssgen.mini.captions import CATEGORIES, perturbations
from lssgen.mini.palette import BACKGROUND_TONES, COLOURS, SEGMENT_THRESHOLD
from lssgen.mini.rules import relations_between
from lssgen.mini.scenes import (
    AXES,
    EDGE_MARGIN,
    MIN_TEXTURE_CONTRAST,
    OBJECT_GAP,
    RELATION_MAX_ANGLE,
    RELATION_MIN_OFFSET,
    Grammar,
    sample_scene,
    satisfies,
    scene_for_index,
)

seeds = st.integers(0, 2**32 - 1)
indices = st.integers(0, 10**9)


@settings(max_examples=300, deadline=None)
@given(seeds, indices)
def test_every_sample_is_true_to_its_caption_and_to_no_single_edit_of_it(seed, index):
    scene, caption = scene_for_index(seed, index)
    assert caption.category == CATEGORIES[index % len(CATEGORIES)]
    assert satisfies(scene, caption)
    for kind, wrong in perturbations(caption):
        assert not satisfies(scene, wrong), (kind, caption.text, wrong.text)


@settings(max_examples=300, deadline=None)
@given(seeds, indices)
def test_the_scene_holds_exactly_the_captioned_objects(seed, index):
    scene, caption = scene_for_index(seed, index)
    expected = [(p.shape, p.colour) for p in caption.objects for _ in range(p.count)]
    actual = [(o.shape, o.colour) for o in scene.objects]
    # Colourless phrases leave the colour free; the shapes and the count are exact.
    assert [s for s, _ in actual] == [s for s, _ in expected]
    assert all(c is None or c == a for (_, c), (_, a) in zip(expected, actual))
    assert 1 <= len(scene.objects) <= 4


@settings(max_examples=300, deadline=None)
@given(seeds, indices)
def test_objects_are_inside_the_frame_and_apart(seed, index):
    scene, _ = scene_for_index(seed, index)
    for obj in scene.objects:
        left, top, right, bottom = obj.bounds()
        assert min(left, top) >= EDGE_MARGIN - 1e-9
        assert max(right, bottom) <= 1 - EDGE_MARGIN + 1e-9
    for a, b in itertools.combinations(scene.objects, 2):
        # Bounding circles apart by the gap: no overlap, and same colours never touch.
        assert math.dist(a.center, b.center) >= a.radius + b.radius + OBJECT_GAP - 1e-9


@settings(max_examples=200, deadline=None)
@given(seeds, st.integers(0, 10**8).map(lambda i: 6 * i + CATEGORIES.index("position")))
def test_relations_hold_with_a_clear_margin(seed, index):
    scene, caption = scene_for_index(seed, index)
    subject, reference = scene.objects
    offset = np.subtract(subject.center, reference.center)
    axis = np.array(AXES[caption.relation])
    along, across = offset @ axis, abs(offset @ axis[::-1])
    assert along >= RELATION_MIN_OFFSET
    assert math.atan2(across, along) <= RELATION_MAX_ANGLE + 1e-9
    # Only the captioned relation holds: the perpendicular ones are clearly false too.
    assert relations_between(subject.detection(), reference.detection()) == {caption.relation}


def test_the_dataset_is_deterministic_and_indices_are_independent():
    assert scene_for_index(7, 123) == scene_for_index(7, 123)
    assert scene_for_index(7, 123) != scene_for_index(7, 124)
    assert scene_for_index(7, 123) != scene_for_index(8, 123)
    first = sample_scene(np.random.default_rng(5), "counting")
    assert sample_scene(np.random.default_rng(5), "counting") == first
    with pytest.raises(ValueError):
        scene_for_index(-1, 0)


def test_a_prefix_of_the_dataset_is_balanced_over_categories():
    categories = [scene_for_index(0, i)[1].category for i in range(60)]
    assert all(categories.count(c) == 10 for c in CATEGORIES)


def test_a_restricted_grammar_is_obeyed():
    grammar = Grammar(
        shapes=("circle", "square"),
        colours=("red", "blue"),
        sizes=("large",),
        counts=(2,),
        relations=("above",),
        categories=("counting", "position", "color_attr"),
        backgrounds=("plain",),
    )
    for index in range(60):
        scene, caption = scene_for_index(3, index, grammar)
        assert caption.category in grammar.categories
        assert scene.background.kind == "plain"
        assert caption.relation in (None, "above")
        assert all(p.count in (1, 2) for p in caption.objects)
        for obj in scene.objects:
            assert (obj.shape, obj.colour, obj.size) in itertools.product(
                grammar.shapes, grammar.colours, grammar.sizes
            )


@pytest.mark.parametrize(
    "changes",
    [{"shapes": ("circle",)}, {"colours": ("red",)}, {"counts": (5,)}, {"categories": ()}],
)
def test_a_grammar_refuses_what_it_cannot_sample(changes):
    with pytest.raises(ValueError):
        Grammar(**changes)


def test_object_colours_are_far_apart():
    for a, b in itertools.combinations(COLOURS.values(), 2):
        assert math.dist(a, b) >= 100


def test_backgrounds_and_their_blends_stay_far_from_every_object_colour():
    palette = np.array(list(COLOURS.values()), dtype=float)
    blend = np.linspace(0.0, 1.0, 33)[:, None]
    for a, b in itertools.product(BACKGROUND_TONES.values(), repeat=2):
        line = (1 - blend) * np.array(a) + blend * np.array(b)
        nearest = np.linalg.norm(line[:, None] - palette[None], axis=-1).min()
        assert nearest >= 105 > SEGMENT_THRESHOLD + 25


def test_textures_use_two_visibly_different_tones():
    for index in range(200):
        background = scene_for_index(11, index)[0].background
        distance = math.dist(BACKGROUND_TONES[background.tone], BACKGROUND_TONES[background.tone2])
        assert (background.kind == "plain") == (distance == 0)
        assert background.kind == "plain" or distance >= MIN_TEXTURE_CONTRAST
