"""The VAE stage and the shared loop: learns, resumes bit for bit, refuses changed settings."""

import json

import attrs
import pytest
import torch
from mini_support import trained_weights

from lssgen.mini.train_recipe import LoopConfig, run_loop, step_generator
from lssgen.mini.train_vae import (
    VaeArch,
    VaeTask,
    VaeTrainConfig,
    build_vae,
    encode_mode,
    finish_vae,
)
from lssgen.training.checkpoint import read_training_info
from lssgen.training.resume import ResumeError

TINY = VaeTrainConfig(
    arch=VaeArch(block_out_channels=(8, 8, 8, 8), norm_num_groups=4), crop=32, render_sizes=(32, 64)
)
LOOP = LoopConfig(steps=4, batch_size=2, lr=1e-3, warmup_steps=1, ema_decay=0.9)


# Tiny tensors: one intra-op thread is faster and keeps kernels the same in every run.
pytestmark = pytest.mark.usefixtures("one_thread")


def task(config=TINY, batch_size=LOOP.batch_size):
    return VaeTask(config, batch_size)


def state(result):
    return {k: v.clone() for k, v in trained_weights(result).items()}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_batches_are_crops_in_range_and_depend_only_on_seed_and_step():
    first = task().images(3, step_generator(0, 3))
    again = task().images(3, step_generator(0, 3))
    other = task().images(4, step_generator(0, 4))
    assert first.shape == (2, 3, 32, 32)
    assert first.min() >= -1 and first.max() <= 1
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_a_few_steps_lower_the_reconstruction_loss():
    vae = build_vae(TINY.arch, 0)
    images = task().images(0, step_generator(LOOP.seed, 0))

    def l1(model):
        with torch.no_grad():
            return float((model.decode(encode_mode(model, images)).sample - images).abs().mean())

    before = l1(vae)
    result = run_loop(build_vae(TINY.arch, 0), task(), LOOP)
    assert len(result.losses) == LOOP.steps
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert l1(result.model) < before


def test_k_plus_k_steps_resume_to_the_weights_of_2k(tmp_path):
    straight = run_loop(build_vae(TINY.arch, 0), task(), LOOP)
    first = run_loop(
        build_vae(TINY.arch, 0), task(), attrs.evolve(LOOP, steps=2), checkpoint_dir=tmp_path
    )
    assert first.step == 2 and read_training_info(tmp_path)["step"] == 2
    resumed = run_loop(
        build_vae(TINY.arch, 7),  # other initial weights: the checkpoint must replace them
        task(),
        LOOP,
        checkpoint_dir=tmp_path,
        resume=True,
    )
    assert (resumed.start_step, resumed.step) == (2, 4)
    assert resumed.losses == straight.losses[2:]
    assert_same_state(state(resumed), state(straight))


def test_interrupting_checkpoints_and_resume_refuses_other_settings(tmp_path):
    stopped = run_loop(
        build_vae(TINY.arch, 0), task(), LOOP, checkpoint_dir=tmp_path, should_stop=lambda: True
    )
    assert stopped.interrupted and stopped.step == 1
    info = json.loads((tmp_path / "training_state.json").read_text())
    assert info["step"] == 1 and "steps" not in info["info"]["identity"]["loop"]
    with pytest.raises(ResumeError, match="kl_weight"):
        changed = VaeTrainConfig(arch=TINY.arch, crop=32, render_sizes=(32, 64), kl_weight=1.0)
        run_loop(build_vae(TINY.arch, 0), task(changed), LOOP, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ResumeError, match="no training checkpoint"):
        run_loop(build_vae(TINY.arch, 0), task(), LOOP, checkpoint_dir=tmp_path / "x", resume=True)


def test_finishing_stores_latent_statistics_that_normalise_the_latents():
    vae = run_loop(build_vae(TINY.arch, 0), task(), LOOP).ema
    stats = finish_vae(vae, stats_count=8, size=64)
    assert vae.config.shift_factor == stats["shift_factor"]
    assert vae.config.scaling_factor == stats["scaling_factor"]
    assert stats["psnr_db"] > 0
    from lssgen.mini.train_data import TRAIN_DATA_SEED, render_batch
    from lssgen_diffusers.vae import VaeCodec

    latents = VaeCodec.from_vae(vae).encode(render_batch(TRAIN_DATA_SEED, range(8), 64))
    assert abs(float(latents.mean())) < 1e-4
    assert float(latents.std()) == pytest.approx(1.0, rel=1e-3)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="multiple of 8"):
        VaeTrainConfig(crop=36)
    with pytest.raises(ValueError, match="render_sizes"):
        VaeTrainConfig(crop=128, render_sizes=(64,))
    with pytest.raises(ValueError, match="steps"):
        LoopConfig(steps=0)
