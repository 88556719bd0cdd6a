"""Turn a benchmark results JSON into the README table and a PNG chart.

    python benchmarks/report.py benchmarks/results/cpu.json   # rewrites the README section

The conftest calls this at the end of every benchmark session; run it by hand after editing the
layout. The chart is drawn with Pillow (matplotlib is not a dependency).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

README = Path(__file__).parent / "README.md"
LSS_MODES = ("resnet", "latent", "pixel")
ALL_MODES = ("plain", *LSS_MODES)
PARTS = ("denoiser", "text", "vae_decode", "upsample", "renoise", "plan", "other")
COLOURS = {
    "denoiser": (70, 110, 180),
    "text": (150, 150, 150),
    "vae_decode": (110, 170, 90),
    "upsample": (230, 140, 40),
    "renoise": (200, 60, 60),
    "plan": (150, 80, 170),
    "other": (210, 210, 210),
}
MODE_COLOURS = {"resnet": (230, 140, 40), "latent": (70, 110, 180), "pixel": (110, 170, 90)}


def write_results(data: Mapping[str, Any], folder: Path, profile: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{profile}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=float) + "\n")
    return path


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _mode_row(kind: str, mode: str, entry: Mapping[str, Any]) -> str:
    cells = [
        kind,
        mode,
        _fmt(entry["wall_min_s"], ".2f"),
        _fmt(entry.get("speedup"), ".2f"),
        _fmt(entry.get("paired_speedup"), ".2f"),
        _fmt(entry.get("paired_over_predicted"), ".1%"),
        _fmt(entry.get("predicted_end_to_end"), ".2f"),
        _fmt(entry.get("paired_over_end_to_end"), ".1%"),
        _fmt(entry.get("denoiser_speedup"), ".2f"),
        _fmt(entry["machinery_share"] if mode != "plain" else None, ".2%"),
        _fmt(entry.get("scaler_per_full_step"), ".1%"),
    ]
    return "| " + " | ".join(cells) + " |"


def _breakdown_table(model: Mapping[str, Any]) -> list[str]:
    lines = [
        "| mode | " + " | ".join(PARTS) + " |",
        "|---|" + "---:|" * len(PARTS),
    ]
    for mode in ALL_MODES:
        parts = model["modes"][mode]["breakdown_median_s"]
        lines.append(f"| {mode} | " + " | ".join(_fmt(parts[p], ".3f") for p in PARTS) + " |")
    return lines


def _model_notes(kind: str, model: Mapping[str, Any]) -> list[str]:
    steps = model["step_seconds"]
    small, large = sorted(steps, key=int)[0], sorted(steps, key=int)[-1]
    flops = model["flops"]
    calibration = model["calibration"] or {}
    by_steps = ", ".join(f"N={n}: {s:.2f}x" for n, s in model["predicted_speedup_by_steps"].items())
    params = flops["parameters"]
    return [
        f"**{kind}**: {model['notes']['denoiser']} ({params['denoiser'] / 1e6:.1f}M parameters); "
        f"VAE widths {tuple(model['notes']['vae_widths'])} ({params['vae'] / 1e6:.2f}M); "
        f"upsampler {params['upsampler'] / 1e6:.2f}M.",
        "",
        f"- One denoiser step: {steps[small] * 1e3:.0f} ms at {small} tokens, "
        f"{steps[large] * 1e3:.0f} ms at {large}: time ratio {model['step_time_ratio']:.2f} "
        f"against a FLOP ratio of {model['step_flop_ratio']:.2f}. Calibrated: "
        f"{_fmt(calibration.get('flops_per_second', float('nan')) / 1e9, '.0f')} GFLOP/s plus "
        f"{_fmt(calibration.get('overhead_seconds', float('nan')) * 1e3, '.1f')} ms per call.",
        f"- Predicted speed-up (FLOP model) by step count: {by_steps}.",
        f"- FLOPs relative to one full-resolution step: upsampler "
        f"{flops['upsampler_per_full_step']:.1%}, pixel round trip "
        f"{flops['pixel_round_trip_per_full_step']:.1%}, final decode "
        f"{flops['final_decode_per_full_step']:.1%}.",
        *_upsampler_line(model),
        "",
        "Median seconds per part of one generation:",
        "",
        *_breakdown_table(model),
        "",
    ]


def _upsampler_line(model: Mapping[str, Any]) -> list[str]:
    alone = model.get("upsampler_alone") or {}
    if not alone:
        return []
    timings = "; ".join(
        f"{memory_format} {entry['min_s'] * 1e3:.1f} ms ({entry['min_per_full_step']:.1%} of a "
        "full-resolution step)"
        for memory_format, entry in alone.items()
    )
    return [f"- Upsampler alone at the first-stage size (min of 30 calls): {timings}."]


def markdown(data: Mapping[str, Any], chart: str) -> str:
    machine = data["machine"]
    device = machine.get("gpu") or machine["cpu"]
    lines = [
        f"Measured on {device} ({machine['cpu_count']} cores, {machine['torch_threads']} torch "
        f"threads, {machine['dtype']}, torch {machine['torch']}); "
        f"{data['rounds']} timed rounds after {data['warmup_rounds']} warm-up per case, "
        f"{data.get('paired_rounds', data['rounds'])} paired rounds; the "
        f"suite took {data['suite_seconds'] / 60:.1f} min. 1-minute load average after each "
        f"case: {_case_loads(data)} (2 = both cores busy; more means other processes shared "
        f"the CPU). Reproduce with `{data['command']}`.",
        "",
        "| model | mode | wall min (s) | plain / LSS (min of rounds) | plain / LSS (paired) "
        "| paired / predicted (FLOP model) | predicted end-to-end (calibrated) "
        "| paired / end-to-end | denoiser-only speed-up | LSS machinery | scaler / full-res "
        "step |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, model in data["models"].items():
        for mode in ALL_MODES:
            lines.append(_mode_row(kind, mode, model["modes"][mode]))
    lines += ["", "Denoiser-only predictions (the same plan for every mode):", ""]
    for kind, model in data["models"].items():
        lines.append(
            f"- {kind}: FLOP model {model['predicted_speedup']:.2f}x, calibrated with the "
            f"measured per-call overhead {_fmt(model['calibrated_speedup'], '.2f')}x."
        )
    lines.append("")
    for kind, model in data["models"].items():
        lines += _model_notes(kind, model)
    lines += [f"![plain / LSS speed-ups and time per part]({chart})", ""]
    return "\n".join(lines)


def _case_loads(data: Mapping[str, Any]) -> str:
    loads = [
        model["modes"][mode].get("load_average_1min")
        for model in data["models"].values()
        for mode in ALL_MODES
    ]
    known = [x for x in loads if x is not None]
    return f"{min(known):.2f} to {max(known):.2f}" if known else "unknown"


def update_readme(text: str, profile: str, readme: Path = README) -> None:
    """Replace the generated block of ``profile`` in the README (appended if absent)."""
    start, end = f"<!-- results:{profile}:start -->", f"<!-- results:{profile}:end -->"
    block = f"{start}\n{text}\n{end}"
    current = readme.read_text() if readme.exists() else ""
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current)
    else:
        updated = current.rstrip("\n") + f"\n\n## Results: {profile}\n\n{block}\n"
    readme.write_text(updated)


# --------------------------------------------------------------------------------------------
# Chart
# --------------------------------------------------------------------------------------------

_WIDTH, _ROW, _MARGIN = 1100, 260, 20


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _headline(entry: Mapping[str, Any]) -> float:
    """The paired ratio when the paired case ran (drift-free), else the min-of-rounds one."""
    paired = entry.get("paired_speedup")
    return float(paired if paired is not None else entry["speedup"])


def _speedup_panel(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], model: Mapping[str, Any]
) -> None:
    left, top, right, bottom = box
    font = _font(13)
    values = [_headline(model["modes"][m]) for m in LSS_MODES]
    predictions = [model["predicted_speedup"], model["calibrated_speedup"]]
    top_value = max([2.0, *values, *[p for p in predictions if not math.isnan(p)]]) * 1.1
    base = bottom - 20

    def y(value: float) -> float:
        return base - (base - top - 20) * value / top_value

    draw.line((left + 30, base, right, base), fill=(0, 0, 0))
    for tick in range(int(top_value) + 1):
        draw.text((left, y(tick) - 7), f"{tick}x", fill=(0, 0, 0), font=font)
        draw.line((left + 30, y(tick), right, y(tick)), fill=(235, 235, 235))
    draw.line((left + 30, y(1), right, y(1)), fill=(120, 120, 120))
    slot = (right - left - 40) / len(LSS_MODES)
    for i, (mode, value) in enumerate(zip(LSS_MODES, values)):
        x0 = left + 40 + i * slot + slot * 0.2
        x1 = x0 + slot * 0.6
        draw.rectangle((x0, y(value), x1, base), fill=MODE_COLOURS[mode])
        # Inside the bar: just above it the prediction lines would run through the label.
        draw.text((x0 + 4, y(value) + 6), f"{value:.2f}x", fill=(255, 255, 255), font=font)
        draw.text((x0, base + 3), mode, fill=(0, 0, 0), font=font)
    styles = (("FLOP model", (0, 0, 0), 0), ("calibrated", (200, 0, 0), 6))
    caption = []
    for (label, colour, dash), value in zip(styles, predictions):
        if math.isnan(value):
            continue
        _hline(draw, left + 30, right, y(value), colour, dash)
        caption.append(f"{label} {value:.2f}x")
    # Predictions are captioned above the panel: the two lines are often a hair apart.
    draw.text((left + 40, top - 18), "predicted: " + ", ".join(caption), fill=0, font=font)


def _hline(
    draw: ImageDraw.ImageDraw, x0: float, x1: float, y: float, colour: Any, dash: int
) -> None:
    if not dash:
        draw.line((x0, y, x1, y), fill=colour, width=2)
        return
    x = x0
    while x < x1:
        draw.line((x, y, min(x + dash, x1), y), fill=colour, width=2)
        x += 2 * dash


def _breakdown_panel(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], model: Mapping[str, Any]
) -> None:
    left, top, right, bottom = box
    font = _font(13)
    longest = max(model["modes"][m]["wall_median_s"] for m in ALL_MODES)
    scale = (right - left - 140) / longest
    bar = (bottom - top - 30) / len(ALL_MODES)
    for i, mode in enumerate(ALL_MODES):
        entry = model["modes"][mode]
        y0 = top + 10 + i * bar
        draw.text((left, y0 + bar * 0.25), mode, fill=(0, 0, 0), font=font)
        x = left + 60.0
        for part in PARTS:
            width = max(0.0, entry["breakdown_median_s"][part]) * scale
            draw.rectangle((x, y0 + 2, x + width, y0 + bar - 4), fill=COLOURS[part])
            x += width
        draw.text((x + 5, y0 + bar * 0.25), f"{entry['wall_median_s']:.2f} s", font=font, fill=0)


def _legend(draw: ImageDraw.ImageDraw, left: int, top: int) -> None:
    font = _font(13)
    x = left
    for part in PARTS:
        draw.rectangle((x, top, x + 14, top + 14), fill=COLOURS[part])
        draw.text((x + 18, top), part, fill=(0, 0, 0), font=font)
        x += 30 + int(draw.textlength(part, font=font))


def chart(data: Mapping[str, Any], path: Path) -> None:
    models = data["models"]
    height = 60 + _ROW * len(models)
    image = Image.new("RGB", (_WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    machine = data["machine"]
    title = (
        f"LSS speed-up (plain / LSS, paired rounds) and median time per part - "
        f"{machine.get('gpu') or machine['cpu']}, {machine['dtype']}"
    )
    draw.text((_MARGIN, 8), title, fill=(0, 0, 0), font=_font(15))
    _legend(draw, _WIDTH // 2 - 40, 34)
    draw.text((_MARGIN, 34), "black: FLOP model, red dashed: calibrated", fill=0, font=_font(13))
    for row, (kind, model) in enumerate(models.items()):
        top = 55 + row * _ROW
        draw.text((_MARGIN, top), kind, fill=(0, 0, 0), font=_font(15))
        _speedup_panel(draw, (_MARGIN, top + 40, _WIDTH // 2 - 60, top + _ROW - 10), model)
        _breakdown_panel(draw, (_WIDTH // 2 - 40, top + 20, _WIDTH - _MARGIN, top + _ROW), model)
    image.save(path)


def render(path: Path, *, update_readme_file: bool = True, readme: Path = README) -> None:
    """Chart next to the JSON; with ``update_readme_file``, the README block too."""
    data = json.loads(path.read_text())
    profile = path.stem
    picture = path.with_suffix(".png")
    chart(data, picture)
    if update_readme_file:
        relative = picture.resolve().relative_to(readme.resolve().parent)
        update_readme(markdown(data, str(relative)), profile, readme)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="results/<profile>.json files")
    parser.add_argument("--no-readme", action="store_true", help="only draw the charts")
    args = parser.parse_args(argv)
    for path in args.results:
        render(path, update_readme_file=not args.no_readme)


if __name__ == "__main__":
    main()
