"""`lssgen eval-upsampler`: score an upsampler against the other latent scalers on held-out images.

    lssgen eval-upsampler --vae DIR --upsampler DIR --images HELD_OUT_DIR --output DIR

Prints a table and writes DIR/eval.json and DIR/grid.png (target, low-res input, VAE
reconstruction and every method, side by side, one row per crop). Each scaling mode's relative
error is its calibration for ``start_sigma="auto"`` (printed with the level it gives);
``--calibrate`` stores them in the upsampler folder's config.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from lssgen.cli.common import (
    UsageError,
    add_vae_arguments,
    blame,
    held_out_comparison,
    image_folder,
    load_codec,
    non_negative_int,
    positive_int,
    required_flags,
    run_command,
)
from lssgen.dtypes import TRAINING_DTYPES
from lssgen.images import comparison_grid, png_bytes
from lssgen.training.calibrate import auto_levels, calibrations_from_comparison, format_levels
from lssgen.training.pairs import DOWNSAMPLE_MODES, SCALE_FACTOR
from lssgen.training.scaler_comparison import format_table
from lssgen_core.atomic import write_bytes_atomic, write_json_atomic
from lssgen_core.upsample.io import write_calibrations
from lssgen_core.upsample.network import LatentUpsampler

JSON_NAME = "eval.json"
GRID_NAME = "grid.png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    req = required_flags(parser)
    add_vae_arguments(parser, req)
    req.add_argument("--upsampler", required=True, help="upsampler folder to evaluate")
    req.add_argument("--images", required=True, help="held-out images (not used in training)")
    req.add_argument("--output", required=True, help="folder for eval.json and grid.png")
    parser.add_argument(
        "--num-crops", type=positive_int, default=64, help="random crops over the images"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="crop draws")
    parser.add_argument(
        "--downsample",
        choices=DOWNSAMPLE_MODES,
        default="nearest",
        help="how the low-resolution input is made (use the training setting)",
    )
    parser.add_argument("--dtype", choices=TRAINING_DTYPES, default="fp32", help="VAE dtype")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="crops per VAE call")
    parser.add_argument("--preview", type=non_negative_int, default=4, help="crops in grid.png")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="store each mode's measured error in the upsampler's config.json, for "
        'start_sigma="auto" (only the calibration entry changes)',
    )


def run(args: argparse.Namespace) -> int:
    return run_command("lssgen eval-upsampler", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:

    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise UsageError("--output", f"{output} is a file, not a folder")
    try:
        device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError as exc:
        raise UsageError("--device", str(exc)) from exc
    codec = load_codec(args, device)
    with blame("--upsampler"):
        upsampler = LatentUpsampler.from_pretrained(args.upsampler, device=device)
        upsampler.check_latent_channels(
            codec.latent_channels, argument=f"--upsampler {args.upsampler}"
        )
    images, warned = image_folder(args.images, "--images", SCALE_FACTOR * args.size)
    for line in warned:
        print(line, file=sys.stderr)
    result = held_out_comparison(
        upsampler, images, codec, args, count=args.num_crops, preview_count=args.preview
    )
    print(format_table(result))
    calibrations = calibrations_from_comparison(result, Path(args.images).name)
    print(format_levels(calibrations))
    report: dict[str, Any] = {
        **result.to_dict(),
        "auto_start_sigma": auto_levels(calibrations),
        # Folder names only: a report is committed as evidence and names no machine's paths.
        "vae": Path(args.vae).name,
        "upsampler": Path(args.upsampler).name,
        "images": Path(args.images).name,
        "num_images": len(images),
        "seed": args.seed,
        "device": str(device),
        "vae_dtype": args.dtype,
        "torch": torch.__version__,
    }
    write_json_atomic(output / JSON_NAME, report)
    written = [output / JSON_NAME]
    if args.preview:
        grid = comparison_grid(list(result.previews.items()))
        written.append(write_bytes_atomic(output / GRID_NAME, png_bytes(grid)))
    if args.calibrate:
        with blame("--upsampler"):
            written.append(write_calibrations(args.upsampler, calibrations))
    print("Wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0
