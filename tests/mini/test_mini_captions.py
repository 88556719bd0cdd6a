"""Captions: the text round trip, the parser's tolerance and errors, and the perturbations."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lssgen.mini import (
    CATEGORIES,
    COLOUR_NAMES,
    RELATIONS,
    Caption,
    Phrase,
    parse_caption,
    perturbations,
)
from lssgen.mini.shapes import SHAPES

shapes = st.sampled_from(SHAPES)
colours = st.sampled_from(COLOUR_NAMES)


@st.composite
def captions(draw) -> Caption:
    """Any valid caption, not only those the grammar samples (e.g. colourless positions)."""
    category = draw(st.sampled_from(CATEGORIES))
    if category == "single_object":
        return Caption(category, (Phrase(draw(shapes)),))
    if category == "colors":
        return Caption(category, (Phrase(draw(shapes), draw(colours)),))
    if category == "counting":
        phrase = Phrase(draw(shapes), draw(st.none() | colours), draw(st.integers(1, 4)))
        return Caption(category, (phrase,))
    if category == "two_object":
        return Caption(category, (Phrase(draw(shapes)), Phrase(draw(shapes))))
    if category == "color_attr":
        return Caption(category, tuple(Phrase(draw(shapes), draw(colours)) for _ in range(2)))
    pair = tuple(Phrase(draw(shapes), draw(st.none() | colours)) for _ in range(2))
    return Caption(category, pair, draw(st.sampled_from(RELATIONS)))


@given(captions())
def test_parsing_the_text_gives_back_the_caption(caption):
    assert parse_caption(caption.text) == caption
    assert str(caption) == caption.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a circle", Caption("single_object", (Phrase("circle"),))),
        ("an orange star", Caption("colors", (Phrase("star", "orange"),))),
        ("one red square", Caption("counting", (Phrase("square", "red", 1),))),
        ("three green triangles", Caption("counting", (Phrase("triangle", "green", 3),))),
        ("a circle and a square", Caption("two_object", (Phrase("circle"), Phrase("square")))),
        (
            "a red circle and a blue square",
            Caption("color_attr", (Phrase("circle", "red"), Phrase("square", "blue"))),
        ),
        (
            "a red circle to the left of a blue square",
            Caption("position", (Phrase("circle", "red"), Phrase("square", "blue")), "left of"),
        ),
        (
            "a white star below a black circle",
            Caption("position", (Phrase("star", "white"), Phrase("circle", "black")), "below"),
        ),
    ],
)
def test_the_grammar_reads_as_documented(text, expected):
    assert expected.text == text
    assert parse_caption(text) == expected


def test_the_parser_tolerates_case_prefixes_digits_and_short_relations():
    caption = parse_caption("  A photo of a Red circle right of a blue  square. ")
    assert caption == parse_caption("a red circle to the right of a blue square")
    assert parse_caption("3 green triangles") == parse_caption("three green triangles")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a red",
        "five circles",
        "a magenta circle",
        "a hexagon",
        "the circle",
        "a circle and a square and a star",
        "a circle above a square below a star",
    ],
)
def test_the_parser_rejects_what_the_grammar_cannot_write(text):
    with pytest.raises(ValueError):
        parse_caption(text)


@pytest.mark.parametrize(
    ("category", "objects", "relation"),
    [
        ("colors", (Phrase("circle"),), None),  # colors names its colour
        ("single_object", (Phrase("circle", "red"),), None),  # that would be colors
        ("two_object", (Phrase("circle"),), None),  # two phrases
        ("position", (Phrase("circle"), Phrase("star")), None),  # needs a relation
        ("color_attr", (Phrase("circle", "red"), Phrase("star", "blue")), "above"),
        ("colors", (Phrase("circle", "red", 2),), None),  # counts only in counting
    ],
)
def test_inconsistent_captions_are_refused(category, objects, relation):
    with pytest.raises(ValueError):
        Caption(category, objects, relation)


def test_phrases_validate_their_words():
    with pytest.raises(ValueError):
        Phrase("hexagon")
    with pytest.raises(ValueError):
        Phrase("circle", "magenta")
    with pytest.raises(ValueError):
        Phrase("circle", "red", 5)


@given(captions())
def test_perturbations_are_valid_different_captions(caption):
    variants = perturbations(caption)
    for kind, variant in variants:
        assert kind in ("shape", "colour", "swap", "count", "relation")
        assert variant != caption
        assert variant.category == caption.category
        assert parse_caption(variant.text) == variant


def test_perturbations_cover_every_kind_of_edit():
    caption = parse_caption("a red circle to the left of a blue square")
    kinds = {kind for kind, _ in perturbations(caption)}
    assert kinds == {"shape", "colour", "swap", "relation"}
    first = next(v for kind, v in perturbations(caption) if kind == "relation")
    assert first.relation == "right of"  # the opposite relation comes first
    counting = {kind for kind, _ in perturbations(parse_caption("two red stars"))}
    assert counting == {"shape", "colour", "count"}
