"""`lssgen train-upsampler`: train a LatentUpsampler for a Diffusers VAE on a folder of images.

    lssgen train-upsampler --vae PIPELINE_OR_VAE_DIR --images DIR --output DIR [options]

Writes DIR/config.json + DIR/diffusion_pytorch_model.safetensors (the released layout, loadable by
`LatentUpsampler.from_pretrained`) and keeps a resumable checkpoint in DIR/checkpoints. Ctrl-C
(or SIGTERM) finishes the current step, writes the checkpoint and exits with status 130; `--resume`
continues to exactly the weights an uninterrupted run reaches. Several GPUs, data-parallel:

    accelerate launch -m lssgen train-upsampler ...
"""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import torch

from lssgen_core.parameterization import check_start_sigma
from lssgen_core.upsample.atomic import write_json_atomic
from lssgen_core.upsample.checkpoint import has_training_state, read_training_info
from lssgen_core.upsample.lpips import load_lpips
from lssgen_core.upsample.network import LatentUpsampler
from lssgen_core.upsample.pairs import DOWNSAMPLE_MODES
from lssgen_core.upsample.train import (
    CHECKPOINT_DIRNAME,
    DTYPES,
    NonFiniteLossError,
    ResumeError,
    TrainConfig,
    default_upsampler_config,
    init_upsampler,
    train_upsampler,
)

SUMMARY_NAME = "lssgen_training.json"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_DIVERGED = 1
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class UsageError(Exception):
    """A problem with a command-line argument; printed without a traceback."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"argument {argument}: {message}")
        self.argument = argument


@contextlib.contextmanager
def blame(argument: str) -> Iterator[None]:
    """Report the errors of loading what `argument` names as that argument's usage error."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError, ValueError, TypeError) as exc:
        raise UsageError(argument, str(exc)) from exc


@contextlib.contextmanager
def blame_field() -> Iterator[None]:
    """Config validation errors start with the field name; report them as its flag."""
    try:
        yield
    except ValueError as exc:
        field = str(exc).split(" ", 1)[0]
        raise UsageError("--" + field.replace("_", "-"), str(exc)) from exc


class TrainingDiverged(Exception):
    """Training stopped on a non-finite loss; printed as one line, exit `EXIT_DIVERGED`.

    Nothing is published: the output folder keeps only the checkpoints written before the step
    that diverged, all of them finite.
    """

    def __init__(
        self,
        error: NonFiniteLossError,
        lr: float,
        max_grad_norm: float,
        checkpoints: Path,
        product: str = "upsampler",
    ) -> None:
        kept = (
            "no checkpoint was written"
            if error.last_checkpoint is None
            else f"the checkpoint of step {error.last_checkpoint} in {checkpoints} is kept"
        )
        super().__init__(
            f"training diverged at step {error.step}: the loss is {error.loss:.4g} and the "
            f"gradient norm {error.grad_norm:.4g}, not finite numbers; stopped before that "
            f"update and saved no {product} ({kept}). Lower --lr (now {lr:g}) or "
            f"--max-grad-norm (now {max_grad_norm:g}) and start again in a new folder"
        )


def fail(prog: str, error: UsageError) -> int:
    print(f"{prog}: error: {error}", file=sys.stderr)
    return EXIT_USAGE


