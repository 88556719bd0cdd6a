"""`lssgen generate` as separate processes: killed mid-run and resumed; two accelerate processes.

Each subprocess pays ~5 s of Python and Diffusers start-up, so there are only three of them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from generate_support import ENV, expected_pngs, generate, pngs

from lssgen.cli.geneval_layout import is_complete_png

ACCELERATE_CPU = [
    # accelerate 1.15's `--cpu` starts several processes only through MPI (--mpirun_hostfile);
    # --multi_gpu uses torch's launcher, and on a machine without CUDA `lssgen generate` then joins
    # the processes in a gloo group (PartialState(cpu=True)).
    "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
    "--mixed_precision", "no", "--dynamo_backend", "no",
]  # fmt: skip


def _wait_for_first_png(process: subprocess.Popen[bytes], outdir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not list(outdir.glob("*/samples/*.png")):
        assert process.poll() is None, "the run ended before writing an image"
        assert time.monotonic() < deadline, "no image appeared in time"
        time.sleep(0.005)


def test_killed_run_resumes_to_the_images_of_an_uninterrupted_one(
    flux_args: list[str], tmp_path: Path
) -> None:
    args = [*flux_args[:-2], "--n-samples", "4"]  # 8 images: ~0.1 s each after start-up
    reference = tmp_path / "reference"
    assert generate(*args, "--outdir", reference, "--batch-size", "3") == 0

    outdir = tmp_path / "killed"
    command = [sys.executable, "-m", "lssgen", "generate", *args, "--outdir", str(outdir)]
    process = subprocess.Popen(command, env=ENV, stderr=subprocess.DEVNULL)
    try:
        _wait_for_first_png(process, outdir, timeout=120)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    written = list(outdir.glob("*/samples/*.png"))
    assert 0 < len(written) < 8, "the kill should land mid-run"
    assert all(is_complete_png(path, 64, 64) for path in written)  # never a truncated PNG

    assert generate(*args, "--outdir", outdir, "--batch-size", "2") == 0
    assert pngs(outdir) == pngs(reference)
    assert sorted(pngs(outdir)) == expected_pngs(2, 4)
    assert not list(outdir.glob("*/samples/.*"))  # no temp file left behind
    result = json.loads((outdir / "result.json").read_text())
    assert result["completed"] == 8
    # The killed run (batch size 1) may have written its last PNG but not yet its timing.
    assert result["untimed"] <= 1 and len(result["images"]) == 8 - result["untimed"]


def test_two_accelerate_processes_write_the_files_of_one(
    flux_reference: Path, flux_args: list[str], tmp_path: Path
) -> None:
    accelerate = Path(sys.executable).with_name("accelerate")
    outdir = tmp_path / "two"
    command = [
        str(accelerate), *ACCELERATE_CPU, "-m", "lssgen", "generate", *flux_args,
        "--outdir", str(outdir), "--batch-size", "2",
    ]  # fmt: skip
    run = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "2 process(es)" in run.stderr

    assert pngs(outdir) == pngs(flux_reference)
    result = json.loads((outdir / "result.json").read_text())
    assert sorted(p["process_index"] for p in result["processes"]) == [0, 1]
    # Round-robin shares: each image made exactly once, by the process its position names.
    owners = {key: timing["process_index"] for key, timing in result["images"].items()}
    assert owners == {"00000/00000": 0, "00000/00001": 1, "00001/00000": 0, "00001/00001": 1}
    config = json.loads((outdir / "config.json").read_text())
    assert config["num_processes"] == 2
