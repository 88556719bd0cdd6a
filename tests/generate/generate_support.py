"""Helpers shared by the `lssgen generate` tests (a uniquely named module, not a package)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from lssgen.cli import main

PROMPTS = [
    {"tag": "single_object", "include": [{"class": "cube", "count": 1}], "prompt": "a red cube"},
    {"tag": "two_object", "prompt": "two dogs — à côté"},  # non-ASCII, as GenEval writes it
]
SIZE = ["--height", "64", "--width", "64"]
# Two stages (32 px, then 64 px) with 4 steps: every LSS code path, ~0.1 s per image.
LSS = [*SIZE, "--min-size", "32", "--steps", "4"]
# One intra-op thread everywhere: the subprocess runs must see the same kernels as in-process ones.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def generate(*args: str | Path) -> int:
    """`lssgen generate ARGS` in this process; its exit status."""
    return main(["generate", *(str(a) for a in args)])


def write_jsonl(path: Path, rows: Sequence[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def pngs(outdir: Path) -> dict[str, bytes]:
    """Every sample PNG under `outdir`, by path relative to it."""
    return {
        str(path.relative_to(outdir)): path.read_bytes()
        for path in sorted(outdir.glob("[0-9]*/samples/*.png"))
    }


def expected_pngs(num_prompts: int, n_samples: int) -> list[str]:
    return [f"{i:05}/samples/{k:05}.png" for i in range(num_prompts) for k in range(n_samples)]