def check_size(size: int, spatial_factor: int) -> None:
    if size % spatial_factor:
        raise UsageError(
            "--size",
            f"{size} is not a multiple of the VAE's {spatial_factor}x downscaling factor",
        )


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def finite_float(text: str) -> float:
    """An argparse type for every float flag: NaN and inf are refused while parsing, naming the
    flag (``--guidance nan`` used to turn guidance off without a word)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def start_sigma_value(text: str) -> float:
    """An argparse type for ``--start-sigma``: a float in (0, 1]."""
    value = finite_float(text)
    try:
        check_start_sigma(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, but not the meaningless ones of required options and flags."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = HelpFormatter
    parser.epilog = (
        "Ctrl-C or SIGTERM: finish the step, checkpoint, exit 130; rerun with --resume. "
        "Several GPUs (data-parallel): accelerate launch -m lssgen train-upsampler ..."
    )
    req = parser.add_argument_group("required")
    req.add_argument(
        "--vae", required=True, help="Diffusers VAE folder, or pipeline folder with vae/"
    )
    req.add_argument("--images", required=True, help="training images (searched recursively)")
    req.add_argument("--output", required=True, help="folder for the trained upsampler")
    parser.add_argument(
        "--size",
        type=positive_int,
        default=256,
        help="low-resolution crop side in pixels; high-res crops are twice this",
    )
    parser.add_argument("--steps", type=positive_int, default=10_000, help="optimizer steps")
    parser.add_argument(
        "--batch-size", type=positive_int, default=16, help="crops per step (per process)"
    )
    parser.add_argument(
        "--lr", type=finite_float, default=1e-4, help="OneCycle peak learning rate (AdamW)"
    )
    parser.add_argument(
        "--weight-decay", type=finite_float, default=1e-4, help="AdamW weight decay"
    )
    parser.add_argument("--max-grad-norm", type=finite_float, default=1.0, help="gradient clipping")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="initial weights and crop draws"
    )
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default="fp32",
        help="bf16: VAE in bf16 and bf16 autocast; weights stay fp32",
    )
    parser.add_argument(
        "--downsample",
        choices=DOWNSAMPLE_MODES,
        default="nearest",
        help="how the low-resolution input is made from the high-resolution crop",
    )
    parser.add_argument(
        "--pixel-loss-weight",
        type=finite_float,
        default=0.0,
        help="weight of L1 between decoded prediction and image (decoder in the graph)",
    )
    parser.add_argument(
        "--lpips-weights",
        metavar="PATH",
        help="local LPIPS(alex) safetensors (see lssgen_core.upsample.lpips); never downloaded",
    )
    parser.add_argument(
        "--lpips-loss-weight",
        type=finite_float,
        default=1.0,
        help="LPIPS weight when --lpips-weights is given (the original used 1)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=1000,
        help="steps between checkpoints (0: only at the end and on Ctrl-C)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoints")
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
    parser.add_argument("--pool-size", type=positive_int, default=512, help="crops per cached pool")
    parser.add_argument(
        "--pool-reuse",
        type=positive_int,
        default=4,
        help="passes over each cached pool before drawing a new one",
    )
    parser.add_argument(
        "--num-workers",
        type=non_negative_int,
        default=2,
        help="DataLoader processes decoding and cropping images",
    )


class DeferredInterrupt:
    """First Ctrl-C (or SIGTERM, as schedulers send before preempting) asks the loop to stop
    after its step and checkpoint; a second one aborts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, notify: Callable[[str], None]) -> None:
        self.requested = False
        self._notify = notify
        self._previous: dict[int, Any] = {}

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        if self.requested:
            self._restore()
            raise KeyboardInterrupt
        self.requested = True
        self._notify("Stopping after this step and saving a checkpoint (Ctrl-C again to abort).")

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __enter__(self) -> DeferredInterrupt:
        # Python delivers signals to the main thread only; elsewhere leave the defaults.
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()


class StepLike(Protocol):
    step: int
    total_steps: int
    loss_ema: float
    lr: float


