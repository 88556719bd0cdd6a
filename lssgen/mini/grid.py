"""Prompt-by-column image grids (the demo's and the evaluation's samples), saved atomically."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from lssgen.images import png_bytes
from lssgen_core.atomic import write_bytes_atomic

_VERDICTS = {True: ("evaluator: pass", "darkgreen"), False: ("evaluator: fail", "darkred")}


def prompt_grid(
    prompts: Sequence[str],
    columns: Sequence[tuple[str, Sequence[Image.Image], Sequence[bool | None] | None]],
    *,
    pad: int = 6,
    text_width: int = 200,
) -> Image.Image:
    """A row per prompt (its text on the left) and a column per (header, images, verdicts);
    each image has the evaluator's verdict under it where one is given (None: no verdict)."""
    font = ImageFont.load_default()
    line = 14
    width, height = columns[0][1][0].size
    cell_height = height + line + pad
    grid = Image.new(
        "RGB",
        (pad + text_width + len(columns) * (width + pad), 2 * line + len(prompts) * cell_height),
        "white",
    )
    draw = ImageDraw.Draw(grid)
    for c, (header, images, verdicts) in enumerate(columns):
        x = pad + text_width + c * (width + pad)
        draw.text((x, 4), header, fill="black", font=font)
        for r, image in enumerate(images):
            y = 2 * line + r * cell_height
            grid.paste(image.convert("RGB"), (x, y))
            verdict = None if verdicts is None else verdicts[r]
            if verdict is not None:
                label, colour = _VERDICTS[verdict]
                draw.text((x, y + height + 1), label, fill=colour, font=font)
    for r, prompt in enumerate(prompts):
        y = 2 * line + r * cell_height
        for k, text in enumerate(textwrap.wrap(prompt, width=30)):
            draw.text((pad, y + k * line), text, fill="black", font=font)
    return grid


def save_png(image: Image.Image, path: str | os.PathLike[str]) -> None:
    """Write `image` as a PNG atomically (temp file, then rename)."""

    write_bytes_atomic(path, png_bytes(image))
