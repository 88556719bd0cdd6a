"""``lssgen demo``: the shipped lssgen-mini model, plain and with LSS, from the same seeds.

    lssgen demo --output lssgen-demo.png [--prompt TEXT ...] [--threads N]

The run itself (both plans, an untimed warm-up, the timed calls, the verdicts, the grid) is
`lssgen.mini.demo`; this module reads the flags, checks them before anything loads, and sets
torch's threads for the timing (`lssgen.mini.threads`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lssgen.cli.common import check_output_file, run_command
from lssgen.cli.mini_flags import add_model_arguments, model_settings
from lssgen.mini.demo import DEMO_PROMPTS, demo, demo_grid
from lssgen.mini.grid import save_png
from lssgen.mini.threads import timing_threads
from lssgen.torch_settings import torch_threads

PROG = "lssgen demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="lssgen-demo.png", help="grid PNG to write")
    parser.add_argument(
        "--prompt", action="append", help=f"a prompt (repeatable); default: {len(DEMO_PROMPTS)}"
    )
    add_model_arguments(parser, seed_help="prompt i uses seed + i")


def run(args: argparse.Namespace) -> int:
    return run_command(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    settings = model_settings(args)
    output = check_output_file(args.output)
    prompts = tuple(args.prompt or DEMO_PROMPTS)
    with torch_threads(timing_threads(args.threads)):
        runs = demo(Path(args.model), prompts, settings, seed=args.seed, report=print)
    save_png(demo_grid(prompts, runs), output)
    print(f"wrote {output}")
    return 0
