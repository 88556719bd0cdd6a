"""The latent cache and the transformer stage: cached data, rectified-flow loss, exact resume."""

import json

import attrs
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mini_support import trained_weights

from lssgen.mini.train_latents import CacheConfig, build_cache, chunk_path, load_cache
from lssgen.mini.train_recipe import LoopConfig, run_loop, step_generator
from lssgen.mini.train_text import FAST_T5_TOKENS, STOCK_T5_TOKENS, TextConfig, build_text
from lssgen.mini.train_transformer import (
    FlowTask,
    FlowTrainConfig,
    TransformerArch,
    build_transformer,
    load_initial_weights,
)
from lssgen.mini.train_vae import VaeArch, build_vae
from lssgen.training.resume import ResumeError

CACHE = CacheConfig(count=6, sizes=(64, 32), chunk_size=4, encode_batch=3)
ARCH = TransformerArch(
    num_layers=1, num_attention_heads=2, attention_head_dim=8, sample_size=8, pos_embed_max_size=16
)
FLOW = FlowTrainConfig(arch=ARCH, low_res_fraction=0.5, stock_t5_fraction=0.3)
LOOP = LoopConfig(steps=4, batch_size=3, lr=1e-3, warmup_steps=1, ema_decay=0.9)


# Tiny tensors: one intra-op thread is faster and keeps kernels the same in every run.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def codec():
    from lssgen_diffusers.vae import VaeCodec

    vae = build_vae(VaeArch(block_out_channels=(8, 8, 8, 8), norm_num_groups=4), 0).eval()
    return VaeCodec.from_vae(vae)


@pytest.fixture(scope="module")
def cache_dir(codec, tmp_path_factory):
    folder = tmp_path_factory.mktemp("latents")
    assert build_cache(folder, CACHE, codec.encode, "vae-a") == 2
    return folder


@pytest.fixture(scope="module")
def text():
    return build_text(TextConfig(hidden_size=16, intermediate_size=32))


def transformer(text, seed=0):
    return build_transformer(
        ARCH,
        latent_channels=16,
        joint_attention_dim=text.joint_attention_dim,
        pooled_projection_dim=text.pooled_projection_dim,
        seed=seed,
    )


def test_the_cache_holds_both_sizes_and_the_captions(cache_dir, codec):
    from lssgen.mini.train_data import TRAIN_DATA_SEED, captions, render_batch

    cache = load_cache(cache_dir)
    assert len(cache) == 6 and cache.sizes == (64, 32)
    assert cache.latents[64].shape == (6, 16, 8, 8) and cache.latents[32].shape == (6, 16, 4, 4)
    assert cache.latents[64].dtype == torch.float16
    assert list(cache.captions) == captions(TRAIN_DATA_SEED, range(6))
    direct = codec.encode(render_batch(TRAIN_DATA_SEED, [5], 32))
    assert torch.allclose(cache.latents[32][5:6].float(), direct, atol=1e-2, rtol=1e-2)


def test_an_interrupted_cache_build_continues_and_other_settings_are_refused(
    cache_dir, codec, tmp_path
):
    before = chunk_path(cache_dir, 1).read_bytes()
    chunk_path(cache_dir, 1).unlink()  # as if the build had stopped before the last chunk
    assert build_cache(cache_dir, CACHE, codec.encode, "vae-a") == 1
    assert chunk_path(cache_dir, 1).read_bytes() == before
    with pytest.raises(ValueError, match="other settings or another VAE"):
        build_cache(cache_dir, CACHE, codec.encode, "vae-b")
    with pytest.raises(FileNotFoundError, match="latents"):
        load_cache(tmp_path)


def test_a_step_draws_sizes_captions_dropout_and_t5_lengths_from_its_generator(cache_dir, text):
    cache = load_cache(cache_dir)
    task = FlowTask(attrs.evolve(FLOW, caption_dropout=0.5), 3, cache, text, "t")
    draws = [task.batch(step_generator(0, step)) for step in range(40)]
    assert {x0.shape[-1] for x0, *_ in draws} == {8, 4}
    assert {t5 for *_, t5 in draws} == {FAST_T5_TOKENS, STOCK_T5_TOKENS}
    prompts = [p for *_, ps, _ in draws for p in ps]
    assert "" in prompts and set(prompts) - {""} <= set(cache.captions)
    t = torch.cat([t for _, t, *_ in draws])
    assert t.min() > 0 and t.max() < 1
    again = task.batch(step_generator(0, 7))
    assert all(torch.equal(a, b) for a, b in zip(again[:3], draws[7][:3]))


