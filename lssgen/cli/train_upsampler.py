"""`lssgen train-upsampler`: train a LatentUpsampler for a Diffusers VAE on a folder of images.

    lssgen train-upsampler --vae PIPELINE_OR_VAE_DIR --images DIR --output DIR [options]

Writes DIR/config.json + DIR/diffusion_pytorch_model.safetensors (the released layout, loadable by
`LatentUpsampler.from_pretrained`) and keeps a resumable checkpoint in DIR/checkpoints. With
`--held-out-images`, config.json also gets each scaling mode's measured error on those images,
the calibration `start_sigma="auto"` reads. Ctrl-C
(or SIGTERM) finishes the current step, writes the checkpoint and exits with status 130; `--resume`
continues to exactly the weights an uninterrupted run reaches. Several GPUs, data-parallel:

    accelerate launch -m lssgen train-upsampler ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from lssgen.cli.common import (
    EXIT_INTERRUPTED,
    UsageError,
    add_config_flags,
    add_loop_arguments,
    add_vae_arguments,
    blame,
    check_checkpoints,
    config_from_args,
    finite_float,
    held_out_comparison,
    image_folder,
    load_codec,
    non_negative_int,
    positive_int,
    required_flags,
    run_command,
    train_with_progress,
    training_accelerator,
)
from lssgen.training.calibrate import (
    DEFAULT_CALIBRATION_CROPS,
    calibrations_from_comparison,
    format_levels,
)
from lssgen.training.lpips import load_lpips
from lssgen.training.pairs import DOWNSAMPLE_MODES
from lssgen.training.train import (
    CHECKPOINT_DIRNAME,
    TrainConfig,
    default_upsampler_config,
    init_upsampler,
    train_upsampler,
)
from lssgen_core.atomic import write_json_atomic
from lssgen_core.upsample.io import CONFIG_NAME
from lssgen_core.upsample.network import LatentUpsampler

SUMMARY_NAME = "lssgen_training.json"
# The wording of the loop flags for the upsampler (`add_loop_arguments`).
UPSAMPLER_LOOP_WORDING = {
    "batch_size": "crops per step (per process)",
    "lr": "OneCycle peak learning rate (AdamW)",
    "seed": "initial weights and crop draws",
    "dtype": "bf16: VAE in bf16 and bf16 autocast; weights stay fp32",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    req = required_flags(
        parser,
        "Ctrl-C or SIGTERM: finish the step, checkpoint, exit 130; rerun with --resume. "
        "Several GPUs (data-parallel): accelerate launch -m lssgen train-upsampler ...",
    )
    add_vae_arguments(parser, req)
    req.add_argument("--images", required=True, help="training images (searched recursively)")
    req.add_argument("--output", required=True, help="folder for the trained upsampler")
    defaults = TrainConfig()
    add_loop_arguments(
        parser,
        defaults,
        UPSAMPLER_LOOP_WORDING,
        checkpoint_every=1000,
        checkpoints="OUTPUT/checkpoints",
    )
    downsample_help = "how the low-resolution input is made from the high-resolution crop"
    pixel_help = "weight of L1 between decoded prediction and image (decoder in the graph)"
    add_config_flags(
        parser,
        defaults,
        {
            "downsample": (DOWNSAMPLE_MODES, downsample_help),
            "pixel_loss_weight": (finite_float, pixel_help),
        },
    )
    parser.add_argument(
        "--lpips-weights",
        metavar="PATH",
        help="local LPIPS(alex) safetensors (see lssgen.training.lpips); never downloaded",
    )
    parser.add_argument(
        "--lpips-loss-weight",
        type=finite_float,
        default=1.0,
        help="LPIPS weight when --lpips-weights is given (the original used 1)",
    )
    parser.add_argument(
        "--init",
        metavar="PATH",
        help="start from this upsampler folder (its architecture and weights)",
    )
    parser.add_argument(
        "--cache-latents",
        action="store_true",
        help="encode pools of crops once and reuse them (see --pool-size/--pool-reuse)",
    )
    reuse_help = "passes over each cached pool before drawing a new one"
    add_config_flags(
        parser,
        defaults,
        {
            "pool_size": (positive_int, "crops per cached pool"),
            "pool_reuse": (positive_int, reuse_help),
        },
    )
    parser.add_argument(
        "--held-out-images",
        metavar="DIR",
        help="images not used in training: measure every scaling mode's error on them and "
        'store it in config.json (the calibration start_sigma="auto" reads)',
    )
    parser.add_argument(
        "--calibration-crops",
        type=positive_int,
        default=DEFAULT_CALIBRATION_CROPS,
        help="crops drawn from --held-out-images for the calibration",
    )
    parser.add_argument(
        "--num-workers",
        type=non_negative_int,
        default=2,
        help="DataLoader processes decoding and cropping images",
    )


def _check_output(output: Path, resume: bool) -> Path:
    if output.exists() and not output.is_dir():
        raise UsageError("--output", f"{output} is a file, not a folder")
    checkpoints = output / CHECKPOINT_DIRNAME
    check_checkpoints(checkpoints, resume, folder_argument="--output")
    if not resume and (output / CONFIG_NAME).exists():
        raise UsageError("--output", f"{output} already holds an upsampler; choose another folder")
    return checkpoints


def _model(args: argparse.Namespace, latent_channels: int) -> LatentUpsampler:
    if args.init is None:
        return init_upsampler(default_upsampler_config(latent_channels), args.seed)
    with blame("--init"):
        model = LatentUpsampler.from_pretrained(args.init, torch_dtype=torch.float32)
        model.check_latent_channels(latent_channels, argument=f"--init {args.init}")
    return model


def run(args: argparse.Namespace) -> int:
    return run_command("lssgen train-upsampler", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:

    output = Path(args.output)
    checkpoints = _check_output(output, args.resume)
    lpips_weight = args.lpips_loss_weight if args.lpips_weights else 0.0
    config = config_from_args(TrainConfig, args, lpips_loss_weight=lpips_weight)
    accelerator = training_accelerator()
    device = accelerator.device
    codec = load_codec(args, device)
    images, warned = image_folder(args.images, "--images", config.crop_size)
    held_out = None
    if args.held_out_images is not None:
        # Checked before training: a wrong folder must not cost a whole run.
        held_out, more = image_folder(args.held_out_images, "--held-out-images", config.crop_size)
        warned += more
    model = _model(args, codec.latent_channels)
    lpips = None
    if args.lpips_weights:
        with blame("--lpips-weights"):
            lpips = load_lpips(args.lpips_weights, device=device)
    main = bool(accelerator.is_main_process)
    if main:
        for line in warned:
            print(line, file=sys.stderr)
        print(
            f"VAE {codec.vae.__class__.__name__}: {codec.latent_channels} latent channels, "
            f"{codec.spatial_factor}x; {len(images)} images; crops {config.crop_size}px -> "
            f"{config.size}px; device {device}; {accelerator.num_processes} process(es)",
            file=sys.stderr,
        )
    result = train_with_progress(
        lambda options: train_upsampler(
            model,
            images,
            codec.encode,
            config,
            decode=codec.decode,
            lpips=lpips,
            num_workers=args.num_workers,
            **options,
        ),
        args,
        accelerator=accelerator,
        checkpoints=checkpoints,
        desc="train-upsampler",
        product="upsampler",
    )
    if result is None:
        return EXIT_INTERRUPTED
    if main:
        if held_out is not None:
            comparison = held_out_comparison(
                result.model.eval(), held_out, codec, args, count=args.calibration_crops
            )
            # The folder's name only: config.json files are shared and name no machine's paths.
            source = Path(args.held_out_images).name
            result.model.calibration = calibrations_from_comparison(comparison, source)
            print(format_levels(result.model.calibration), file=sys.stderr)
        result.model.to("cpu").save_pretrained(output)
        write_json_atomic(
            output / SUMMARY_NAME,
            {
                "vae": str(args.vae),
                "images": str(args.images),
                "latent_channels": codec.latent_channels,
                "config": config.to_dict(),
                "steps_done": result.step,
                "first_loss": result.losses[0] if result.losses else None,
                "final_loss_ema": result.loss_ema,
                "seconds_per_step": result.seconds_per_step,
                "device": str(device),
                "num_processes": accelerator.num_processes,
            },
        )
        print(
            f"Saved the upsampler to {output} (step {result.step}, loss {result.loss_ema:.4g}, "
            f"{result.seconds_per_step * 1000:.1f} ms/step).",
            file=sys.stderr,
        )
    return 0
