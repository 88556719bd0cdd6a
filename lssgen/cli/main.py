"""``lssgen <command> ...``: one entry point, each subcommand in the module that owns its work.

A subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``; it is imported only
when its command runs, so ``lssgen --help`` stays fast and needs no model library.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lssgen.cli.quiet_imports import torchvision_fallback_hidden

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train-upsampler": (
        "lssgen.cli.train_upsampler",
        "Train a latent upsampler for a Diffusers VAE on a folder of images.",
    ),
    "eval-upsampler": (
        "lssgen.cli.eval_upsampler",
        "Compare an upsampler with interpolation and the pixel round trip on held-out images.",
    ),
    "generate": (
        "lssgen.cli.generate",
        "Generate images for a prompt list in GenEval's layout (resumable, multi-process).",
    ),
    "demo": (
        "lssgen.cli.demo",
        "Run the shipped lssgen-mini model plain and with LSS; print times, write a PNG grid.",
    ),
    "evaluate": (
        "lssgen.cli.evaluate",
        "Score lssgen-mini plain vs LSS (scaling modes, start_sigma sweep): accuracy and speed.",
    ),
    "mini": (
        "lssgen.cli.train_mini",
        "Train and assemble lssgen-mini stage by stage (text, vae, latents, transformer, ...).",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="lssgen", description="Latent Space Scaling tools.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(_module=module_name)
        if name in argv[:1]:
            importlib.import_module(module_name).add_arguments(command)
    args = parser.parse_args(argv)
    # The commands import Diffusers (hence transformers) as they run: hide its torchvision note.
    with torchvision_fallback_hidden():
        return int(importlib.import_module(args._module).run(args) or 0)
