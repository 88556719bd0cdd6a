"""`lssgen mini <stage>`: train and assemble lssgen-mini, one resumable stage at a time.

    lssgen mini text        --work W                  # tokenizers + frozen text encoders
    lssgen mini vae         --work W --steps N        # AutoencoderKL on renders (resumable)
    lssgen mini latents     --work W --count N        # cache VAE latents (continues if stopped)
    lssgen mini transformer --work W --steps N        # SD3 transformer, rectified flow (resumable)
    lssgen mini images      --work W --count N        # PNG renders for the upsampler
    lssgen train-upsampler  --vae W/vae --images W/images --output W/upsampler --size 128 ...
    lssgen mini assemble    --work W --output DIR     # the pipeline folder (fp16)
    lssgen mini budget                                # measure s/step, plan a time budget

Training stages checkpoint every `--checkpoint-every` steps into W/checkpoints/<stage>; Ctrl-C
(or SIGTERM) finishes the step, checkpoints and exits 130; the same command with `--resume`
continues bit for bit, and `--resume --steps <more>` extends a finished run. See
lssgen/mini/README.md for the budget and the full command sequence.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import attrs
import torch
from tqdm.auto import tqdm

from lssgen.cli.common import (
    EXIT_INTERRUPTED,
    HelpFormatter,
    UsageError,
    add_config_flags,
    add_loop_arguments,
    blame,
    blame_field,
    check_checkpoints,
    config_from_args,
    finite_float,
    non_negative_int,
    positive_int,
    run_command,
    train_with_progress,
    training_accelerator,
)
from lssgen.dtypes import TORCH_DTYPES
from lssgen.mini.train_assemble import SIZE_BUDGET_BYTES, assemble
from lssgen.mini.train_budget import markdown_table, measure, plan
from lssgen.mini.train_data import write_images
from lssgen.mini.train_latents import CacheConfig, build_cache, load_cache
from lssgen.mini.train_recipe import LoopConfig, exported, run_loop
from lssgen.mini.train_text import TextConfig, build_text, load_text
from lssgen.mini.train_transformer import (
    TIMESTEP_SAMPLING,
    FlowTask,
    FlowTrainConfig,
    TransformerArch,
    build_transformer,
    load_initial_weights,
)
from lssgen.mini.train_vae import (
    NATIVE_SIZE,
    VaeArch,
    VaeTask,
    VaeTrainConfig,
    build_vae,
    finish_vae,
)
from lssgen.mini.train_work import SUMMARY_NAME, Workdir, fingerprint, publish_folder
from lssgen.training.loop import TrainResult
from lssgen_core.atomic import write_json_atomic
from lssgen_core.upsample.io import CONFIG_NAME
from lssgen_diffusers.vae import load_vae


def _common(parser: argparse.ArgumentParser, *, work: bool = True) -> None:
    parser.formatter_class = HelpFormatter
    if work:
        parser.add_argument("--work", required=True, help="work folder shared by all stages")
    parser.add_argument(
        "--threads", type=non_negative_int, default=0, help="torch CPU threads (0: torch's default)"
    )


# The wording of the loop flags for lssgen-mini's stages (`add_loop_arguments`).
MINI_LOOP_WORDING = {
    "batch_size": "samples per step",
    "lr": "AdamW learning rate, constant after the warm-up",
    "seed": "initial weights and data draws",
    "dtype": "bf16: bf16 autocast; weights stay fp32",
}


def _loop_arguments(parser: argparse.ArgumentParser, defaults: LoopConfig) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (accelerate's GPU)")
    add_loop_arguments(
        parser,
        defaults,
        MINI_LOOP_WORDING,
        checkpoint_every=100,
        checkpoints="WORK/checkpoints/<stage>",
    )
    schedule = {
        "warmup_steps": (non_negative_int, "linear LR"),
        "ema_decay": (finite_float, "EMA of the exported weights"),
    }
    add_config_flags(parser, defaults, schedule)


def _channels(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text}")
    return values


VAE_LOOP = LoopConfig(steps=2000, batch_size=8, lr=3e-4, warmup_steps=100)
FLOW_LOOP = LoopConfig(steps=4000, batch_size=16, lr=2e-4, warmup_steps=200)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    stages = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)

    text = stages.add_parser("text", help="build the tokenizers and frozen text encoders")
    _common(text)
    text.add_argument("--seed", type=non_negative_int, default=0, help="encoder weights")
    text.add_argument("--hidden-size", type=positive_int, default=64, help="CLIP width")
    text.add_argument("--overwrite", action="store_true", help="replace an existing WORK/text")

    vae = stages.add_parser("vae", help="train the AutoencoderKL on renders")
    _common(vae)
    _loop_arguments(vae, VAE_LOOP)
    vae_defaults = VaeTrainConfig()
    add_config_flags(vae, vae_defaults, {"crop": (positive_int, "training crop, pixels")})
    vae.add_argument(
        "--size",
        type=positive_int,
        default=NATIVE_SIZE,
        help="native size: scenes render at it and half of it; latent statistics at it",
    )
    vae.add_argument(
        "--channels",
        type=_channels,
        default=vae_defaults.arch.block_out_channels,
        help="block widths, e.g. 16,32",
    )
    add_config_flags(vae, vae_defaults, {"kl_weight": (finite_float, "KL term (summed per image)")})
    vae.add_argument(
        "--stats-count", type=positive_int, default=128, help="renders for the latent statistics"
    )

    latents = stages.add_parser("latents", help="cache VAE latents of renders for the transformer")
    _common(latents)
    latents.add_argument("--count", type=positive_int, default=8192, help="scenes")
    latents.add_argument("--size", type=positive_int, default=256, help="native size, pixels")
    latents.add_argument("--low-size", type=positive_int, default=128, help="LSS first stage")
    latents.add_argument("--chunk-size", type=positive_int, default=256, help="scenes per file")

    flow = stages.add_parser("transformer", help="train the SD3 transformer (rectified flow)")
    _common(flow)
    _loop_arguments(flow, FLOW_LOOP)
    flow.add_argument("--layers", type=positive_int, default=6, help="joint blocks")
    flow.add_argument("--heads", type=positive_int, default=3, help="attention heads")
    flow.add_argument("--head-dim", type=positive_int, default=64, help="width per head")
    # SD3's paper (Esser et al. 2024) weights training toward noisier t with a positive logit
    # mean (--logit-mean); lssgen-mini v2 pilots use it to make the model read its text at high
    # noise.
    flags = {
        "low_res_fraction": (finite_float, "steps at the LSS first-stage size"),
        "caption_dropout": (finite_float, "empty captions (for guidance)"),
        "timesteps": (TIMESTEP_SAMPLING, "distribution of t"),
        "logit_mean": (finite_float, "logit_normal: mean of logit(t) (> 0 draws noisier t)"),
        "logit_std": (finite_float, "logit_normal: spread of logit(t) (> 0)"),
        "low_res_logit_mean": (
            finite_float,
            "logit_normal: mean of logit(t) at the LSS first-stage size (default: --logit-mean; "
            "SD3's resolution shift gives --logit-mean minus ln 2 for half the side)",
        ),
        "prefix_fraction": (
            finite_float,
            'captions behind a GenEval-style prefix ("a photo of ...")',
        ),
    }
    flow_defaults = FlowTrainConfig()
    add_config_flags(flow, flow_defaults, flags)
    flow.add_argument(
        "--init-from",
        default=None,
        help="start from this saved transformer folder (a warm start, e.g. the shipped model's)",
    )
    stock_t5 = "steps with the pipeline's default 256 T5 tokens instead of 1"
    add_config_flags(flow, flow_defaults, {"stock_t5_fraction": (finite_float, stock_t5)})

    images = stages.add_parser("images", help="write PNG renders for lssgen train-upsampler")
    _common(images)
    images.add_argument("--count", type=positive_int, default=2048, help="renders")
    images.add_argument("--size", type=positive_int, default=256, help="pixels")
    images.add_argument(
        "--data-seed",
        type=non_negative_int,
        default=None,
        help="scenes of this dataset seed (default: the training data's)",
    )
    images.add_argument("--output", default=None, help="folder (default: WORK/images)")

    assemble = stages.add_parser("assemble", help="write the pipeline folder")
    _common(assemble)
    assemble.add_argument("--output", required=True, help="pipeline folder to write")
    assemble.add_argument("--shift", type=finite_float, default=1.0, help="scheduler shift")
    assemble.add_argument("--dtype", choices=("fp16", "fp32"), default="fp16", help="weights")
    assemble.add_argument(
        "--upsampler", help="LatentUpsampler folder (default: WORK/upsampler if it exists)"
    )
    assemble.add_argument("--no-upsampler", action="store_true", help="ship without one")

    budget = stages.add_parser("budget", help="measure seconds per step and plan a time budget")
    _common(budget, work=False)
    budget.add_argument(
        "--measure-steps", type=positive_int, default=2, help="timed steps per measurement"
    )
    budget.add_argument(
        "--speedup", type=finite_float, default=1.7, help="assumed speed-up of the training threads"
    )
    budget.add_argument("--json", help="also write the measurements here")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    return run_command(f"lssgen mini {args.stage}", lambda: int(_RUNNERS[args.stage](args)))


# ------------------------------------------------------------------------------------------
# Shared by the training stages
# ------------------------------------------------------------------------------------------


def _train(
    stage: str,
    net: torch.nn.Module,
    task: Any,
    args: argparse.Namespace,
    checkpoints: Path,
    accelerator: Any,
) -> TrainResult[Any] | None:
    """Run the loop on `accelerator` with progress and Ctrl-C handling (`train_with_progress`);
    None when interrupted (the checkpoint is written)."""
    config = config_from_args(LoopConfig, args)
    return train_with_progress(
        lambda options: run_loop(net, task, config, **options),
        args,
        accelerator=accelerator,
        checkpoints=checkpoints,
        desc=f"mini {stage}",
        product=stage,
    )


def _summary(result: TrainResult[Any], config: Any, **extra: Any) -> dict[str, Any]:
    return {
        "config": attrs.asdict(config) if attrs.has(type(config)) else config,
        "steps_done": result.step,
        "last_losses": result.losses[-10:],
        "final_loss_ema": result.loss_ema,
        "seconds_per_step": result.seconds_per_step,
        "threads": torch.get_num_threads(),
        **extra,
    }


def _publish_model(target: Path, model: Any, summary: dict[str, Any]) -> None:
    def write(folder: Path) -> None:
        model.to("cpu").save_pretrained(folder)
        write_json_atomic(folder / SUMMARY_NAME, summary)

    publish_folder(target, write)


# ------------------------------------------------------------------------------------------
# Stages
# ------------------------------------------------------------------------------------------


def _run_text(args: argparse.Namespace) -> int:

    work = Workdir(args.work)
    if work.text.exists() and not args.overwrite:
        raise UsageError("--work", f"{work.text} exists; pass --overwrite to rebuild it")
    config = TextConfig(seed=args.seed, hidden_size=args.hidden_size)
    text = build_text(config)

    def write(folder: Path) -> None:
        text.save(folder)
        write_json_atomic(folder / SUMMARY_NAME, {"config": attrs.asdict(config)})

    publish_folder(work.text, write)
    print(f"Wrote the text components to {work.text}.", file=sys.stderr)
    return 0


def _run_vae(args: argparse.Namespace) -> int:

    work = Workdir(args.work)
    checkpoints = work.checkpoints("vae")
    check_checkpoints(checkpoints, args.resume, folder_argument="--work")
    with blame_field():
        config = VaeTrainConfig(
            arch=VaeArch(block_out_channels=args.channels),
            crop=args.crop,
            render_sizes=(args.size // 2, args.size),
            kl_weight=args.kl_weight,
        )
    task = VaeTask(config, args.batch_size)
    accelerator = training_accelerator(args.device)
    net = build_vae(config.arch, args.seed)
    result = _train("vae", net, task, args, checkpoints, accelerator)
    if result is None:
        return EXIT_INTERRUPTED
    vae = exported(result).to("cpu")
    stats = finish_vae(vae, stats_count=args.stats_count, size=args.size)
    _publish_model(work.vae, vae, _summary(result, config, loop=vars_of(args), **stats))
    print(
        f"Saved the VAE to {work.vae}: held-out PSNR {stats['psnr_db']:.2f} dB, "
        f"shift {stats['shift_factor']:.4f}, scaling {stats['scaling_factor']:.4f}.",
        file=sys.stderr,
    )
    return 0


def _run_latents(args: argparse.Namespace) -> int:

    work = Workdir(args.work)
    with blame("--work"):
        codec = load_vae(work.vae)
    with blame_field():
        config = CacheConfig(
            count=args.count, sizes=(args.size, args.low_size), chunk_size=args.chunk_size
        )
    with tqdm(total=config.num_chunks, unit="chunk", desc="mini latents") as bar:

        def advance(done: int, _total: int) -> None:
            bar.update(done - bar.n)

        with blame("--work"):
            written = build_cache(
                work.latents, config, codec.encode, fingerprint(work.vae), advance
            )
    print(
        f"Latent cache {work.latents}: {written} new chunk(s) of {config.num_chunks}.",
        file=sys.stderr,
    )
    return 0


def flow_config(
    args: argparse.Namespace, sample_size: int
) -> tuple[TransformerArch, FlowTrainConfig]:
    """The transformer's architecture and training recipe from ``mini transformer``'s flags."""
    arch = config_from_args(
        TransformerArch,
        args,
        num_layers=args.layers,
        num_attention_heads=args.heads,
        attention_head_dim=args.head_dim,
        sample_size=sample_size,
    )
    return arch, config_from_args(FlowTrainConfig, args, arch=arch)


def _run_transformer(args: argparse.Namespace) -> int:

    work = Workdir(args.work)
    checkpoints = work.checkpoints("transformer")
    check_checkpoints(checkpoints, args.resume, folder_argument="--work")
    with blame("--work"):
        text = load_text(work.text)
        cache = load_cache(work.latents)
    native = cache.sizes[0]
    arch, config = flow_config(args, sample_size=int(cache.latents[native].shape[-1]))
    net = build_transformer(
        arch,
        latent_channels=int(cache.latents[native].shape[1]),
        joint_attention_dim=text.joint_attention_dim,
        pooled_projection_dim=text.pooled_projection_dim,
        seed=args.seed,
    )
    init = None
    if args.init_from is not None:
        with blame("--init-from"):
            load_initial_weights(net, args.init_from)
        init = fingerprint(args.init_from)
    accelerator = training_accelerator(args.device)
    task = FlowTask(
        config, args.batch_size, cache, text.to(accelerator.device), fingerprint(work.text), init
    )
    result = _train("transformer", net, task, args, checkpoints, accelerator)
    if result is None:
        return EXIT_INTERRUPTED
    _publish_model(work.transformer, exported(result), _summary(result, config, loop=vars_of(args)))
    print(f"Saved the transformer (EMA) to {work.transformer}.", file=sys.stderr)
    return 0


def _run_images(args: argparse.Namespace) -> int:
    folder = Path(args.output) if args.output else Workdir(args.work).images
    seed = {} if args.data_seed is None else {"seed": args.data_seed}
    with tqdm(total=args.count, unit="image", desc="mini images") as bar:
        written = write_images(
            folder,
            count=args.count,
            size=args.size,
            on_image=lambda n: bar.update(n - bar.n),
            **seed,
        )
    print(f"{folder}: {written} new render(s), {args.count} in all.", file=sys.stderr)
    return 0


def _run_assemble(args: argparse.Namespace) -> int:

    work = Workdir(args.work)
    upsampler = None
    if args.upsampler and args.no_upsampler:
        raise UsageError("--no-upsampler", "not allowed with --upsampler")
    if args.upsampler:
        upsampler = Path(args.upsampler)
    elif not args.no_upsampler and (work.upsampler / CONFIG_NAME).is_file():
        upsampler = work.upsampler
    dtype = TORCH_DTYPES[args.dtype]
    with blame("--work"):
        sizes = assemble(work, args.output, upsampler=upsampler, shift=args.shift, dtype=dtype)
    total = sum(sizes.values())
    for name, size in sizes.items():
        print(f"  {name:<16} {size / 2**20:7.2f} MiB", file=sys.stderr)
    print(f"  {'total':<16} {total / 2**20:7.2f} MiB -> {args.output}", file=sys.stderr)
    if upsampler is None:
        print("  (no latent_upsampler: scaling_mode='resnet' needs one)", file=sys.stderr)
    if total > SIZE_BUDGET_BYTES:
        print(f"warning: over the {SIZE_BUDGET_BYTES / 2**20:.0f} MiB budget", file=sys.stderr)
    return 0


def _run_budget(args: argparse.Namespace) -> int:

    measured = measure(args.measure_steps)
    plans = plan(measured, speedup=args.speedup)
    print(markdown_table(measured, plans, torch.get_num_threads(), args.speedup))
    if args.json:
        write_json_atomic(
            args.json,
            {
                "threads": torch.get_num_threads(),
                "speedup": args.speedup,
                "measured": [attrs.asdict(m) for m in measured],
                "plan": [attrs.asdict(p) for p in plans],
            },
        )
    return 0


def vars_of(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if not k.startswith("_")}


_RUNNERS = {
    "text": _run_text,
    "vae": _run_vae,
    "latents": _run_latents,
    "transformer": _run_transformer,
    "images": _run_images,
    "assemble": _run_assemble,
    "budget": _run_budget,
}
