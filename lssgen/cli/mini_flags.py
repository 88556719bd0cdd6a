"""The flags `lssgen demo` and `lssgen evaluate` share: which lssgen-mini folder, how to call it,
and how many CPU threads time it (`lssgen.mini.threads`)."""

from __future__ import annotations

import argparse

import attrs

from lssgen.cli.common import (
    blame,
    non_negative_int,
    positive_int,
    start_sigma_value,
)
from lssgen.mini.model import MINI_SETTINGS, SHIPPED_MODEL, MiniSettings, check_model_folder


def add_model_arguments(parser: argparse.ArgumentParser, *, seed_help: str) -> None:
    parser.add_argument(
        "--model", default=str(SHIPPED_MODEL), help="lssgen-mini pipeline folder (default: shipped)"
    )
    parser.add_argument(
        "--steps", type=positive_int, default=MINI_SETTINGS.num_inference_steps, help="steps"
    )
    parser.add_argument("--start-sigma", type=start_sigma_value, default=MINI_SETTINGS.start_sigma)
    parser.add_argument("--seed", type=non_negative_int, default=0, help=seed_help)
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: the idle cores, from the load average)",
    )


def model_settings(args: argparse.Namespace) -> MiniSettings:
    """The call settings the arguments ask for; a usage error of `--model` when it is not a
    pipeline folder (checked before anything loads). Threads: see `timing_threads`."""
    with blame("--model"):
        check_model_folder(args.model)
    return attrs.evolve(MINI_SETTINGS, num_inference_steps=args.steps, start_sigma=args.start_sigma)
