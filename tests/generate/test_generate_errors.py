"""`lssgen generate` reports bad input argparse-style (`argument --X: ...`, exit status 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from generate_support import generate, write_jsonl

from lssgen.cli import generate as generate_cli
from lssgen_diffusers.registry import FAMILIES


def _expect_usage_error(capsys: pytest.CaptureFixture[str], *args: str | Path) -> str:
    assert generate(*args) == 2
    err = capsys.readouterr().err
    assert "lssgen generate: error: argument --" in err
    return err


def _refuse_loading(*_args: object) -> None:
    raise AssertionError("the model was loaded before the error was found")


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Errors that need no model must come before the model is loaded."""
    monkeypatch.setattr(generate_cli, "_load_pipeline", _refuse_loading)


@pytest.mark.usefixtures("no_loading")
def test_model_folder_errors(
    capsys: pytest.CaptureFixture[str], flux_dir: Path, prompts_file: Path, tmp_path: Path
) -> None:
    common = ["--prompts", prompts_file, "--outdir", tmp_path / "out"]
    err = _expect_usage_error(capsys, "--model", tmp_path / "missing", *common)
    assert "argument --model: model folder not found" in err

    (tmp_path / "empty").mkdir()
    err = _expect_usage_error(capsys, "--model", tmp_path / "empty", *common)
    assert "argument --model:" in err and "no model_index.json" in err

    other = tmp_path / "other"
    shutil.copytree(flux_dir, other)
    index = json.loads((other / "model_index.json").read_text())
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "WanPipeline"}))
    err = _expect_usage_error(capsys, "--model", other, *common)
    assert "'WanPipeline'" in err and f"--pipeline {{{','.join(FAMILIES)}}}" in err


def test_unknown_pipeline_kind_is_an_argparse_choice_error(
    capsys: pytest.CaptureFixture[str], flux_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        generate(
            "--model", flux_dir, "--pipeline", "kandinsky", "--prompt", "x", "--outdir", tmp_path
        )
    assert exit_info.value.code == 2
    assert "argument --pipeline: invalid choice: 'kandinsky'" in capsys.readouterr().err


@pytest.mark.usefixtures("no_loading")
def test_prompt_file_errors_name_the_line(
    capsys: pytest.CaptureFixture[str], flux_dir: Path, tmp_path: Path
) -> None:
    common = ["--model", flux_dir, "--outdir", tmp_path / "out"]
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "ok"}, {"tag": "no prompt"}])
    err = _expect_usage_error(capsys, *common, "--prompts", bad)
    assert f'argument --prompts: {bad} line 2: the object has no "prompt" key' in err

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "ok"}\n\n{"prompt": \n', encoding="utf-8")
    err = _expect_usage_error(capsys, *common, "--prompts", broken)
    assert f"{broken} line 3 is not valid JSON" in err  # blank lines count

    err = _expect_usage_error(capsys, *common, "--prompts", tmp_path / "none.txt")
    assert "argument --prompts: prompt file not found" in err


@pytest.mark.usefixtures("no_loading")
def test_unwritable_outdir(
    capsys: pytest.CaptureFixture[str], flux_dir: Path, tmp_path: Path
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    common = ["--model", flux_dir, "--prompt", "a cube"]
    err = _expect_usage_error(capsys, *common, "--outdir", a_file)
    assert f"argument --outdir: {a_file} is a file, not a folder" in err
    err = _expect_usage_error(capsys, *common, "--outdir", a_file / "below")
    assert f"argument --outdir: cannot write to {a_file / 'below'}" in err


# Found from the flags and files alone: before the model loads.
BEFORE_LOADING = [
    (
        ["--plain", "--start-sigma", "0.5"],
        "argument --start-sigma: not allowed with argument --plain",
    ),
    (["--plain", "--no-shorten"], "argument --shorten: not allowed with argument --plain"),
    (["--upsampler", "up", "--scaling-mode", "latent"], "argument --upsampler: not used with"),
    (["--negative-prompt", "blurry"], "argument --negative-prompt: FLUX is guidance-distilled"),
    (["--start-sigma", "1.5"], "argument --start-sigma: start_sigma=1.5 is outside"),
    (["--upsampler", "/nonexistent/upsampler"], "argument --upsampler:"),
    (["--device", "cuda:0"], "argument --device: cuda:0: CUDA is not available"),
]
# Found with the loaded model (its size multiple, its plan), before any image.
WITH_THE_MODEL = [
    (["--height", "72", "--width", "64"], "argument --height: 72 is not a multiple of 16"),
    (["--height", "64", "--width", "64", "--min-size", "32"], "argument --upsampler: the plan"),
    (
        ["--height", "64", "--width", "64", "--min-size", "128"],
        "argument --min-size: min_size=128",
    ),
]


@pytest.mark.parametrize(
    ("extra", "message", "before_loading"),
    [(*case, True) for case in BEFORE_LOADING] + [(*case, False) for case in WITH_THE_MODEL],
)
def test_option_errors_name_their_flag_before_any_image(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    flux_dir: Path,
    tmp_path: Path,
    extra: list[str],
    message: str,
    before_loading: bool,
) -> None:
    if before_loading:
        monkeypatch.setattr(generate_cli, "_load_pipeline", _refuse_loading)
    args = ["--model", flux_dir, "--prompt", "a cube", "--outdir", tmp_path / "out", *extra]
    assert message in _expect_usage_error(capsys, *args)
    assert not (tmp_path / "out" / "config.json").exists()


@pytest.mark.usefixtures("no_loading")
def test_upsampler_for_another_vae(
    capsys: pytest.CaptureFixture[str], flux_dir: Path, sd_dir: Path, tmp_path: Path
) -> None:
    """A 4-channel upsampler for 16-channel FLUX latents: caught from the configs, pre-load."""
    args = ["--model", flux_dir, "--prompt", "a", "--outdir", tmp_path]
    err = _expect_usage_error(capsys, *args, "--upsampler", sd_dir / "latent_upsampler")
    assert "argument --upsampler:" in err and "in_channels=4" in err and "16 channels" in err


def test_resuming_with_other_settings_is_refused(
    capsys: pytest.CaptureFixture[str],
    flux_reference: Path,
    flux_args: list[str],
    reference_copy: Path,
) -> None:
    outdir = reference_copy
    args = [*flux_args, "--outdir", outdir, "--steps", "3", "--seed", "7"]
    err = _expect_usage_error(capsys, *args)
    assert f"argument --outdir: {outdir} holds images made with other settings" in err
    assert "steps 4 -> 3" in err and "seed 42 -> 7" in err
    assert (outdir / "config.json").read_bytes() == (flux_reference / "config.json").read_bytes()
