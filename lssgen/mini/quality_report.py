"""Pictures of an `lssgen evaluate` run: the accuracy / speed chart and a sample grid (Pillow)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from lssgen.mini.grid import prompt_grid, save_png

MODE_COLOURS = {
    None: (60, 60, 60),
    "resnet": (230, 140, 40),
    "latent": (70, 110, 180),
    "pixel": (110, 170, 90),
}
_SIZE, _MARGIN = (900, 560), 70


def _speed(row: Mapping[str, Any]) -> float:
    """The CPU-time speed-up where recorded (sound with one thread on a busy machine, see
    `lssgen.mini.timing`), else the wall-clock one of older results."""
    return float(row.get("speedup_cpu") or row["speedup"])


def chart(results: Mapping[str, Any], path: Path) -> None:
    """Overall accuracy against measured speed-up, one labelled point per configuration; the
    resnet start_sigma sweep joined by a line; plain's accuracy and the 1.5x target as guides."""
    rows = results["configs"]
    image = Image.new("RGB", _SIZE, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    width, height = _SIZE
    left, right, top, bottom = _MARGIN, width - 30, 50, height - 50
    speeds = [_speed(r) for r in rows]
    x_low, x_high = min(0.8, *speeds) - 0.05, max(2.0, *speeds) + 0.1
    accuracies = [r["overall"] for r in rows] + [results["renders"]["overall"]]
    y_low = max(0.0, min(accuracies) - 0.1)

    def point(speed: float, accuracy: float) -> tuple[float, float]:
        x = left + (right - left) * (speed - x_low) / (x_high - x_low)
        y = bottom - (bottom - top) * (accuracy - y_low) / (1.0 - y_low)
        return x, y

    settings = results["settings"]
    draw.text(
        (left, 12),
        f"lssgen-mini, {results['count']} prompts, {settings['num_inference_steps']} steps: "
        "overall accuracy (rule-based evaluator) vs speed-up over plain",
        fill=0,
        font=font,
    )
    draw.rectangle((left, top, right, bottom), outline=(0, 0, 0))
    for tenth in range(int(y_low * 10), 11):
        y = point(x_low, tenth / 10)[1]
        draw.line((left, y, right, y), fill=(235, 235, 235))
        draw.text((left - 40, y - 7), f"{tenth * 10}%", fill=0, font=font)
    tick = x_low + 0.05
    while tick <= x_high:
        x = point(round(tick, 1), y_low)[0]
        draw.text((x - 12, bottom + 5), f"{round(tick, 1):g}x", fill=0, font=font)
        tick += 0.2
    plain = next(r for r in rows if r["mode"] is None)
    _, y_plain = point(1.0, plain["overall"])
    draw.line((left, y_plain, right, y_plain), fill=(150, 150, 150))
    draw.text((left + 4, y_plain - 16), "plain", fill=(100, 100, 100), font=font)
    x_target = point(1.5, y_low)[0]
    draw.line((x_target, top, x_target, bottom), fill=(200, 60, 60))
    draw.text((x_target + 4, top + 4), "1.5x", fill=(200, 60, 60), font=font)
    sweep = sorted((r for r in rows if r["mode"] == "resnet"), key=lambda r: r["start_sigma"])
    if len(sweep) > 1:
        draw.line(
            [point(_speed(r), r["overall"]) for r in sweep], fill=MODE_COLOURS["resnet"], width=2
        )
    # The baseline to beat: plain at N steps and at fewer steps, as one curve.
    baseline = sorted((r for r in rows if r["mode"] is None), key=_speed)
    if len(baseline) > 1:
        draw.line(
            [point(_speed(r), r["overall"]) for r in baseline], fill=MODE_COLOURS[None], width=2
        )
    for row in rows:
        x, y = point(_speed(row), row["overall"])
        colour = MODE_COLOURS.get(row["mode"], (0, 0, 0))
        if "overall_interval" in row:  # the 95% interval as an error bar
            low, high = row["overall_interval"]
            draw.line((x, point(1.0, max(low, y_low))[1], x, point(1.0, high)[1]), fill=colour)
        draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=colour)
        draw.text((x + 7, y - 7), row["name"], fill=colour, font=font)
    legend = (
        "grey: plain at N and fewer steps; orange: resnet upsampler (line: start_sigma sweep); "
        "blue: latent; green: pixel; bars: 95% intervals"
    )
    draw.text((left, height - 22), legend, fill=0, font=font)
    save_png(image, path)


def sample_grid(
    image_path: Callable[[Any, int], Path],
    configs: Sequence[Any],
    captions: Sequence[Any],
    path: Path,
) -> None:
    """The first prompts (one per category) under each configuration, side by side, judged;
    `image_path(config, i)` is where prompt i's image of a configuration lies."""
    # Lazy for start-up: scoring loads scipy (~0.5 s); only judging images needs it.
    from lssgen.mini.scoring import check

    columns = []
    for config in configs:
        images = []
        for i in range(len(captions)):
            with Image.open(image_path(config, i)) as image:
                images.append(image.convert("RGB"))
        verdicts = [check(image, caption).passed for image, caption in zip(images, captions)]
        columns.append((config.name, images, verdicts))
    save_png(prompt_grid([c.text for c in captions], columns), path)
