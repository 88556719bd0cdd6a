"""`lssgen evaluate` on the tiny assembled lssgen-mini: what it generates, scores, writes and
resumes (the model is untrained, so the numbers say nothing about quality; the shipped model's
are in benchmarks/README.md)."""

import argparse
import inspect
import json

import attrs
import numpy as np
import pytest
from mini_support import LOW, NATIVE
from PIL import Image

from lssgen.cli import main
from lssgen.mini.captions import CATEGORIES
from lssgen.mini.model import MINI_SETTINGS
from lssgen.mini.quality import (
    EVAL_DATA_SEED,
    Config,
    default_configs,
    equal_cost_plain,
    eval_captions,
    image_path,
    measure_quality,
    read_times,
)
from lssgen.mini.scenes import scene_for_index

pytestmark = pytest.mark.usefixtures("one_thread")

SETTINGS = attrs.evolve(MINI_SETTINGS, size=NATIVE, min_size=LOW, num_inference_steps=4)
CONFIGS = (Config(None), Config("resnet", 0.6), Config("latent", 0.6), Config("resnet", 1.0))
COUNT, BATCH = 7, 4  # two batches, the second one short


@pytest.fixture(scope="module")
def run(tiny_folder, tmp_path_factory):
    output = tmp_path_factory.mktemp("quality")
    return output, _evaluate(tiny_folder, output)


def test_default_configs_cover_plain_every_mode_and_the_sweep_once():
    configs = default_configs(0.6, (0.5, 0.6, 1.0))
    names = [c.name for c in configs]
    assert names == ["plain", "resnet@0.6", "latent@0.6", "pixel@0.6", "resnet@0.5", "resnet@1"]


def test_eval_captions_are_held_out_and_take_the_categories_in_turn():
    from lssgen.mini.train_data import TRAIN_DATA_SEED

    captions = eval_captions(12)
    assert [c.category for c in captions] == list(CATEGORIES) * 2
    assert EVAL_DATA_SEED != TRAIN_DATA_SEED
    held_out = [scene_for_index(EVAL_DATA_SEED, i)[0] for i in range(12)]
    assert all(scene != scene_for_index(TRAIN_DATA_SEED, i)[0] for i, scene in enumerate(held_out))


def test_every_config_wrote_every_image_and_each_batch_time(run):
    output, results = run
    for config in CONFIGS:
        for i in range(COUNT):
            with Image.open(image_path(output, config, i)) as image:
                assert image.size == (NATIVE, NATIVE)
        assert set(read_times(output, config)) == {"0", "4"}
    names = [row["name"] for row in results["configs"]]
    assert names == [c.name for c in CONFIGS]
    for name in ("results.json", "results.md", "chart.png", "samples.png"):
        assert (output / name).is_file()
    assert json.loads((output / "results.json").read_text())["count"] == COUNT
    assert str(output.parent) not in (output / "results.json").read_text()  # no machine path


def test_the_scores_are_the_evaluators_and_the_ratios_are_the_times(run):
    output, results = run
    rows = {row["name"]: row for row in results["configs"]}
    plain = rows["plain"]
    assert plain["speedup"] == 1.0 and plain["token_steps_ratio"] == 1.0
    assert plain["speedup_cpu"] == 1.0
    for row in rows.values():
        times = read_times(output, Config(row["mode"], row["start_sigma"])).values()
        wall, cpu = sum(t.wall for t in times), sum(t.cpu for t in times)
        assert row["seconds"] == pytest.approx(wall) and row["cpu_seconds"] == pytest.approx(cpu)
        assert row["speedup"] == pytest.approx(plain["seconds"] / wall)
        assert row["speedup_cpu"] == pytest.approx(plain["cpu_seconds"] / cpu)
        assert wall > 0 and cpu > 0
        assert 0.0 <= row["overall"] <= 1.0 and sum(row["count"].values()) == COUNT
    assert rows["resnet@0.6"]["token_steps_ratio"] < 1.0
    # The evaluator's ceiling: the prompts' own scenes pass.
    assert results["renders"]["overall"] == 1.0
    table = (output / "results.md").read_text()
    assert all(f"| {name} |" in table for name in [*rows, "renders"])


def test_start_sigma_one_is_the_stock_call_and_lss_differs(run):
    output, _ = run

    def pixels(config, i):
        return np.asarray(Image.open(image_path(output, config, i)))

    for i in range(COUNT):
        assert np.array_equal(pixels(Config("resnet", 1.0), i), pixels(Config(None), i))
    assert not np.array_equal(pixels(Config("resnet", 0.6), 0), pixels(Config(None), 0))


def test_every_row_has_its_intervals_and_the_paired_difference_from_plain(run):
    output, results = run
    rows = {row["name"]: row for row in results["configs"]}
    for row in [*rows.values(), results["renders"]]:
        low, high = row["overall_interval"]
        assert 0.0 <= low <= row["overall"] <= high <= 1.0
        for category, (low, high) in row["interval"].items():
            assert low <= row["per_category"][category] <= high
    # start_sigma=1 is the stock call: same images, so the paired difference is exactly zero.
    assert rows["resnet@1"]["difference"] == 0.0
    assert rows["resnet@1"]["difference_interval"] == (0.0, 0.0)
    assert rows["plain"]["difference_interval"] == (0.0, 0.0)
    table = (output / "results.md").read_text()
    assert "95% interval" in table and "| plain |" in table


