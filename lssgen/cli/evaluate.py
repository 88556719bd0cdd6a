"""``lssgen evaluate``: lssgen-mini's prompt-following, sharpness and speed, plain versus LSS.

    lssgen evaluate --output runs/quality [--count 240] [--steps 20] [--batch-size 8]

The evaluation itself (configurations, resumable batches, scoring, intervals, the table, chart
and sample grid) is `lssgen.mini.quality.measure_quality`; this module reads the flags, checks
them before anything loads, and sets torch's threads for the timing (`lssgen.mini.threads`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lssgen.cli.common import positive_int, run_command, start_sigma_value
from lssgen.cli.mini_flags import add_model_arguments, model_settings
from lssgen.mini.quality import SWEEP, default_configs, markdown, measure_quality
from lssgen.mini.threads import timing_threads
from lssgen.mini.timing import TIMING_BATCH
from lssgen.torch_settings import torch_threads

PROG = "lssgen evaluate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="folder for images, times and results")
    parser.add_argument(
        "--count", type=positive_int, default=240, help="prompts (6 categories in turn)"
    )
    parser.add_argument(
        "--sweep",
        type=start_sigma_value,
        nargs="*",
        default=list(SWEEP),
        help="resnet start_sigma values",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=TIMING_BATCH,
        help="prompts per call (the default times batches like `lssgen demo`'s call)",
    )
    add_model_arguments(parser, seed_help="image i uses seed + i")


def run(args: argparse.Namespace) -> int:
    return run_command(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    settings = model_settings(args)
    with torch_threads(timing_threads(args.threads)):
        results = measure_quality(
            Path(args.model),
            Path(args.output),
            count=args.count,
            settings=settings,
            configs=default_configs(args.start_sigma, args.sweep),
            batch_size=args.batch_size,
            seed=args.seed,
        )
    print(markdown(results))
    return 0
