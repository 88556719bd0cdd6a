"""lssgen-mini's folder carries its own call settings, and `lssgen generate` uses them (issue 12:
it used SD3's 28 steps at 1024 px, 110 s per image, without LSS)."""

import json

from lssgen.cli import generate as generate_cli
from lssgen.cli import main
from lssgen.mini.model import MINI_SETTINGS, SHIPPED_MODEL
from lssgen_diffusers.call_defaults import CALL_DEFAULTS_NAME, read_call_defaults


def test_the_shipped_folder_recommends_the_demo_settings():
    assert read_call_defaults(SHIPPED_MODEL) == MINI_SETTINGS.lss()


def test_assemble_writes_the_settings_file(tiny_folder):
    assert read_call_defaults(tiny_folder) == MINI_SETTINGS.lss()


def test_generate_on_the_shipped_folder_runs_it_as_the_demo_does(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(generate_cli, "_generate", lambda job, *_: seen.append(job.config))
    argv = ["generate", "--model", str(SHIPPED_MODEL), "--prompt", "a photo of a triangle"]
    main([*argv, "--outdir", str(tmp_path), "--n-samples", "1"])
    [config] = seen
    assert (config["steps"], config["height"], config["width"]) == (20, 256, 256)
    assert (config["guidance"], config["min_size"], config["start_sigma"]) == (4.0, 128, 0.6)
    assert config["shorten"] is True and config["scaling_mode"] == "resnet"
    assert config["call_extra"] == {"max_sequence_length": 1}
    assert [s["width"] for s in config["lss_plan"]["stages"]] == [128, 256]
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["call_defaults"].endswith(CALL_DEFAULTS_NAME)