def test_a_low_resolution_step_draws_its_t_at_the_low_res_logit_mean(cache_dir, text):
    cache = load_cache(cache_dir)
    config = attrs.evolve(FLOW, logit_mean=2.0, low_res_logit_mean=-2.0)
    draws = [FlowTask(config, 3, cache, text, "t").batch(step_generator(0, s)) for s in range(40)]
    low = torch.cat([t for x0, t, *_ in draws if x0.shape[-1] == 4])
    native = torch.cat([t for x0, t, *_ in draws if x0.shape[-1] == 8])
    assert len(low) and len(native)
    # Medians sigmoid(-2) = 0.12 and sigmoid(2) = 0.88.
    assert float(low.median()) < 0.3 < 0.7 < float(native.median())


def test_a_few_steps_lower_the_flow_loss_on_a_fixed_batch(cache_dir, text):
    cache = load_cache(cache_dir)
    task = FlowTask(FLOW, 3, cache, text, "t")
    generator_state = step_generator(123, 0).get_state()

    def loss(net):
        generator = torch.Generator()
        generator.set_state(generator_state)
        with torch.no_grad():
            return float(task.loss(net, 0, generator)[0])

    before = loss(transformer(text))
    result = run_loop(transformer(text), task, LOOP)
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert loss(result.model) < before


def test_k_plus_k_steps_resume_to_the_weights_of_2k(cache_dir, text, tmp_path):
    cache = load_cache(cache_dir)
    task = FlowTask(FLOW, 3, cache, text, "t")
    straight = run_loop(transformer(text), task, LOOP)
    run_loop(transformer(text), task, attrs.evolve(LOOP, steps=2), checkpoint_dir=tmp_path)
    resumed = run_loop(transformer(text, 5), task, LOOP, checkpoint_dir=tmp_path, resume=True)
    assert resumed.losses == straight.losses[2:]
    a, b = trained_weights(resumed), trained_weights(straight)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Extending a finished run is allowed (constant LR); other data is not.
    longer = run_loop(
        transformer(text), task, attrs.evolve(LOOP, steps=5), checkpoint_dir=tmp_path, resume=True
    )
    assert (longer.start_step, longer.step) == (4, 5)
    other_text = FlowTask(FLOW, 3, cache, text, "another text fingerprint")
    with pytest.raises(ResumeError, match="text"):
        run_loop(transformer(text), other_text, LOOP, checkpoint_dir=tmp_path, resume=True)
    identity = json.loads((tmp_path / "training_state.json").read_text())["info"]["identity"]
    assert identity["task"]["latents"] == cache.fingerprint


def test_low_resolution_training_needs_two_cached_sizes(codec, text, tmp_path):
    build_cache(tmp_path, attrs.evolve(CACHE, sizes=(64,), count=2), codec.encode, "v")
    one_size = load_cache(tmp_path)
    with pytest.raises(ValueError, match="two sizes"):
        FlowTask(FLOW, 3, one_size, text, "t")
    FlowTask(attrs.evolve(FLOW, low_res_fraction=0.0), 3, one_size, text, "t")


def test_a_warm_start_copies_every_weight_and_refuses_another_architecture(text, tmp_path):
    saved = transformer(text, seed=1)
    saved.save_pretrained(tmp_path / "saved")
    fresh = transformer(text, seed=2)
    assert not torch.equal(fresh.pos_embed.proj.weight, saved.pos_embed.proj.weight)
    load_initial_weights(fresh, tmp_path / "saved")
    for name, tensor in saved.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor), name
    wider = build_transformer(
        attrs.evolve(ARCH, attention_head_dim=16),
        latent_channels=16,
        joint_attention_dim=text.joint_attention_dim,
        pooled_projection_dim=text.pooled_projection_dim,
        seed=0,
    )
    with pytest.raises(ValueError, match="does not match the transformer's architecture"):
        load_initial_weights(wider, tmp_path / "saved")


def test_a_warm_started_run_does_not_resume_a_fresh_one(cache_dir, text, tmp_path):
    cache = load_cache(cache_dir)
    fresh = FlowTask(FLOW, 3, cache, text, "text-a")
    warm = FlowTask(FLOW, 3, cache, text, "text-a", init_fingerprint="weights-b")
    run_loop(transformer(text), fresh, attrs.evolve(LOOP, steps=1), checkpoint_dir=tmp_path)
    with pytest.raises(ResumeError):
        run_loop(transformer(text), warm, LOOP, checkpoint_dir=tmp_path, resume=True)


def test_prefixes_come_in_geneval_style_and_leave_runs_without_them_unchanged(cache_dir, text):
    from lssgen.mini.captions import PREFIXES, parse_caption

    cache = load_cache(cache_dir)
    plain = FlowTask(FLOW, 3, cache, text, "text-a")
    always = FlowTask(attrs.evolve(FLOW, prefix_fraction=1.0), 3, cache, text, "text-a")
    for step in range(6):
        *tensors, prompts, tokens = plain.batch(step_generator(0, step))
        *same, prefixed, same_tokens = always.batch(step_generator(0, step))
        assert all(torch.equal(a, b) for a, b in zip(tensors, same)) and tokens == same_tokens
        for caption, text_with_prefix in zip(prompts, prefixed):
            if caption:  # the empty caption of guidance dropout stays empty
                assert any(text_with_prefix == p + caption for p in PREFIXES)
                assert parse_caption(text_with_prefix) == parse_caption(caption)
            else:
                assert text_with_prefix == ""


