"""`lssgen generate` uses a folder's `lssgen_call_defaults.json`; the user's flags override it.

Issue 12: on lssgen-mini (a 256 px model) `generate` used SD3's defaults, 28 steps at 1024 px
(110 s per image, no LSS), instead of the model's own settings.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from generate_support import generate, pngs

from lssgen.cli import generate as generate_cli
from lssgen_diffusers.call_defaults import CALL_DEFAULTS_NAME, read_call_defaults

DEFAULTS = {
    "num_inference_steps": 3,
    "height": 64,
    "width": 64,
    "guidance_scale": 2.5,
    "min_size": 32,
    "start_sigma": 0.5,
    "shorten_intermediate_steps": True,
    "max_sequence_length": 16,
}


@pytest.fixture
def flux_with_defaults(flux_dir: Path, upsampler16: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "flux"
    shutil.copytree(flux_dir, folder)
    shutil.copytree(upsampler16, folder / "latent_upsampler")
    (folder / CALL_DEFAULTS_NAME).write_text(json.dumps(DEFAULTS))
    return folder


@pytest.fixture
def configs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The settings of each run, recorded instead of generating (so main's 1024 px defaults
    cost nothing either)."""
    seen: list[dict[str, Any]] = []

    def record(job: Any, _mine: Any, *_rest: Any) -> None:
        seen.append(job.config)

    monkeypatch.setattr(generate_cli, "_generate", record)
    return seen


def test_the_folder_settings_replace_the_family_defaults(
    flux_with_defaults: Path, tmp_path: Path, configs: list[dict[str, Any]]
) -> None:
    generate("--model", flux_with_defaults, "--prompt", "a cube", "--outdir", tmp_path / "a")
    [config] = configs
    assert (config["steps"], config["height"], config["width"]) == (3, 64, 64)
    assert config["guidance"] == 2.5
    assert (config["min_size"], config["start_sigma"], config["shorten"]) == (32, 0.5, True)
    assert config["call_extra"] == {"max_sequence_length": 16}
    assert config["call_defaults"] == str((flux_with_defaults / CALL_DEFAULTS_NAME).resolve())
    call = generate_cli._call_arguments([(0, 0)], [{"prompt": "a cube"}], config)
    assert call["max_sequence_length"] == 16


def test_flags_override_the_folder_settings(
    flux_with_defaults: Path, tmp_path: Path, configs: list[dict[str, Any]]
) -> None:
    flags = ["--steps", "4", "--guidance", "1.5", "--start-sigma", "0.7", "--no-shorten"]
    flags += ["--width", "128", "--min-size", "64"]
    generate("--model", flux_with_defaults, "--prompt", "a", "--outdir", tmp_path / "b", *flags)
    [config] = configs
    assert (config["steps"], config["height"], config["width"]) == (4, 64, 128)
    assert (config["guidance"], config["start_sigma"], config["shorten"]) == (1.5, 0.7, False)
    assert config["min_size"] == 64


def test_plain_takes_the_call_settings_but_no_lss_ones(
    flux_with_defaults: Path, tmp_path: Path, configs: list[dict[str, Any]]
) -> None:
    generate("--model", flux_with_defaults, "--plain", "--prompt", "a", "--outdir", tmp_path)
    [config] = configs
    assert (config["steps"], config["height"], config["guidance"]) == (3, 64, 2.5)
    assert config["lss_plan"] is None and config["min_size"] is None


def test_a_run_with_folder_settings_generates_and_resumes(
    flux_with_defaults: Path, tmp_path: Path
) -> None:
    args = ["--model", flux_with_defaults, "--prompt", "a red cube", "--n-samples", "2"]
    assert generate(*args, "--outdir", tmp_path) == 0
    first = pngs(tmp_path)
    assert len(first) == 2
    assert generate(*args, "--outdir", tmp_path) == 0  # same settings: resumes, nothing to do
    assert pngs(tmp_path) == first


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"num_inference_steps": 0}, "num_inference_steps must be a positive int, got 0"),
        ({"guidance_scale": "NaN"}, "guidance_scale must be a finite number"),
        ({"start_sigma": 1.5}, "start_sigma must be a number in (0, 1]"),
        ({"shorten_intermediate_steps": "no"}, "shorten_intermediate_steps must be true or false"),
        ({"scaling_mode": "magic"}, "scaling_mode must be one of"),
        ({"not_an_argument": 1}, "not_an_argument is not an argument of"),
        ({"kwargs": 1}, "kwargs is not an argument of"),
        ({"output_type": "pil"}, "output_type is set by lssgen generate itself"),
        ([1, 2], "must hold a JSON object"),
    ],
)
def test_a_bad_settings_file_is_an_error_naming_the_file_and_key(
    flux_with_defaults: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: object,
    message: str,
) -> None:
    path = flux_with_defaults / CALL_DEFAULTS_NAME
    path.write_text(json.dumps(content))
    assert generate("--model", flux_with_defaults, "--prompt", "a", "--outdir", tmp_path) == 2
    err = capsys.readouterr().err
    assert "lssgen generate: error: argument --model:" in err
    assert str(path) in err and message in err


def test_reading_is_a_library_function(flux_with_defaults: Path, tmp_path: Path) -> None:
    assert read_call_defaults(flux_with_defaults) == DEFAULTS
    assert read_call_defaults(tmp_path) is None


def test_a_folder_may_recommend_the_automatic_start_sigma(flux_with_defaults: Path) -> None:
    # As `lssgen generate --start-sigma auto` and the pipelines' start_sigma="auto" take it.
    path = flux_with_defaults / CALL_DEFAULTS_NAME
    path.write_text(json.dumps({**DEFAULTS, "start_sigma": "auto"}))
    assert read_call_defaults(flux_with_defaults) == {**DEFAULTS, "start_sigma": "auto"}
    path.write_text(json.dumps({**DEFAULTS, "start_sigma": "automatic"}))
    with pytest.raises(ValueError, match=r"start_sigma must be a number in \(0, 1\] or 'auto'"):
        read_call_defaults(flux_with_defaults)
