"""Captions of lssgen-mini: the structured form, its text, and a parser for that text.

A `Caption` is the structured prompt the grammar produced: a GenEval category, one or two object
phrases and, for the position category, a relation. `caption.text` is its canonical English
(`str(caption)` too); `parse_caption(text)` reads that English back to the same `Caption`, so
datasets can store either form. The six categories follow GenEval:

=============  ================================================  ===============================
category       example                                           passes when the image has
=============  ================================================  ===============================
single_object  "a circle"                                        a circle (any colour)
two_object     "a circle and a square"                           a circle and a square
counting       "three green triangles"                           exactly three green triangles
colors         "a red circle"                                    a red circle
position       "a red circle to the left of a blue square"       both, in that relation
color_attr     "a red circle and a blue square"                  both, each in its own colour
=============  ================================================  ===============================

Colours are optional in every phrase: a phrase without one matches its shape in any colour (the
grammar leaves them out of single_object and two_object captions, as GenEval does, unless told
otherwise). The rules themselves live in `lssgen.mini.rules`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from lssgen.mini.palette import COLOUR_NAMES
from lssgen.mini.shapes import SHAPES

CATEGORIES: tuple[str, ...] = (
    "single_object",
    "two_object",
    "counting",
    "colors",
    "position",
    "color_attr",
)
# Relation name (as in GenEval) -> the words the captions use for it.
RELATION_WORDS: dict[str, str] = {
    "left of": "to the left of",
    "right of": "to the right of",
    "above": "above",
    "below": "below",
}
RELATIONS: tuple[str, ...] = tuple(RELATION_WORDS)
OPPOSITE: dict[str, str] = {
    "left of": "right of",
    "right of": "left of",
    "above": "below",
    "below": "above",
}
NUMBER_WORDS: tuple[str, ...] = ("one", "two", "three", "four")
MAX_COUNT = len(NUMBER_WORDS)

_ONE_PHRASE = {"single_object", "colors", "counting"}
# GenEval writes its prompts "a photo of ..."; the parser and the training captions know these.
PREFIXES = ("a photo of ", "an image of ", "a picture of ")


def _check_shape(_: object, __: attrs.Attribute, value: str) -> None:
    if value not in SHAPES:
        raise ValueError(f"unknown shape {value!r}; expected one of {SHAPES}")


def _check_colour(_: object, __: attrs.Attribute, value: str | None) -> None:
    if value is not None and value not in COLOUR_NAMES:
        raise ValueError(f"unknown colour {value!r}; expected one of {COLOUR_NAMES}")


@attrs.frozen
class Phrase:
    """One object phrase: `count` objects of `shape`, in `colour` (None: any colour)."""

    shape: str = attrs.field(validator=_check_shape)
    colour: str | None = attrs.field(default=None, validator=_check_colour)
    count: int = attrs.field(default=1, validator=attrs.validators.in_(range(1, MAX_COUNT + 1)))

    def words(self, numbered: bool = False) -> str:
        """ "a red circle", "an orange star", or with `numbered` "one red circle", "three stars"."""
        noun = self.shape if self.count == 1 else self.shape + "s"
        words = noun if self.colour is None else f"{self.colour} {noun}"
        if numbered or self.count > 1:
            return f"{NUMBER_WORDS[self.count - 1]} {words}"
        return ("an " if words[0] in "aeiou" else "a ") + words


def _phrases(objects: Iterable[Phrase]) -> tuple[Phrase, ...]:
    return tuple(objects)


@attrs.frozen
class Caption:
    """A structured caption. Position captions read `objects[0] <relation> objects[1]`."""

    category: str = attrs.field(validator=attrs.validators.in_(CATEGORIES))
    objects: tuple[Phrase, ...] = attrs.field(converter=_phrases)
    relation: str | None = None

    def __attrs_post_init__(self) -> None:
        expected = 1 if self.category in _ONE_PHRASE else 2
        if len(self.objects) != expected:
            raise ValueError(f"a {self.category} caption has {expected} phrase(s)")
        if (self.category == "position") != (self.relation is not None):
            raise ValueError("a relation is given exactly for position captions")
        if self.relation is not None and self.relation not in RELATIONS:
            raise ValueError(f"unknown relation {self.relation!r}; expected one of {RELATIONS}")
        if self.category != "counting" and any(p.count != 1 for p in self.objects):
            raise ValueError("only counting captions have counts other than one")
        if self.category in ("single_object", "two_object") and any(
            p.colour is not None for p in self.objects
        ):
            # With a colour these read as colors / color_attr captions: keep text and category 1:1.
            raise ValueError(f"{self.category} phrases name no colour")
        if self.category in ("colors", "color_attr") and any(
            p.colour is None for p in self.objects
        ):
            raise ValueError(f"{self.category} phrases name their colour")

    @property
    def text(self) -> str:
        if self.category == "counting":
            return self.objects[0].words(numbered=True)
        phrases = [p.words() for p in self.objects]
        if self.relation is not None:
            return f"{phrases[0]} {RELATION_WORDS[self.relation]} {phrases[1]}"
        return " and ".join(phrases)

    def __str__(self) -> str:
        return self.text


def _parse_phrase(words: str) -> tuple[Phrase, bool]:
    """A phrase and whether it was numbered ("one circle", "three stars")."""
    tokens = words.split()
    if len(tokens) not in (2, 3):
        raise ValueError(f"cannot read object phrase {words!r}")
    determiner, *rest = tokens
    if determiner in ("a", "an"):
        count, numbered = 1, False
    elif determiner in NUMBER_WORDS:
        count, numbered = NUMBER_WORDS.index(determiner) + 1, True
    elif determiner.isdigit() and 1 <= int(determiner) <= MAX_COUNT:
        count, numbered = int(determiner), True
    else:
        raise ValueError(f"phrase {words!r} starts with neither an article nor a number word")
    colour = rest[0] if len(rest) == 2 else None
    noun = rest[-1]
    shape = noun[:-1] if count > 1 and noun.endswith("s") else noun
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {noun!r} in {words!r}")
    if colour is not None and colour not in COLOUR_NAMES:
        raise ValueError(f"unknown colour {colour!r} in {words!r}")
    return Phrase(shape, colour, count), numbered


def parse_caption(text: str) -> Caption:
    """Read a caption written by the grammar (`Caption.text`) back to its structured form.

    Tolerates case, surrounding spaces, a trailing full stop, a GenEval-style "a photo of" prefix,
    "left of" / "right of" without "to the", and digits for counts. Raises ValueError otherwise.
    """
    clean = " ".join(text.lower().strip().rstrip(".").split())
    for prefix in PREFIXES:
        clean = clean.removeprefix(prefix)
    relation_pattern = r" (to the left of|to the right of|left of|right of|above|below) "
    parts = re.split(relation_pattern, clean)
    if len(parts) == 3:
        relation = parts[1].removeprefix("to the ")
        subject, reference = (_parse_phrase(part)[0] for part in (parts[0], parts[2]))
        return Caption("position", (subject, reference), relation)
    if len(parts) != 1:
        raise ValueError(f"cannot read caption {text!r}: more than one relation")
    halves = clean.split(" and ")
    if len(halves) == 2:
        pair = tuple(_parse_phrase(half)[0] for half in halves)
        coloured = any(p.colour is not None for p in pair)
        return Caption("color_attr" if coloured else "two_object", pair)
    if len(halves) != 1:
        raise ValueError(f"cannot read caption {text!r}: more than two objects")
    phrase, numbered = _parse_phrase(clean)
    if numbered:
        return Caption("counting", (phrase,))
    return Caption("single_object" if phrase.colour is None else "colors", (phrase,))


def perturbations(caption: Caption) -> tuple[tuple[str, Caption], ...]:
    """Every single-edit variant of `caption`, each tagged with its kind of edit:

    "shape" (one phrase's shape replaced), "colour" (one named colour replaced), "swap" (the two
    named colours exchanged), "count" (a count one up or down) and "relation" (the relation
    replaced, the opposite one first). Variants that would make both phrases identical are left
    out. Whether a variant is false for a given scene is for `lssgen.mini.scenes.satisfies` to say:
    these are candidates for wrong-caption checks, not guaranteed negatives.
    """
    variants: list[tuple[str, Caption]] = []

    def add(
        kind: str, objects: tuple[Phrase, ...], relation: str | None = caption.relation
    ) -> None:
        if len(objects) == 2 and objects[0] == objects[1]:
            return
        variants.append((kind, Caption(caption.category, objects, relation)))

    for i, phrase in enumerate(caption.objects):
        for shape in SHAPES:
            if shape != phrase.shape:
                add("shape", _replace(caption.objects, i, attrs.evolve(phrase, shape=shape)))
        if phrase.colour is not None:
            for colour in COLOUR_NAMES:
                if colour != phrase.colour:
                    add("colour", _replace(caption.objects, i, attrs.evolve(phrase, colour=colour)))
        if caption.category == "counting":
            for count in (phrase.count - 1, phrase.count + 1):
                if 1 <= count <= MAX_COUNT:
                    add("count", _replace(caption.objects, i, attrs.evolve(phrase, count=count)))
    first, *rest = caption.objects
    if rest and first.colour is not None and rest[0].colour not in (None, first.colour):
        second = rest[0]
        add(
            "swap",
            (attrs.evolve(first, colour=second.colour), attrs.evolve(second, colour=first.colour)),
        )
    if caption.relation is not None:
        opposite = OPPOSITE[caption.relation]
        for relation in (
            opposite,
            *(r for r in RELATIONS if r not in (caption.relation, opposite)),
        ):
            add("relation", caption.objects, relation)
    return tuple(variants)


def _replace(phrases: tuple[Phrase, ...], index: int, phrase: Phrase) -> tuple[Phrase, ...]:
    return (*phrases[:index], phrase, *phrases[index + 1 :])
