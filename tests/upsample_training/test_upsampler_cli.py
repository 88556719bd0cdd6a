"""`lssgen train-upsampler` / `lssgen eval-upsampler`: end to end, Ctrl-C + resume, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from upsample_training_support import SIZE, write_images

from lssgen.cli import common, main
from lssgen.training.train import init_upsampler
from lssgen_core.upsample import LatentUpsampler, UpsamplerConfig

TINY = ["--size", str(SIZE), "--batch-size", "4", "--lr", "1e-3", "--num-workers", "0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _train_args(vae: Path, images: Path, output: Path, *extra: str) -> list[str]:
    return [
        "train-upsampler", "--vae", str(vae), "--images", str(images), "--output", str(output),
        *TINY, *extra,
    ]  # fmt: skip


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return LatentUpsampler.from_pretrained(folder).state_dict()


def test_cli_trains_then_evaluates_end_to_end(
    pipeline_dir: Path, train_dir: Path, heldout_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "upsampler"
    lssgen = Path(sys.executable).with_name("lssgen")
    args = _train_args(pipeline_dir, train_dir, out, "--steps", "6", "--checkpoint-every", "3")
    args[args.index("--num-workers") + 1] = "1"  # exercise the DataLoader worker path once
    train = subprocess.run(
        [str(lssgen), *args, "--cache-latents", "--pool-size", "8"],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    assert "Saved the upsampler" in train.stderr and "6/6" in train.stderr  # tqdm
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoints", "config.json", "diffusion_pytorch_model.safetensors",
        "lssgen_training.json",
    ]  # fmt: skip
    assert LatentUpsampler.from_pretrained(out).config == UpsamplerConfig.released_4ch()
    summary = json.loads((out / "lssgen_training.json").read_text())
    assert summary["steps_done"] == 6 and summary["latent_channels"] == 4

    report_dir = tmp_path / "eval"
    compared = subprocess.run(
        [
            sys.executable, "-m", "lssgen", "eval-upsampler", "--vae", str(pipeline_dir),
            "--upsampler", str(out), "--images", str(heldout_dir), "--output", str(report_dir),
            "--size", str(SIZE), "--num-crops", "6", "--preview", "3",
        ],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert compared.returncode == 0, compared.stderr
    for method in ("upsampler", "bicubic", "bilinear", "nearest", "pixel", "vae reconstruction"):
        assert method in compared.stdout
    report = json.loads((report_dir / "eval.json").read_text())
    assert set(report["methods"]) == {"upsampler", "bicubic", "bilinear", "nearest", "pixel"}
    assert report["num_crops"] == 6 and report["crop_size"] == 2 * SIZE
    for score in report["methods"].values():
        assert score["latent_mse"] >= 0 and score["ms_per_call"] > 0
    # Reports are committed as evidence: they name no path of the machine that made them.
    assert str(tmp_path) not in (report_dir / "eval.json").read_text()
    with Image.open(report_dir / "grid.png") as grid:
        assert grid.width > 8 * 2 * SIZE and grid.height > 3 * 2 * SIZE


def test_ctrl_c_checkpoints_and_resume_matches_an_uninterrupted_run(
    vae4_dir: Path, train_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert main(_train_args(vae4_dir, train_dir, straight, "--steps", "8")) == 0

    update = common.Progress.update

    def press_ctrl_c_at_step_3(self, report) -> None:  # type: ignore[no-untyped-def]
        update(self, report)
        if report.step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    # The handler in place before (Python's default, or SIG_IGN under `nohup ... &`) comes back.
    previous_int = signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as patch:
        patch.setattr(common.Progress, "update", press_ctrl_c_at_step_3)
        assert main(_train_args(vae4_dir, train_dir, stopped, "--steps", "8")) == 130
    assert "Interrupted at step 3/8" in capsys.readouterr().err
    assert not (stopped / "config.json").exists()
    assert signal.getsignal(signal.SIGINT) == previous_int

    assert main(_train_args(vae4_dir, train_dir, stopped, "--steps", "8")) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(_train_args(vae4_dir, train_dir, stopped, "--steps", "9", "--resume")) == 2
    assert "steps: checkpoint 8, now 9" in capsys.readouterr().err
    assert main(_train_args(vae4_dir, train_dir, stopped, "--steps", "8", "--resume")) == 0
    a, b = _weights(straight), _weights(stopped)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("first", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_second_signal_aborts_at_once(first: signal.Signals) -> None:
    previous_int, previous_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    interrupt = common.DeferredInterrupt(lambda message: None)
    with interrupt:
        os.kill(os.getpid(), first)
        assert interrupt.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) == previous_int
    assert signal.getsignal(signal.SIGTERM) == previous_term


def _error(capsys, args: list[str]) -> str:  # type: ignore[no-untyped-def]
    assert main(args) == 2
    return capsys.readouterr().err


def test_bad_input_is_reported_against_its_argument(
    vae4_dir: Path, train_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _error(capsys, _train_args(vae4_dir, empty, out))
    assert "argument --images" in err and "no images found" in err

    small = write_images(tmp_path / "small", 2, seed=3, sizes=(40, 60))
    err = _error(capsys, _train_args(vae4_dir, small, out))
    assert "argument --images" in err and f"smaller than the {2 * SIZE}x{2 * SIZE} crop" in err

    err = _error(capsys, _train_args(tmp_path / "no_vae", train_dir, out))
    assert "argument --vae" in err and "VAE folder not found" in err

    pipeline = tmp_path / "pipe"
    pipeline.mkdir()
    (pipeline / "model_index.json").write_text("{}")
    err = _error(capsys, _train_args(pipeline, train_dir, out))
    assert "argument --vae" in err and "no vae/config.json" in err

    init16 = tmp_path / "init16"
    init_upsampler(UpsamplerConfig.released_16ch(), 0).save_pretrained(init16)
    err = _error(capsys, _train_args(vae4_dir, train_dir, out, "--init", str(init16)))
    assert "argument --init" in err and "in_channels=16" in err and "4 channels" in err

    err = _error(capsys, _train_args(vae4_dir, train_dir, out, "--resume"))
    assert "argument --resume" in err and "no training checkpoint" in err

    err = _error(capsys, [*_train_args(vae4_dir, train_dir, out), "--size", "36"])
    assert "argument --size" in err and "multiple of the VAE's 8x" in err

    err = _error(capsys, [*_train_args(vae4_dir, train_dir, out), "--lr", "0"])
    assert "argument --lr" in err

    lpips = tmp_path / "alex.pth"
    lpips.write_bytes(b"pickle")
    err = _error(capsys, _train_args(vae4_dir, train_dir, out, "--lpips-weights", str(lpips)))
    assert "argument --lpips-weights" in err
    assert not out.exists() or not any(out.iterdir())


def test_eval_refuses_an_upsampler_for_other_channels(
    vae4_dir: Path, heldout_dir: Path, tmp_path: Path, capsys
) -> None:
    up16 = tmp_path / "up16"
    init_upsampler(UpsamplerConfig.released_16ch(), 0).save_pretrained(up16)
    args = [
        "eval-upsampler", "--vae", str(vae4_dir), "--upsampler", str(up16),
        "--images", str(heldout_dir), "--output", str(tmp_path / "eval"), "--size", str(SIZE),
    ]  # fmt: skip
    err = _error(capsys, args)
    assert "argument --upsampler" in err and "in_channels=16" in err
    shutil.rmtree(up16)
    err = _error(capsys, args)
    assert "argument --upsampler" in err and "not found" in err


def test_a_diverging_run_exits_non_zero_and_saves_nothing(
    vae4_dir: Path, train_dir: Path, tmp_path: Path, capsys
) -> None:
    # Issue 12: `--lr 1e6` trained to NaN, saved the NaN weights as the upsampler and exited 0.
    out = tmp_path / "out"
    args = _train_args(vae4_dir, train_dir, out, "--steps", "8", "--checkpoint-every", "1")
    args[args.index("--lr") + 1] = "1e6"
    assert main([*args, "--seed", "3"]) == 1
    err = capsys.readouterr().err
    assert "lssgen train-upsampler: error:" in err and "Traceback" not in err
    assert "not finite" in err and "--lr" in err and "1e+06" in err
    assert not (out / "config.json").exists()  # no upsampler is published
    state = json.loads((out / "checkpoints" / "training_state.json").read_text())
    assert f"step {state['step']}" in err  # names the checkpoint it kept
    tensors = load_file(str(out / "checkpoints" / state["tensors"]))
    assert all(bool(torch.isfinite(t).all()) for k, t in tensors.items() if k.startswith("model/"))
