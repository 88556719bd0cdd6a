"""What every `lssgen` command shares: usage errors that name their flag, argparse types,
the help formatter, exit statuses, Ctrl-C handling, the progress bar, and what the two resumable
trainers (`lssgen train-upsampler`, `lssgen mini vae|transformer`) share: their loop flags, the
checkpoint-folder check, the accelerator, and one run of the loop with its messages; and what the
two upsampler commands (`lssgen train-upsampler`, `lssgen eval-upsampler`) share: the VAE flags,
image folders and the scaler comparison on held-out crops."""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import torch
from tqdm.auto import tqdm

from lssgen.dtypes import TORCH_DTYPES, TRAINING_DTYPES
from lssgen.images import ImageFolder
from lssgen.training.checkpoint import has_training_state, read_training_info
from lssgen.training.loop import NonFiniteLossError, RunOptions, TrainResult
from lssgen.training.pairs import SCALE_FACTOR, held_out_crops
from lssgen.training.resume import ResumeError
from lssgen.training.scaler_comparison import ScalerComparison, compare_with_standard_scalers
from lssgen_core.errors import LSSArgumentError
from lssgen_core.parameterization import check_start_sigma
from lssgen_core.upsample.network import LatentUpsampler
from lssgen_core.validation import check_positive_int
from lssgen_diffusers.vae import PixelCodec, load_vae

if TYPE_CHECKING:
    from attrs import AttrsInstance

    from lssgen.training.loop import StepReport

Config = TypeVar("Config", bound="AttrsInstance")

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_DIVERGED = 1


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
    """Report a config's validation error as the usage error of the field's flag.

    The field is the error's ``argument`` (lssgen's validators), or the attribute attrs' own
    validators pass with their error; any other error is not a field's and passes through.
    """
    try:
        yield
    except ValueError as exc:
        field = _field_of(exc)
        if field is None:
            raise
        raise UsageError("--" + field.replace("_", "-"), str(exc)) from exc


def _field_of(error: ValueError) -> str | None:
    if isinstance(error, LSSArgumentError):
        return error.argument
    # attrs.validators.in_ raises ValueError(message, attribute, options, value).
    attribute = error.args[1] if len(error.args) > 1 else None
    return attribute.name if isinstance(attribute, attrs.Attribute) else None


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


def run_command(prog: str, body: Callable[[], int]) -> int:
    """`body()`'s exit status; a usage error or a diverged training is one line and its status,
    never a traceback."""
    try:
        return int(body())
    except UsageError as error:
        return fail(prog, error)
    except TrainingDiverged as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_DIVERGED


def check_size(size: int, spatial_factor: int) -> None:
    if size % spatial_factor:
        raise UsageError(
            "--size",
            f"{size} is not a multiple of the VAE's {spatial_factor}x downscaling factor",
        )


def probe_write(folder: Path) -> None:
    """Write (and remove) a file in `folder`, or raise its OSError: a real write, because
    permission bits say nothing for root or on a read-only mount."""
    with tempfile.TemporaryFile(dir=folder, prefix=".lssgen-write-test-"):
        pass


def check_output_file(path: str, argument: str = "--output") -> Path:
    """`path` if a file can be written there (its folder is made), else a UsageError naming
    `argument`: found before minutes of work, not after."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(argument, f"{target} is a folder; pass a file name such as demo.png")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        probe_write(target.parent)
    except OSError as exc:
        raise UsageError(argument, f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


def positive_int(text: str) -> int:
    """An argparse type: the core's positive-integer check, worded for a flag."""
    try:
        return check_positive_int(int(text), "value")
    except LSSArgumentError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}") from None


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


def add_config_flags(
    parser: argparse.ArgumentParser,
    defaults: AttrsInstance,
    flags: Mapping[str, tuple[Any, str]],
) -> None:
    """One flag per field of the attrs config `defaults` that `flags` names, `--field-name` for
    `field_name`, defaulting to the field's value in `defaults`: a default is stated once, in the
    config. `flags` maps each field to (its argparse type, or the tuple of its choices; its help).
    """
    for name, (kind, help_text) in flags.items():
        typed = {"choices": kind} if isinstance(kind, tuple) else {"type": kind}
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, **typed, default=getattr(defaults, name), help=help_text)


def required_flags(parser: argparse.ArgumentParser, epilog: str | None = None) -> Any:
    """Give a command's parser the help every command has (`HelpFormatter`, `epilog` below the
    flags); the group its required flags go in, listed under "required"."""
    parser.formatter_class = HelpFormatter
    if epilog is not None:
        parser.epilog = epilog
    return parser.add_argument_group("required")


def load_codec(args: argparse.Namespace, device: torch.device) -> PixelCodec:
    """The VAE of --vae in --dtype on `device`, with --size checked against its downscaling."""
    with blame("--vae"):
        codec = load_vae(args.vae, torch_dtype=TORCH_DTYPES[args.dtype], device=device)
    check_size(args.size, codec.spatial_factor)
    return codec


def add_vae_arguments(parser: argparse.ArgumentParser, required: Any) -> None:
    """--vae (in the `required` group) and --size: the VAE an upsampler works in and the
    low-resolution crop side, as `lssgen train-upsampler` and `lssgen eval-upsampler` take them
    (`check_size` checks --size against the VAE once it is loaded)."""
    required.add_argument(
        "--vae", required=True, help="Diffusers VAE folder, or pipeline folder with vae/"
    )
    parser.add_argument(
        "--size",
        type=positive_int,
        default=256,
        help="low-resolution crop side in pixels; high-res crops are twice this",
    )