class Progress:
    """tqdm bar created at the first step, so a resumed run starts at its step."""

    def __init__(self, enabled: bool = True, desc: str = "train-upsampler") -> None:
        self.enabled = enabled
        self.desc = desc
        self.bar: Any = None

    def update(self, report: StepLike) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=report.total_steps,
                initial=report.step - 1,
                unit="step",
                desc=self.desc,
                dynamic_ncols=True,
            )
        self.bar.set_postfix(loss=f"{report.loss_ema:.4g}", lr=f"{report.lr:.2e}", refresh=False)
        self.bar.update(1)

    def write(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def check_checkpoints(checkpoints: Path, resume: bool, *, folder_argument: str) -> None:
    """`--resume` needs a readable checkpoint; without it, an existing one must not be overwritten.

    `folder_argument` is the option that chose the folder (`--output`, `--work`), named in the
    error so the user knows what to change.
    """
    if resume:
        if not has_training_state(checkpoints):
            raise UsageError("--resume", f"no training checkpoint in {checkpoints} to resume")
        with blame("--resume"):
            read_training_info(checkpoints)
    elif has_training_state(checkpoints):
        with blame(folder_argument):
            step = read_training_info(checkpoints)["step"]
        raise UsageError(
            folder_argument,
            f"{checkpoints} holds a checkpoint at step {step}; pass --resume to continue it, "
            f"or choose another {folder_argument}",
        )


def _check_output(output: Path, resume: bool) -> Path:
    if output.exists() and not output.is_dir():
        raise UsageError("--output", f"{output} is a file, not a folder")
    checkpoints = output / CHECKPOINT_DIRNAME
    check_checkpoints(checkpoints, resume, folder_argument="--output")
    if not resume and (output / "config.json").exists():
        raise UsageError("--output", f"{output} already holds an upsampler; choose another folder")
    return checkpoints


def _model(args: argparse.Namespace, latent_channels: int) -> LatentUpsampler:
    if args.init is None:
        return init_upsampler(default_upsampler_config(latent_channels), args.seed)
    with blame("--init"):
        model = LatentUpsampler.from_pretrained(args.init, torch_dtype=torch.float32)
        model.check_latent_channels(latent_channels, argument=f"--init {args.init}")
    return model


def _accelerator() -> Any:
    from accelerate import Accelerator

    return Accelerator()


def run(args: argparse.Namespace) -> int:
    prog = "lssgen train-upsampler"
    try:
        return _run(args)
    except UsageError as error:
        return fail(prog, error)
    except TrainingDiverged as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_DIVERGED


def _run(args: argparse.Namespace) -> int:
    from lssgen_diffusers.images import ImageFolder
    from lssgen_diffusers.vae import load_vae

    output = Path(args.output)
    checkpoints = _check_output(output, args.resume)
    with blame_field():
        config = TrainConfig(
            size=args.size,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=args.weight_decay,
            max_grad_norm=args.max_grad_norm,
            seed=args.seed,
            downsample=args.downsample,
            pixel_loss_weight=args.pixel_loss_weight,
            lpips_loss_weight=args.lpips_loss_weight if args.lpips_weights else 0.0,
            dtype=args.dtype,
            cache_latents=args.cache_latents,
            pool_size=args.pool_size,
            pool_reuse=args.pool_reuse,
        )
    accelerator = _accelerator()
    device = accelerator.device
    with blame("--vae"):
        codec = load_vae(args.vae, torch_dtype=TORCH_DTYPES[args.dtype], device=device)
    check_size(args.size, codec.spatial_factor)
    with blame("--images"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = ImageFolder(args.images, min_size=config.crop_size)
    model = _model(args, codec.latent_channels)
    lpips = None
    if args.lpips_weights:
        with blame("--lpips-weights"):
            lpips = load_lpips(args.lpips_weights, device=device)
    main = bool(accelerator.is_main_process)
    progress = Progress(enabled=main)
    if main:
        for warning in caught:
            print(f"warning: {warning.message}", file=sys.stderr)
        print(
            f"VAE {codec.vae.__class__.__name__}: {codec.latent_channels} latent channels, "
            f"{codec.spatial_factor}x; {len(images)} images; crops {config.crop_size}px -> "
            f"{config.size}px; device {device}; {accelerator.num_processes} process(es)",
            file=sys.stderr,
        )
    with DeferredInterrupt(progress.write) as interrupt:
        try:
            try:
                result = train_upsampler(
                    model,
                    images,
                    codec.encode,
                    config,
                    decode=codec.decode,
                    lpips=lpips,
                    checkpoint_dir=checkpoints,
                    checkpoint_every=args.checkpoint_every,
                    resume=args.resume,
                    backend=accelerator,
                    on_step=progress.update,
                    should_stop=lambda: interrupt.requested,
                    num_workers=args.num_workers,
                )
            except ResumeError as exc:
                raise UsageError("--resume", str(exc)) from exc
            except NonFiniteLossError as exc:
                raise TrainingDiverged(exc, args.lr, args.max_grad_norm, checkpoints) from exc
        finally:
            progress.close()
    if result.interrupted:
        if main:
            print(
                f"Interrupted at step {result.step}/{config.steps}; checkpoint in {checkpoints}. "
                "Run the same command with --resume to continue.",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED
    if main:
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