def test_plain_at_fewer_steps_matches_each_lss_plans_cost(tiny_folder):
    from lssgen.mini.model import load_shipped_pipeline

    pipe = load_shipped_pipeline(tiny_folder)
    settings = attrs.evolve(SETTINGS, num_inference_steps=20)
    lss = [Config("resnet", 0.6), Config("latent", 0.6), Config("resnet", 0.4)]
    fewer = equal_cost_plain(pipe, settings, [Config(None), *lss])
    expected = {
        max(1, round(20 * pipe.lss_plan_for(**c.call(settings)).token_steps_ratio())) for c in lss
    }
    assert [c.steps for c in fewer] == sorted(expected, reverse=True)
    assert all(c.mode is None and c.steps < 20 for c in fewer)
    assert fewer[0].call(settings)["num_inference_steps"] == fewer[0].steps
    assert fewer[0].name == f"plain/{fewer[0].steps}steps"


def _evaluate(folder, output):
    """The evaluation of the fixture's folder; again, as a resumed command runs it."""
    return measure_quality(
        folder,
        output,
        count=COUNT,
        settings=SETTINGS,
        configs=CONFIGS,
        batch_size=BATCH,
        progress=False,
    )


def test_a_rerun_resumes_and_redoes_only_the_missing_batch(run, tiny_folder):
    output, _ = run
    config = Config("latent", 0.6)
    times = json.loads((output / config.name / "times.json").read_text())
    del times["4"]  # as if killed after the images of batch 4, before its time was recorded
    (output / config.name / "times.json").write_text(json.dumps(times))
    stamps = {
        (c, i): image_path(output, c, i).stat().st_mtime_ns for c in CONFIGS for i in range(COUNT)
    }
    _evaluate(tiny_folder, output)
    redone = {
        key for key, stamp in stamps.items() if image_path(output, *key).stat().st_mtime_ns != stamp
    }
    assert redone == {(config, i) for i in range(4, COUNT)}
    assert set(read_times(output, config)) == {"0", "4"}


def test_bad_arguments_are_refused_before_any_model_loads(capsys, tmp_path):
    for argument in (["--start-sigma", "0"], ["--sweep", "1.5"], ["--count", "0"]):
        with pytest.raises(SystemExit):
            main(["evaluate", "--output", str(tmp_path), "--model", str(tmp_path), *argument])
        assert argument[0] in capsys.readouterr().err


def test_the_probe_is_held_out_from_training_and_evaluation_and_scores_each_call(tiny_folder):
    from lssgen.mini.model import load_shipped_pipeline
    from lssgen.mini.probe import PROBE_DATA_SEED, probe, probe_calls
    from lssgen.mini.train_data import TRAIN_DATA_SEED

    assert PROBE_DATA_SEED not in (TRAIN_DATA_SEED, EVAL_DATA_SEED)
    pipe = load_shipped_pipeline(tiny_folder)
    pipe.set_progress_bar_config(disable=True)
    calls = probe_calls(SETTINGS)
    assert set(calls) == {f"plain{NATIVE}", f"plain{LOW}", "lss"}
    results = probe(pipe, calls=calls, count=6, names=[f"plain{LOW}", "lss"])
    assert list(results) == [f"plain{LOW}", "lss"]
    assert all(sum(r["count"].values()) == 6 for r in results.values())
    with pytest.raises(ValueError, match="unknown probe call"):
        probe(pipe, calls=calls, names=["plain9"])


def test_a_batch_timed_on_the_wall_clock_only_is_made_and_timed_again(run, tiny_folder):
    # Folders of an earlier version hold bare wall seconds; totals must cover both clocks over
    # the same batches, so such a batch counts as not done.
    output, _ = run
    config = Config("resnet", 0.6)
    times = json.loads((output / config.name / "times.json").read_text())
    times["0"] = times["0"]["wall"]
    (output / config.name / "times.json").write_text(json.dumps(times))
    assert set(read_times(output, config)) == {"4"}
    stamp = image_path(output, config, 0).stat().st_mtime_ns
    _evaluate(tiny_folder, output)
    assert image_path(output, config, 0).stat().st_mtime_ns != stamp
    assert set(read_times(output, config)) == {"0", "4"}
    assert set(json.loads((output / config.name / "times.json").read_text())["0"]) == {
        "wall",
        "cpu",
    }


def test_the_demo_and_the_evaluation_time_calls_of_the_same_size():
    from lssgen.mini.demo import DEMO_PROMPTS
    from lssgen.mini.quality import measure_quality as evaluate_function
    from lssgen.mini.timing import TIMING_BATCH

    assert len(DEMO_PROMPTS) == TIMING_BATCH
    default = inspect.signature(evaluate_function).parameters["batch_size"].default
    assert default == TIMING_BATCH
    parser = argparse.ArgumentParser()
    from lssgen.cli.evaluate import add_arguments

    add_arguments(parser)
    assert parser.parse_args(["--output", "x"]).batch_size == TIMING_BATCH