def image_folder(path: str, argument: str, min_size: int) -> tuple[ImageFolder, list[str]]:
    """The images of the folder `argument` names, and the warnings reading it gave (skipped
    files), for the caller to print: only the main process of several speaks."""
    with blame(argument), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = ImageFolder(path, min_size=min_size)
    return images, [f"warning: {warning.message}" for warning in caught]


def held_out_comparison(
    upsampler: LatentUpsampler,
    images: ImageFolder,
    codec: Any,
    args: argparse.Namespace,
    *,
    count: int,
    preview_count: int = 0,
) -> ScalerComparison:
    """Every scaling mode scored on `count` crops of held-out `images` in `codec`'s VAE, with
    the --size, --seed, --downsample and --batch-size of the upsampler commands."""
    crops = held_out_crops(images, crop_size=SCALE_FACTOR * args.size, count=count, seed=args.seed)
    return compare_with_standard_scalers(
        upsampler,
        crops,
        codec.encode,
        codec.decode,
        downsample_mode=args.downsample,
        batch_size=args.batch_size,
        preview_count=preview_count,
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


class Progress:
    """tqdm bar created at the first step, so a resumed run starts at its step."""

    def __init__(self, enabled: bool = True, desc: str = "train-upsampler") -> None:
        self.enabled = enabled
        self.desc = desc
        self.bar: Any = None

    def update(self, report: StepReport) -> None:
        if not self.enabled:
            return
        if self.bar is None:
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


# The fields every trainer's config has, as flags: their types, in --help order.
_LOOP_TYPES: dict[str, Any] = {
    "steps": positive_int,
    "batch_size": positive_int,
    "lr": finite_float,
    "weight_decay": finite_float,
    "max_grad_norm": finite_float,
    "seed": non_negative_int,
    "dtype": TRAINING_DTYPES,
}
# Their help where it is the same for every trainer; each trainer words the rest.
_LOOP_HELP = {
    "steps": "optimizer steps",
    "weight_decay": "AdamW weight decay",
    "max_grad_norm": "gradient clipping",
}


def add_loop_arguments(
    parser: argparse.ArgumentParser,
    defaults: AttrsInstance,
    wording: Mapping[str, str],
    *,
    checkpoint_every: int,
    checkpoints: str,
) -> None:
    """--steps, --batch-size, --lr, --weight-decay, --max-grad-norm, --seed, --dtype (defaults:
    the trainer's config `defaults`; help: `wording` for batch_size, lr, seed and dtype),
    --checkpoint-every and --resume (`checkpoints` names where the checkpoint lives)."""
    help_texts = {**_LOOP_HELP, **wording}
    add_config_flags(
        parser, defaults, {name: (kind, help_texts[name]) for name, kind in _LOOP_TYPES.items()}
    )
    parser.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=checkpoint_every,
        help="steps between checkpoints (0: only at the end and on Ctrl-C)",
    )
    parser.add_argument("--resume", action="store_true", help=f"continue from {checkpoints}")


def training_accelerator(device: str | None = None) -> Any:
    """The `accelerate.Accelerator` a trainer runs on: on the CPU for `device="cpu"`, else on
    the device accelerate gives this process (one GPU each under `accelerate launch`)."""
    from accelerate import Accelerator  # a trainer's import: commands that never train skip it

    if device is None or torch.device(device).type != "cpu":
        accelerator = Accelerator()
        wanted = torch.device(device) if device is not None else accelerator.device
        if accelerator.device.type != wanted.type:
            raise UsageError("--device", f"{device} is not available here ({accelerator.device})")
        return accelerator
    return Accelerator(cpu=True)


Result = TypeVar("Result", bound=TrainResult[Any])


def config_from_args(cls: type[Config], args: argparse.Namespace, **overrides: Any) -> Config:
    """The attrs config `cls` from the flags named as its fields (`--batch-size` for
    `batch_size`) and `overrides`; a refused value is a usage error of its flag."""
    fields = {f.name: getattr(args, f.name) for f in attrs.fields(cls) if hasattr(args, f.name)}
    with blame_field():
        return cls(**{**fields, **overrides})


def train_with_progress(
    train: Callable[[RunOptions], Result],
    args: argparse.Namespace,
    *,
    accelerator: Any,
    checkpoints: Path,
    desc: str,
    product: str,
) -> Result | None:
    """`train(options)` with the run options of the flags `add_loop_arguments` adds, a progress
    bar and Ctrl-C handling: a refused resume is a usage error of --resume, a non-finite loss
    `TrainingDiverged`. None when interrupted (the checkpoint is written and the user told how to
    go on). Only the main process of several speaks."""
    main = bool(accelerator.is_main_process)
    progress = Progress(enabled=main, desc=desc)
    with DeferredInterrupt(progress.write) as interrupt:
        try:
            result = train(
                RunOptions(
                    checkpoint_dir=checkpoints,
                    checkpoint_every=args.checkpoint_every,
                    resume=args.resume,
                    backend=accelerator,
                    on_step=progress.update,
                    should_stop=lambda: interrupt.requested,
                )
            )
        except ResumeError as exc:
            raise UsageError("--resume", str(exc)) from exc
        except NonFiniteLossError as exc:
            error = TrainingDiverged(exc, args.lr, args.max_grad_norm, checkpoints, product)
            raise error from exc
        finally:
            progress.close()
    if not result.interrupted:
        return result
    if main:
        print(
            f"Interrupted at step {result.step}/{result.total_steps}; checkpoint in "
            f"{checkpoints}. Run the same command with --resume to continue.",
            file=sys.stderr,
        )
    return None