def _transformer_flags(*flags: str):
    import argparse

    from lssgen.cli import train_mini

    parser = argparse.ArgumentParser()
    train_mini.add_arguments(parser)
    return parser.parse_args(["transformer", "--work", "w", *flags])


def test_the_logit_flags_reach_the_timestep_draws():
    from lssgen.cli.train_mini import flow_config
    from lssgen.mini.train_transformer import sample_t

    _, default = flow_config(_transformer_flags(), sample_size=8)
    _, noisier = flow_config(_transformer_flags("--logit-mean", "1.5"), sample_size=8)
    assert (default.logit_mean, noisier.logit_mean) == (0.0, 1.5)
    base = sample_t(default, 4096, torch.Generator().manual_seed(0))
    shifted = sample_t(noisier, 4096, torch.Generator().manual_seed(0))
    # Same normal draws, shifted in logit space: every t is noisier, the median is sigmoid(1.5).
    assert bool((shifted > base).all())
    assert abs(float(shifted.median()) - float(torch.sigmoid(torch.tensor(1.5)))) < 0.02


def test_a_non_positive_logit_spread_is_refused_naming_its_flag():
    from lssgen.cli.common import UsageError
    from lssgen.cli.train_mini import flow_config

    with pytest.raises(UsageError, match="--logit-std"):
        flow_config(_transformer_flags("--logit-std", "0"), sample_size=8)


@settings(max_examples=50, deadline=None)
@given(
    low=st.floats(-3, 3),
    gap=st.floats(0.01, 3),
    spread=st.floats(0.1, 3),
    seed=st.integers(0, 2**31 - 1),
)
def test_a_larger_logit_mean_draws_every_t_noisier(low, gap, spread, seed):
    from lssgen.mini.train_transformer import sample_t

    def draws(mean: float) -> torch.Tensor:
        config = attrs.evolve(FLOW, logit_mean=mean, logit_std=spread)
        return sample_t(config, 64, torch.Generator().manual_seed(seed))

    lower, higher = draws(low), draws(low + gap)
    assert bool((higher >= lower).all())


def test_low_res_steps_draw_t_with_their_own_logit_mean():
    from lssgen.cli.train_mini import flow_config
    from lssgen.mini.train_transformer import sample_t

    flags = ("--logit-mean", "1.0", "--low-res-logit-mean", "0.31")
    _, config = flow_config(_transformer_flags(*flags), sample_size=8)
    assert (config.logit_mean, config.low_res_logit_mean) == (1.0, 0.31)

    def draws(config, low_res):
        return sample_t(config, 256, torch.Generator().manual_seed(3), low_res=low_res)

    at = {mean: draws(attrs.evolve(FLOW, logit_mean=mean), False) for mean in (1.0, 0.31)}
    assert torch.equal(draws(config, False), at[1.0])
    assert torch.equal(draws(config, True), at[0.31])
    # Unset, the low-resolution steps draw as the native ones do (runs before the flag existed).
    unset = attrs.evolve(config, low_res_logit_mean=None)
    assert torch.equal(draws(unset, True), at[1.0])


def test_the_low_res_logit_mean_enters_the_identity_only_when_set():
    from lssgen.mini.train_transformer import recipe_identity

    assert "low_res_logit_mean" not in recipe_identity(FLOW)  # older checkpoints still resume
    assert recipe_identity(attrs.evolve(FLOW, low_res_logit_mean=0.3))["low_res_logit_mean"] == 0.3
    assert recipe_identity(FLOW) == {
        k: v for k, v in attrs.asdict(FLOW).items() if k != "low_res_logit_mean"
    }


@settings(max_examples=50, deadline=None)
@given(
    native=st.floats(-3, 3),
    low=st.floats(-3, 3),
    spread=st.floats(0.1, 3),
    seed=st.integers(0, 2**31 - 1),
)
def test_low_res_draws_are_the_native_rule_at_their_own_mean(native, low, spread, seed):
    from lssgen.mini.train_transformer import sample_t

    config = attrs.evolve(FLOW, logit_mean=native, low_res_logit_mean=low, logit_std=spread)
    alone = attrs.evolve(FLOW, logit_mean=low, logit_std=spread)
    got = sample_t(config, 32, torch.Generator().manual_seed(seed), low_res=True)
    want = sample_t(alone, 32, torch.Generator().manual_seed(seed))
    assert torch.equal(got, want)
    assert bool(((got >= 0) & (got <= 1)).all())
