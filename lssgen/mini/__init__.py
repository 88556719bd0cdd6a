"""lssgen-mini's data: procedural scenes with exact captions, and their renderer.

The demo model "lssgen-mini" is trained on these scenes and judged by the rule-based evaluator in
`lssgen.mini.scoring` (imported separately: it needs scipy). Typical use::

    from lssgen.mini import render, scene_for_index
    from lssgen.mini.scoring import check, score

    scene, caption = scene_for_index(seed=0, index=17)  # deterministic, random access
    image = render(scene, 256)  # PIL RGB, anti-aliased
    prompt = caption.text  # e.g. "a red circle to the left of a blue star"
    assert check(image, caption).passed

Modules, one concept each: `palette` (named colours, background tones), `shapes` (geometry),
`captions` (structured captions, text, parser), `rules` (when objects satisfy a caption),
`scenes` (scene model and sampling), `render` (scene to image), `scoring` (image to verdict).
"""

from lssgen.mini.captions import (
    CATEGORIES,
    RELATIONS,
    Caption,
    Phrase,
    parse_caption,
    perturbations,
)
from lssgen.mini.palette import BACKGROUND_TONES, COLOUR_NAMES, COLOURS
from lssgen.mini.render import render
from lssgen.mini.rules import CheckResult, Detection, judge
from lssgen.mini.scenes import (
    GRAMMAR,
    Background,
    Grammar,
    Scene,
    SceneObject,
    sample_scene,
    satisfies,
    scene_for_index,
)
from lssgen.mini.shapes import SHAPES, SIZES

__all__ = [
    "BACKGROUND_TONES",
    "CATEGORIES",
    "COLOURS",
    "COLOUR_NAMES",
    "GRAMMAR",
    "RELATIONS",
    "SHAPES",
    "SIZES",
    "Background",
    "Caption",
    "CheckResult",
    "Detection",
    "Grammar",
    "Phrase",
    "Scene",
    "SceneObject",
    "judge",
    "parse_caption",
    "perturbations",
    "render",
    "sample_scene",
    "satisfies",
    "scene_for_index",
]
