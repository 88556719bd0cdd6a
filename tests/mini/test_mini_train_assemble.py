"""`lssgen mini` end to end at tiny sizes: every stage through the CLI, then the assembled folder
loads offline with `LSSStableDiffusion3Pipeline.from_pretrained` and generates with and without
LSS; plus the size budget of the shipped configuration."""

import json

import pytest
import torch
from mini_support import LOW, NATIVE, mini

from lssgen.mini.train_assemble import MANIFEST_NAME, SIZE_BUDGET_BYTES
from lssgen.mini.train_text import (
    CALL_KWARGS,
    FAST_T5_TOKENS,
    STOCK_T5_TOKENS,
    encode_prompts,
    load_text,
)

PROMPT = "a red circle to the left of a blue star"


# Tiny tensors: one intra-op thread is faster and keeps kernels the same in every run.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tiny_folder):
    return tiny_folder


@pytest.fixture(scope="module")
def work(tiny_work, folder):
    return tiny_work  # after `folder`: a test here extends the transformer's training


@pytest.fixture(scope="module")
def pipe(folder):
    from lssgen_diffusers import LSSStableDiffusion3Pipeline

    return LSSStableDiffusion3Pipeline.from_pretrained(folder)  # plain: no extra arguments


def generate(pipe, **lss):
    generator = torch.Generator().manual_seed(0)
    return pipe(
        PROMPT,
        height=NATIVE,
        width=NATIVE,
        num_inference_steps=4,
        guidance_scale=2.0,
        output_type="np",
        generator=generator,
        **CALL_KWARGS,
        **lss,
    ).images


def test_every_stage_left_its_output(work):
    for name in ("text/text_encoder", "vae", "transformer", "upsampler"):
        assert (work / name / "config.json").is_file(), name
    assert len(list((work / "images").glob("*.png"))) == 2
    summary = json.loads((work / "vae" / "lssgen_mini_training.json").read_text())
    assert summary["steps_done"] == 2 and summary["scaling_factor"] > 0


def test_the_folder_loads_offline_and_generates_with_lss_on_and_off(pipe):
    assert pipe.transformer.dtype == torch.float32  # stored fp16, loaded as fp32 on CPU
    assert pipe.latent_upsampler is not None
    plan = pipe.lss_plan_for(height=NATIVE, width=NATIVE, num_inference_steps=4, min_size=LOW)
    assert len(plan.stages) == 2
    plain = generate(pipe, min_size=NATIVE)
    lss = generate(pipe, min_size=LOW, scaling_mode="resnet")
    for images in (plain, lss):
        assert (
            images.shape == (1, NATIVE, NATIVE, 3)
            and torch.isfinite(torch.from_numpy(images)).all()
        )
    assert not (plain == lss).all()


def test_the_pipeline_encodes_prompts_exactly_as_training_did(pipe, work):
    text = load_text(work / "text")
    prompts = [PROMPT, ""]
    for tokens in (FAST_T5_TOKENS, STOCK_T5_TOKENS):
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompts, None, None, do_classifier_free_guidance=False, max_sequence_length=tokens
        )
        expected = encode_prompts(text, prompts, tokens)
        assert torch.equal(embeds, expected[0]) and torch.equal(pooled, expected[1])


def test_the_stock_pipeline_loads_it_too_and_the_manifest_records_it(folder):
    from diffusers import StableDiffusion3Pipeline

    stock = StableDiffusion3Pipeline.from_pretrained(folder)
    assert stock.scheduler.config.shift == 1.0
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["call_kwargs"] == CALL_KWARGS
    assert set(manifest["fingerprints"]) == {"text", "vae", "transformer", "upsampler"}
    sizes = manifest["sizes_bytes"]
    assert set(sizes) >= {"transformer", "vae", "text_encoder", "latent_upsampler"}


def test_training_stages_refuse_to_overwrite_a_checkpoint_without_resume(work, capsys):
    net = ["--layers", 1, "--heads", 2, "--head-dim", 8, "--batch-size", 2, "--warmup-steps", 1]
    assert mini("transformer", "--work", work, "--steps", 2, *net) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert mini("transformer", "--work", work, "--steps", 3, "--resume", *net[:-1], 9) == 2
    assert "warmup_steps: checkpoint 1, now 9" in capsys.readouterr().err
    # Resuming a finished run with more steps extends it.
    assert mini("transformer", "--work", work, "--steps", 3, "--resume", *net) == 0
    summary = json.loads((work / "transformer" / "lssgen_mini_training.json").read_text())
    assert summary["steps_done"] == 3


def test_the_shipped_configuration_fits_the_size_budget():
    from lssgen.mini.train_text import TextConfig, build_text
    from lssgen.mini.train_transformer import TransformerArch, build_transformer
    from lssgen.mini.train_vae import VaeArch, build_vae
    from lssgen.training.train import default_upsampler_config, init_upsampler

    def count(module):
        return sum(t.numel() for t in module.state_dict().values())

    text = build_text(TextConfig())
    transformer = build_transformer(
        TransformerArch(),
        latent_channels=16,
        joint_attention_dim=text.joint_attention_dim,
        pooled_projection_dim=text.pooled_projection_dim,
        seed=0,
    )
    half = count(transformer) + count(build_vae(VaeArch(), 0))
    single = count(init_upsampler(default_upsampler_config(16), 0)) + sum(
        count(e) for e in (text.text_encoder, text.text_encoder_2, text.text_encoder_3)
    )
    assert 2 * half + 4 * single < SIZE_BUDGET_BYTES


def test_held_out_renders_come_from_another_data_seed_into_another_folder(work, tmp_path):
    held_out = tmp_path / "held-out"
    args = ["--count", 2, "--size", NATIVE, "--data-seed", 5, "--output", held_out]
    assert mini("images", "--work", work, *args) == 0
    names = sorted(p.name for p in held_out.glob("*.png"))
    assert names == sorted(p.name for p in (work / "images").glob("*.png"))
    assert all((held_out / n).read_bytes() != (work / "images" / n).read_bytes() for n in names)


def test_the_folder_names_no_path_of_the_training_machine(work, folder):
    # Configs written by Diffusers record `_name_or_path`, and the training summaries the work
    # folder: a shipped folder must not carry either.
    for path in folder.rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        assert str(work) not in text, path
        assert "_name_or_path" not in text, path
