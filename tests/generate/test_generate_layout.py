"""`lssgen generate` in one process: GenEval layout, determinism, resume of a damaged folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionPipeline
from generate_support import LSS, PROMPTS, SIZE, expected_pngs, generate, pngs
from PIL import Image

from lssgen.cli.batch_invariance import make_batch_invariant
from lssgen.cli.generate import image_generator, image_seed
from lssgen.cli.geneval_layout import is_complete_png
from lssgen.images import png_bytes


def test_layout_metadata_config_and_timings_match_geneval(flux_reference: Path) -> None:
    files = sorted(str(p.relative_to(flux_reference)) for p in flux_reference.rglob("*"))
    timings = [f for f in files if f.startswith("timings/")]
    assert len(timings) == 1  # one process, one run
    assert [f for f in files if f not in timings] == [
        "00000", "00000/metadata.jsonl", "00000/samples", *expected_pngs(1, 2),
        "00001", "00001/metadata.jsonl", "00001/samples", *expected_pngs(2, 2)[2:],
        "config.json", "result.json", "timings",
    ]  # fmt: skip
    for i, metadata in enumerate(PROMPTS):
        # Exactly what GenEval's generation script writes: json.dump, no newline.
        text = (flux_reference / f"{i:05}" / "metadata.jsonl").read_text(encoding="utf-8")
        assert text == json.dumps(metadata)
    for name in expected_pngs(2, 2):
        with Image.open(flux_reference / name) as image:
            assert image.size == (64, 64) and image.mode == "RGB"

    config = json.loads((flux_reference / "config.json").read_text())
    assert (config["pipeline"], config["pipeline_class"]) == ("flux", "LSSFluxPipeline")
    assert (config["steps"], config["guidance"], config["seed"]) == (4, 3.5, 42)
    assert (config["start_sigma"], config["min_size"], config["shorten"]) == (0.75, 32, True)
    assert [stage["width"] for stage in config["lss_plan"]["stages"]] == [32, 64]
    assert config["n_samples"] == 2 and config["batch_size"] == 3

    result = json.loads((flux_reference / "result.json").read_text())
    assert (result["num_images"], result["completed"], result["missing"]) == (4, 4, 0)
    assert sorted(result["images"]) == ["00000/00000", "00000/00001", "00001/00000", "00001/00001"]
    assert [t["batch_size"] for t in result["images"].values()] == [3, 3, 3, 1]
    assert result["total_seconds"] == pytest.approx(
        sum(t["seconds"] for t in result["images"].values())
    )
    assert result["last_run"]["images_generated"] == 4 and result["last_run"]["wall_seconds"] > 0


def test_batch_size_does_not_change_a_byte(
    flux_reference: Path, flux_args: list[str], tmp_path: Path
) -> None:
    assert generate(*flux_args, "--outdir", tmp_path, "--batch-size", "1") == 0
    assert pngs(tmp_path) == pngs(flux_reference)


def test_sd_from_model_index_with_its_own_upsampler(
    sd_dir: Path, prompts_file: Path, tmp_path: Path
) -> None:
    """Kind from model_index.json, MODEL/latent_upsampler, a negative prompt; batch 1 = batch 3."""
    args = ["--model", sd_dir, "--prompts", prompts_file, *LSS, "--negative-prompt", "blurry"]
    runs = {}
    for batch_size in ("1", "3"):
        outdir = tmp_path / batch_size
        assert generate(*args, "--outdir", outdir, "--batch-size", batch_size) == 0
        runs[batch_size] = pngs(outdir)
    assert sorted(runs["1"]) == expected_pngs(2, 4)  # --n-samples defaults to 4
    assert runs["1"] == runs["3"]
    config = json.loads((tmp_path / "1" / "config.json").read_text())
    assert config["pipeline_class"] == "LSSStableDiffusionPipeline"
    assert config["upsampler"] == str((sd_dir / "latent_upsampler").resolve())
    assert (config["guidance"], config["shorten"], config["negative_prompt"]) == (
        7.5,
        False,
        "blurry",
    )


def test_plain_baseline_is_the_stock_pipeline_with_the_documented_seeds(
    sd_dir: Path, tmp_path: Path
) -> None:
    prompt = PROMPTS[1]["prompt"]
    args = ["--model", sd_dir, "--prompt", prompt, "--plain", *SIZE, "--steps", "3"]
    assert generate(*args, "--n-samples", "2", "--outdir", tmp_path, "--batch-size", "2") == 0
    assert json.loads((tmp_path / "config.json").read_text())["lss_plan"] is None
    assert (tmp_path / "00000" / "metadata.jsonl").read_text() == json.dumps({"prompt": prompt})

    pipe = StableDiffusionPipeline.from_pretrained(sd_dir)
    pipe.set_progress_bar_config(disable=True)
    make_batch_invariant(pipe)  # what the CLI does on CPU
    image = pipe(
        prompt, height=64, width=64, num_inference_steps=3, guidance_scale=7.5,
        generator=[image_generator(42, 0, 1)],
    ).images[0]  # fmt: skip
    assert png_bytes(image) == (tmp_path / "00000" / "samples" / "00001.png").read_bytes()


def test_image_seeds_are_pinned_and_distinct() -> None:
    # Changing the scheme would silently mix two seedings in a resumed folder: pin it.
    assert image_seed(42, 0, 0) == 0x4034_E71B_6905_7D15
    seeds = {image_seed(seed, i, k) for seed in (0, 1) for i in range(50) for k in range(4)}
    assert len(seeds) == 400
    a, b = image_generator(42, 3, 1), image_generator(42, 3, 1)
    assert torch.equal(torch.randn(4, generator=a), torch.randn(4, generator=b))


def test_rerun_keeps_finished_images_and_redoes_damaged_ones(
    flux_reference: Path, flux_args: list[str], reference_copy: Path
) -> None:
    outdir = reference_copy
    truncated = outdir / "00000" / "samples" / "00001.png"
    truncated.write_bytes(truncated.read_bytes()[:-20])
    (outdir / "00001" / "samples" / "00000.png").unlink()
    stale = outdir / "00001" / "samples" / ".00000.png.abc123.tmp"  # left by a killed run
    stale.write_bytes(b"partial")
    kept = outdir / "00000" / "samples" / "00000.png"
    kept_stat = kept.stat()
    assert not is_complete_png(truncated, 64, 64)

    assert generate(*flux_args, "--outdir", outdir, "--batch-size", "2") == 0
    assert pngs(outdir) == pngs(flux_reference)
    assert kept.stat().st_mtime_ns == kept_stat.st_mtime_ns  # skipped, not rewritten
    assert not stale.exists()
    result = json.loads((outdir / "result.json").read_text())
    assert result["completed"] == 4 and result["last_run"]["images_generated"] == 2
    assert len(result["processes"]) == 2  # the reference run's timings and this run's


def test_more_samples_extend_a_finished_run(
    flux_reference: Path, flux_args: list[str], reference_copy: Path
) -> None:
    outdir = reference_copy
    args = [*flux_args[:-2], "--n-samples", "3"]  # flux_args ends with --n-samples 2
    assert generate(*args, "--outdir", outdir, "--batch-size", "3") == 0
    extended = pngs(outdir)
    assert sorted(extended) == expected_pngs(2, 3)
    assert {name: extended[name] for name in pngs(flux_reference)} == pngs(flux_reference)
