"""`lssgen generate`: images for a prompt list in GenEval's layout; resumable and multi-process.

    lssgen generate --model PIPELINE_DIR --prompts evaluation_metadata.jsonl --outdir DIR [options]
    lssgen generate --model PIPELINE_DIR --prompt "a photo of a cat" --n-samples 8 --outdir DIR
    accelerate launch --num_processes 8 -m lssgen generate ...      (one process per GPU)

Without GPUs, `accelerate launch --multi_gpu --num_processes N ...` runs N CPU processes (they
join a gloo group here); accelerate's `--cpu` starts several processes only through MPI.

Output (see `lssgen.cli.geneval_layout`): DIR/config.json, DIR/{i:05}/metadata.jsonl,
DIR/{i:05}/samples/{k:05}.png and DIR/result.json (seconds per image, per process, in total).

Deterministic: image (i, k) is generated from its own CPU `torch.Generator`, seeded with
`image_seed(seed, i, k)` (SHA-256 of "seed/i/k"), so it does not depend on the batch size or the
number of processes; on CPU even the arithmetic is made batch-independent
(`lssgen.cli.batch_invariance`). Resumable: a run skips every image whose PNG is complete
(every chunk's CRC checks) and redoes the rest; PNGs are written to a temp file and renamed, so a
kill never leaves a truncated one. Several processes share the pending images round-robin
(accelerate's process index), without duplicates or gaps.

Failures end the run with one line and exit status 1, keeping every finished image: an image
with NaN or inf pixels is never written (nor counted as done), and a write that fails (a full
disk) names the file. Running the same command again continues.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import inspect
import json
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from tqdm.auto import tqdm

import lssgen_diffusers
from lssgen.cli.batch_invariance import make_batch_invariant
from lssgen.cli.common import (
    UsageError,
    blame,
    finite_float,
    non_negative_int,
    positive_int,
    probe_write,
    required_flags,
    run_command,
)
from lssgen.cli.geneval_layout import (
    RESULT_NAME,
    RUN_CONFIG_NAME,
    ProcessTimings,
    WorkItem,
    item_key,
    merge_results,
    metadata_text,
    pending_items,
    remove_stale_temp_files,
    sample_path,
    shard,
    utc_stamp,
    work_items,
    write_metadata,
)
from lssgen.cli.prompts import PromptFileError, load_prompt_file, prompt_from_text
from lssgen.dtypes import TORCH_DTYPES
from lssgen.images import png_bytes
from lssgen_core.atomic import write_bytes_atomic, write_json_atomic
from lssgen_core.auto_entry import AUTO, is_auto
from lssgen_core.errors import LSSArgumentError
from lssgen_core.upsample import SCALING_MODES, LatentUpsampler
from lssgen_core.upsample.io import CONFIG_NAME
from lssgen_core.upsample.scalers import check_upsampler_given
from lssgen_diffusers.call_defaults import CALL_DEFAULTS_NAME, LSS_KEYS, read_call_defaults
from lssgen_diffusers.options import LSSDefaults, resolve_options
from lssgen_diffusers.registry import FAMILIES, Family

PROG = "lssgen generate"
SEEDING = (
    "torch.Generator('cpu').manual_seed(image_seed(seed, i, k)); image_seed: first 8 bytes of "
    "sha256(f'{seed}/{i}/{k}'), big-endian, mod 2**63"
)
UPSAMPLER_SUBFOLDER = "latent_upsampler"
# Settings that change pixels: a resumed run must match the run that made the existing images.
# n_samples is not among them (raising it adds samples), nor are batch size, device, processes.
RESUME_KEYS = (
    "model", "pipeline", "plain", "upsampler", "scaling_mode", "start_sigma", "min_size",
    "shorten", "steps", "guidance", "height", "width", "negative_prompt", "seed", "seeding",
    "dtype", "prompts_sha256", "call_extra",
)  # fmt: skip
LSS_OPTIONS = ("upsampler", "scaling_mode", "start_sigma", "min_size", "shorten")
# Call arguments each image's call sets itself; a folder's settings must not replace them.
GENERATE_SETS = ("generator", "num_images_per_prompt", "output_type", "return_dict", "latents")
# `lssgen_call_defaults.json` keys (call argument names) -> the flags that override them.
CALL_DEFAULT_FLAGS = {
    "num_inference_steps": "steps",
    "guidance_scale": "guidance",
    "height": "height",
    "width": "width",
    "start_sigma": "start_sigma",
    "min_size": "min_size",
    "shorten_intermediate_steps": "shorten",
    "scaling_mode": "scaling_mode",
}


# The --pipeline names: each family of lssgen_diffusers' registry, with its pipeline classes and
# defaults (the native size comes from the loaded pipeline).
KINDS: dict[str, Family] = dict(FAMILIES)


def image_seed(seed: int, prompt_index: int, sample_index: int) -> int:
    """The seed of image (i, k): SHA-256 of ``f"{seed}/{i}/{k}"``, first 8 bytes, big-endian,
    mod 2**63. A hash rather than ``seed + offset`` so that neighbouring runs (seed 42 and 43)
    share no images; stable across Python versions and machines (unlike ``hash()``)."""
    digest = hashlib.sha256(f"{seed}/{prompt_index}/{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**63


def image_generator(seed: int, prompt_index: int, sample_index: int) -> torch.Generator:
    # A CPU generator on every device: the noise is drawn on the CPU and moved, so a GPU run starts
    # every image from the same noise as a CPU run.
    return torch.Generator("cpu").manual_seed(image_seed(seed, prompt_index, sample_index))


# --- arguments ---------------------------------------------------------------------------------


def start_sigma_or_auto(text: str) -> float | str:
    """An argparse type for ``--start-sigma``: a finite number (its range is the pipelines' own
    check, before loading) or "auto", which the pipeline resolves from its upsampler's
    calibration once loaded (`lssgen_diffusers.auto_entry`)."""
    if is_auto(text):
        return AUTO
    try:
        return finite_float(text)
    except argparse.ArgumentTypeError as exc:
        if "finite" in str(exc):
            raise
        raise argparse.ArgumentTypeError(f"must be a number or {AUTO!r}, got {text}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    req = required_flags(
        parser,
        "Kill it at any time and run the same command again to finish. Several GPUs: "
        "accelerate launch --num_processes N -m lssgen generate ...",
    )
    req.add_argument(
        "--model", required=True, metavar="PATH", help="local Diffusers pipeline folder"
    )
    req.add_argument(
        "--outdir", required=True, metavar="DIR", help="output folder (GenEval layout)"
    )
    source = req.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--prompts",
        metavar="FILE",
        help="GenEval's evaluation_metadata.jsonl (a .jsonl of objects with 'prompt'), "
        "or a text file with one prompt per line",
    )
    source.add_argument("--prompt", metavar="TEXT", help="a single prompt")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--pipeline",
        choices=tuple(KINDS),
        help="model family (default: from model_index.json's _class_name)",
    )
    model.add_argument(
        "--plain", action="store_true", help="the stock Diffusers pipeline, without LSS (baseline)"
    )
    model.add_argument(
        "--dtype",
        choices=("auto", *TORCH_DTYPES),
        default="auto",
        help="model dtype; auto: bf16 on CUDA, fp32 otherwise",
    )
    model.add_argument("--device", help="torch device (default: this process's accelerator)")
    lss = parser.add_argument_group("LSS (defaults per pipeline, see README)")
    lss.add_argument(
        "--upsampler",
        metavar="PATH",
        help="latent upsampler folder (default: MODEL/latent_upsampler if present)",
    )
    lss.add_argument(
        "--scaling-mode", choices=SCALING_MODES, help="how latents are doubled (default: resnet)"
    )
    lss.add_argument(
        "--start-sigma",
        type=start_sigma_or_auto,
        help="noise level later stages start at (default: 0.75); auto: the lowest level the "
        "upsampler's stored calibration allows for --scaling-mode",
    )
    lss.add_argument(
        "--min-size",
        type=positive_int,
        help="smallest stage size in pixels (default: per pipeline)",
    )
    lss.add_argument(
        "--shorten",
        action=argparse.BooleanOptionalAction,
        help="fewer steps in the smaller stages (default: per pipeline)",
    )
    gen = parser.add_argument_group("generation")
    gen.add_argument("--steps", type=positive_int, help="denoising steps (default: per pipeline)")
    gen.add_argument("--guidance", type=finite_float, help="guidance scale (default: per pipeline)")
    gen.add_argument("--height", type=positive_int, help="pixels (default: the model's native)")
    gen.add_argument("--width", type=positive_int, help="pixels (default: the model's native)")
    gen.add_argument("--negative-prompt", metavar="TEXT", help="one negative prompt for all")
    gen.add_argument("--n-samples", type=positive_int, default=4, help="images per prompt")
    gen.add_argument("--batch-size", type=positive_int, default=1, help="images per model call")
    gen.add_argument("--seed", type=non_negative_int, default=42, help="run seed")


# --- checks that need no model -----------------------------------------------------------------


def _load_prompts(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.prompt is not None:
        if not args.prompt.strip():
            raise UsageError("--prompt", "the prompt is empty")
        return [prompt_from_text(args.prompt)]
    try:
        return load_prompt_file(args.prompts)
    except PromptFileError as exc:
        raise UsageError("--prompts", str(exc)) from exc


def _read_model_index(model: Path) -> dict[str, Any]:
    if not model.exists():
        raise UsageError("--model", f"model folder not found: {model}")
    if not model.is_dir():
        raise UsageError("--model", f"{model} is a file, not a Diffusers pipeline folder")
    index = model / "model_index.json"
    if not index.is_file():
        raise UsageError(
            "--model",
            f"{model} has no model_index.json, so it is not a Diffusers pipeline folder "
            "(download Hub models first, e.g. with `hf download REPO --local-dir DIR`)",
        )
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError("--model", f"cannot read {index}: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError("--model", f"{index} is not a JSON object")
    return data


def _pipeline_kind(model: Path, override: str | None) -> str:
    class_name = _read_model_index(model).get("_class_name")
    if override is not None:
        return override
    for kind, spec in KINDS.items():
        if class_name in (spec.lss_class, spec.stock_class):
            return kind
    raise UsageError(
        "--model",
        f"{model / 'model_index.json'} names the pipeline class {class_name!r}, which is not one "
        f"lssgen knows; if it is one of these families, pass --pipeline {{{','.join(KINDS)}}}",
    )


def _call_defaults(model: Path) -> dict[str, Any] | None:
    with blame("--model"):
        return read_call_defaults(model)


def _with_call_defaults(
    args: argparse.Namespace, defaults: dict[str, Any] | None
) -> argparse.Namespace:
    """`args` with each flag the user left out taken from the folder's recommended settings
    (`lssgen_diffusers.call_defaults`); `--plain` takes no LSS setting from there."""
    if not defaults:
        return args
    filled = argparse.Namespace(**vars(args))
    for key, value in defaults.items():
        name = CALL_DEFAULT_FLAGS.get(key)
        if name is None or (args.plain and key in LSS_KEYS):
            continue
        if getattr(filled, name) is None:
            setattr(filled, name, value)
    return filled


def _call_extra(defaults: dict[str, Any] | None, pipe: Any, model: Path) -> dict[str, Any] | None:
    """The folder's recommended call arguments that no flag covers (passed to every call),
    each checked against the pipeline's signature."""
    extra = {k: v for k, v in (defaults or {}).items() if k not in CALL_DEFAULT_FLAGS}
    # The LSS classes take the stock arguments through **kwargs: collect every class's names.
    accepted = {
        name
        for cls in type(pipe).__mro__
        if "__call__" in vars(cls)
        for name, parameter in inspect.signature(vars(cls)["__call__"]).parameters.items()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }
    for key in extra:
        if key in GENERATE_SETS or key.startswith(("prompt", "negative_prompt")):
            raise UsageError(
                "--model", f"{model / CALL_DEFAULTS_NAME}: {key} is set by {PROG} itself"
            )
        if key not in accepted or key == "self":
            raise UsageError(
                "--model",
                f"{model / CALL_DEFAULTS_NAME}: {key} is not an argument of {type(pipe).__name__}",
            )
    return extra or None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# The pipeline arguments whose flag is not their name with dashes.
_FLAGS_OF_ARGUMENTS = {"shorten_intermediate_steps": "--shorten", "num_inference_steps": "--steps"}


def _usage_error(exc: LSSArgumentError) -> UsageError:
    """The library's argument error as the usage error of the flag that set the argument."""
    flag = _FLAGS_OF_ARGUMENTS.get(exc.argument, _flag(exc.argument))
    return UsageError(flag, str(exc))


def _check_option_combinations(args: argparse.Namespace, kind: str) -> None:
    if args.plain:
        for name in LSS_OPTIONS:
            if getattr(args, name) is not None:
                raise UsageError(
                    _flag(name),
                    "not allowed with argument --plain (--plain runs the stock pipeline, no LSS)",
                )
    if args.upsampler is not None and args.scaling_mode not in (None, "resnet"):
        raise UsageError(
            "--upsampler", f"not used with --scaling-mode {args.scaling_mode}; leave it out"
        )
    if args.negative_prompt is not None and kind == "flux":
        raise UsageError(
            "--negative-prompt", "FLUX is guidance-distilled and ignores negative prompts"
        )
    _check_lss_values(args)


def _check_lss_values(args: argparse.Namespace) -> None:
    # The pipelines' own validation, run now so a bad value fails before minutes of loading.
    try:
        resolve_options(
            LSSDefaults(1, False, num_inference_steps=1, guidance_scale=1.0),
            # "auto" needs the loaded upsampler's calibration: resolved when planning.
            start_sigma=None if is_auto(args.start_sigma) else args.start_sigma,
            min_size=args.min_size,
            min_resolution=None,
            shorten_intermediate_steps=args.shorten,
            scaling_mode=args.scaling_mode,
            entry_rule=None,
        )
    except LSSArgumentError as exc:
        raise _usage_error(exc) from exc


def _prepare_outdir(path: str) -> Path:
    outdir = Path(path)
    if outdir.exists() and not outdir.is_dir():
        raise UsageError("--outdir", f"{outdir} is a file, not a folder")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        probe_write(outdir)
    except OSError as exc:
        raise UsageError("--outdir", f"cannot write to {outdir}: {exc.strerror or exc}") from exc
    return outdir


def _vae_latent_channels(model: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        config = json.loads((model / "vae" / CONFIG_NAME).read_text(encoding="utf-8"))
        channels = config.get("latent_channels")
        return channels if isinstance(channels, int) else None
    return None


def _load_upsampler(path: str, model: Path, dtype: torch.dtype, argument: str) -> LatentUpsampler:
    """The upsampler in the model's dtype, checked against the VAE config before models load.

    ``argument``: the flag that chose it (``--upsampler``, or ``--model`` for its subfolder).
    """
    with blame(argument):
        upsampler = LatentUpsampler.from_pretrained(path, torch_dtype=dtype)
        channels = _vae_latent_channels(model)
        if channels is not None:
            upsampler.check_latent_channels(channels, argument=f"the upsampler {path}")
    return upsampler


# --- processes, device, model ------------------------------------------------------------------


def _process_state(device_arg: str | None) -> tuple[Any, torch.device]:

    requested = None
    if device_arg is not None:
        try:
            requested = torch.device(device_arg)
        except RuntimeError as exc:
            raise UsageError("--device", str(exc)) from exc
        if requested.type == "cuda" and not torch.cuda.is_available():
            raise UsageError("--device", f"{device_arg}: CUDA is not available on this machine")
    # Without cpu=True, processes started by `accelerate launch` on a machine without CUDA each
    # believe they are alone (and would all generate everything).
    cpu = not torch.cuda.is_available() or (requested is not None and requested.type == "cpu")
    state = PartialState(cpu=cpu)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > state.num_processes:
        print(
            f"warning: {launched} processes were launched but accelerate set up "
            f"{state.num_processes}; each will generate every image",
            file=sys.stderr,
        )
    device = state.device
    if requested is not None and (requested.index is not None or requested.type != device.type):
        device = requested
    return state, device


def _dtype(name: str, device: torch.device) -> tuple[str, torch.dtype]:
    if name == "auto":
        name = "bf16" if device.type == "cuda" else "fp32"
    return name, TORCH_DTYPES[name]


@contextlib.contextmanager
def _blame_loading(argument: str) -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(argument, f"cannot load it: {exc}") from exc


def _pipeline_class(kind: str, plain: bool) -> Any:
    # Lazy for start-up: Diffusers takes ~3 s to import; only building or loading models needs it.
    import diffusers

    spec = KINDS[kind]
    return (
        getattr(diffusers, spec.stock_class) if plain else getattr(lssgen_diffusers, spec.lss_class)
    )


def _load_pipeline(
    kind: str,
    model: Path,
    plain: bool,
    dtype: torch.dtype,
    device: torch.device,
    upsampler: LatentUpsampler | None,
) -> Any:
    # Lazy for start-up: Diffusers takes ~3 s to import; only building or loading models needs it.
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    # Loading bars from every process would bury the one progress bar that matters.
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    # torch_dtype, not dtype: Diffusers before 0.36 would ignore dtype and load in fp32.
    kwargs: dict[str, Any] = {"torch_dtype": dtype, "local_files_only": True}
    # Loaded here, not by the LSS from_pretrained from MODEL/latent_upsampler, so that its errors
    # come before the model's minutes of loading, and in the model's dtype.
    if upsampler is not None:
        kwargs["latent_upsampler"] = upsampler
    with _blame_loading("--model"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch_dtype` is deprecated", FutureWarning)
        pipe = _pipeline_class(kind, plain).from_pretrained(model, **kwargs)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --- settings ----------------------------------------------------------------------------------


def _family_value(kind: str, pipe: Any, name: str) -> Any:
    """The LSS class's attribute, property or method ``name`` evaluated for ``pipe``.

    The LSS classes know each family's native size and latent multiple; a ``--plain`` pipeline is
    an instance of their stock parent, so their definitions apply to it too.
    """
    value = inspect.getattr_static(_pipeline_class(kind, plain=False), name)
    if isinstance(value, property) and value.fget is not None:
        return value.fget(pipe)
    return value(pipe) if inspect.isfunction(value) else value


def _check_size(kind: str, pipe: Any, height: int, width: int) -> None:
    multiple = pipe.vae_scale_factor * _family_value(kind, pipe, "lss_patch_size")
    for flag, value in (("--height", height), ("--width", width)):
        if value % multiple:
            raise UsageError(
                flag, f"{value} is not a multiple of {multiple}, which {kind} images need"
            )


def _plan_summary(plan: Any) -> dict[str, Any]:
    stages = [
        {
            "width": stage.width,
            "height": stage.height,
            "schedule_steps": stage.num_steps,
            "start_index": stage.start_index,
            "steps": stage.num_denoising_steps,
        }
        for stage in plan.stages
    ]
    return {
        "stages": stages,
        "entry_rule": plan.entry_rule,
        "token_steps_vs_plain": plan.token_steps_ratio(),
    }


def _lss_plan(args: argparse.Namespace, pipe: Any, settings: dict[str, Any]) -> Any:
    try:
        return pipe.lss_plan_for(
            height=settings["height"],
            width=settings["width"],
            num_inference_steps=settings["steps"],
            start_sigma=args.start_sigma,
            min_size=args.min_size,
            shorten_intermediate_steps=args.shorten,
            # The scaler whose calibration start_sigma="auto" reads; no other effect on the plan.
            scaling_mode=settings["scaling_mode"],
        )
    except LSSArgumentError as exc:
        raise _usage_error(exc) from exc


def _upsampler_source(args: argparse.Namespace, model: Path) -> str | None:
    if args.plain:
        return None
    if args.upsampler is not None:
        return str(Path(args.upsampler).resolve())
    folder = model / UPSAMPLER_SUBFOLDER
    return str(folder.resolve()) if (folder / CONFIG_NAME).is_file() else None


def _settings(
    args: argparse.Namespace,
    kind: str,
    pipe: Any,
    model: Path,
    prompts: Sequence[dict[str, Any]],
    dtype_name: str,
) -> dict[str, Any]:
    spec = KINDS[kind]
    defaults = _call_defaults(model)
    native_height, native_width = _family_value(kind, pipe, "lss_default_size")
    prompt_lines = "\n".join(metadata_text(p) for p in prompts)
    settings: dict[str, Any] = {
        "model": str(model.resolve()),
        "pipeline": kind,
        "pipeline_class": type(pipe).__name__,
        "plain": args.plain,
        "upsampler": _upsampler_source(args, model),
        "scaling_mode": None if args.plain else args.scaling_mode or "resnet",
        "start_sigma": None,
        "min_size": None,
        "shorten": None,
        "steps": args.steps or spec.defaults.num_inference_steps,
        "guidance": spec.defaults.guidance_scale if args.guidance is None else args.guidance,
        "height": args.height or native_height,
        "width": args.width or native_width,
        "negative_prompt": args.negative_prompt,
        "n_samples": args.n_samples,
        "seed": args.seed,
        "seeding": SEEDING,
        "dtype": dtype_name,
        "prompts": None if args.prompts is None else str(Path(args.prompts).resolve()),
        "num_prompts": len(prompts),
        "prompts_sha256": hashlib.sha256(prompt_lines.encode("utf-8")).hexdigest(),
        "lss_plan": None,
        "call_defaults": None if defaults is None else str((model / CALL_DEFAULTS_NAME).resolve()),
        "call_extra": _call_extra(defaults, pipe, model),
    }
    _check_size(kind, pipe, settings["height"], settings["width"])
    if not args.plain:
        plan = _lss_plan(args, pipe, settings)
        settings.update(
            start_sigma=plan.start_sigma,
            min_size=plan.min_size,
            shorten=plan.shorten_steps,
            lss_plan=_plan_summary(plan),
        )
        _check_upsampler_needed(pipe, plan, settings["scaling_mode"])
    return settings


def _check_upsampler_needed(pipe: Any, plan: Any, scaling_mode: str) -> None:
    if len(plan.stages) == 1:
        return
    try:
        check_upsampler_given(scaling_mode, pipe.latent_upsampler)
    except LSSArgumentError as exc:
        raise UsageError(
            "--upsampler",
            f"the plan has {len(plan.stages)} stages: {exc}. Here: pass --upsampler PATH (or put "
            "one in MODEL/latent_upsampler), or choose --scaling-mode latent or pixel",
        ) from exc


def _check_resume(outdir: Path, settings: dict[str, Any]) -> None:
    path = outdir / RUN_CONFIG_NAME
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError("--outdir", f"cannot read {path} of the earlier run: {exc}") from exc
    current = json.loads(json.dumps(settings))  # compare as JSON: tuples, floats
    changed = [
        f"{key} {previous.get(key)!r} -> {current[key]!r}"
        for key in RESUME_KEYS
        if previous.get(key) != current[key]
    ]
    if changed:
        raise UsageError(
            "--outdir",
            f"{outdir} holds images made with other settings ({'; '.join(changed)}); "
            "run with the same settings to resume, or choose another --outdir",
        )


def _run_config(
    settings: dict[str, Any], args: argparse.Namespace, device: torch.device, state: Any
) -> dict[str, Any]:
    return {
        **settings,
        "batch_size": args.batch_size,
        "device": str(device),
        "num_processes": state.num_processes,
        "versions": {name: importlib.metadata.version(name) for name in ("torch", "diffusers")},
    }


# --- generation --------------------------------------------------------------------------------


def _call_arguments(
    batch: Sequence[WorkItem], prompts: Sequence[dict[str, Any]], settings: dict[str, Any]
) -> dict[str, Any]:
    call: dict[str, Any] = {
        "prompt": [prompts[i]["prompt"] for i, _ in batch],
        "generator": [image_generator(settings["seed"], i, k) for i, k in batch],
        "num_images_per_prompt": 1,
        "height": settings["height"],
        "width": settings["width"],
        "num_inference_steps": settings["steps"],
        "guidance_scale": settings["guidance"],
        # Float arrays, not PIL images: NaN turns into black pixels in the uint8 conversion, so
        # only the arrays show it. `to_pil` converts as output_type="pil" does, byte for byte.
        "output_type": "np",
    }
    if settings["negative_prompt"] is not None:
        call["negative_prompt"] = [settings["negative_prompt"]] * len(batch)
    call.update(settings.get("call_extra") or {})
    if not settings["plain"]:
        call.update(
            start_sigma=settings["start_sigma"],
            min_size=settings["min_size"],
            shorten_intermediate_steps=settings["shorten"],
            scaling_mode=settings["scaling_mode"],
        )
    return call


def _batches(items: Sequence[WorkItem], size: int) -> Iterator[list[WorkItem]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


@dataclass(frozen=True)
class _Job:
    """Everything a process needs to generate, once arguments are checked and the model loaded."""

    state: Any  # accelerate's PartialState
    device: torch.device
    pipe: Any
    prompts: list[dict[str, Any]]
    outdir: Path
    config: dict[str, Any]
    load_seconds: float

    @property
    def is_main(self) -> bool:
        return bool(self.state.is_main_process)


def _prepare(args: argparse.Namespace) -> _Job:
    """Check everything that can be checked before loading, then load and check the rest."""
    start = time.perf_counter()
    prompts = _load_prompts(args)
    model = Path(args.model)
    kind = _pipeline_kind(model, args.pipeline)
    args = _with_call_defaults(args, _call_defaults(model))
    _check_option_combinations(args, kind)
    outdir = _prepare_outdir(args.outdir)
    state, device = _process_state(args.device)
    dtype_name, dtype = _dtype(args.dtype, device)
    upsampler_path = _upsampler_source(args, model)
    upsampler = None
    if upsampler_path is not None:
        flag = "--model" if args.upsampler is None else "--upsampler"
        upsampler = _load_upsampler(upsampler_path, model, dtype, flag)
    pipe = _load_pipeline(kind, model, args.plain, dtype, device, upsampler)
    settings = _settings(args, kind, pipe, model, prompts, dtype_name)
    _check_resume(outdir, settings)
    config = _run_config(settings, args, device, state)
    return _Job(state, device, pipe, prompts, outdir, config, time.perf_counter() - start)


class OutputError(Exception):
    """Writing into the output folder failed (a full disk, a removed folder); printed as one line.

    Every file is written atomically, so what was finished before stays complete.
    """

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(f"cannot write {path}: {error.strerror or error}")
        self.path = path


class NonFiniteImage(Exception):
    """The pipeline returned an image with NaN or inf pixels; it is neither saved nor counted."""

    def __init__(self, item: WorkItem, prompt: str) -> None:
        super().__init__(
            f"image {item_key(item)} (prompt {item[0]}: {prompt!r}) came out with NaN or inf "
            "pixels, so it was not saved (as a PNG it would be black). The model produces "
            "non-finite numbers: check its weights, or try --dtype fp32"
        )


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise OutputError(path, exc) from exc


def _pending_work(job: _Job, items: Sequence[WorkItem]) -> list[WorkItem]:
    """The images still to make; the main process also writes the run's settings and prompts."""
    width, height = job.config["width"], job.config["height"]
    pending = pending_items(job.outdir, items, width, height)
    if job.is_main:
        with _writing(job.outdir / RUN_CONFIG_NAME):
            write_json_atomic(job.outdir / RUN_CONFIG_NAME, job.config)
        for index, metadata in enumerate(job.prompts):
            with _writing(job.outdir / f"{index:05}"):
                write_metadata(job.outdir, index, metadata)
        remove_stale_temp_files(job.outdir, pending)
        _report_start(job.config, len(items), len(pending))
    # Every process lists the pending images before any process writes one, so all of them
    # shard the same list.
    job.state.wait_for_everyone()
    return pending


def to_pil(image: Any) -> Any:
    """One float (H, W, C) array in [0, 1] as the PIL image output_type="pil" gives."""
    # Lazy for start-up: Diffusers takes ~3 s to import; only building or loading models needs it.
    from diffusers.image_processor import VaeImageProcessor

    return VaeImageProcessor.numpy_to_pil(image)[0]


def _generate(job: _Job, mine: Sequence[WorkItem], written: list[WorkItem]) -> None:
    """Generate `mine`, appending each image to `written` once its PNG is on disk."""

    if job.device.type == "cpu":
        make_batch_invariant(job.pipe)
    timings = ProcessTimings(
        job.outdir,
        process_index=job.state.process_index,
        num_processes=job.state.num_processes,
        device=str(job.device),
        load_seconds=job.load_seconds,
    )
    bar = tqdm(total=len(mine), unit="img", desc="generate", disable=not job.is_main)
    with bar:
        for batch in _batches(mine, job.config["batch_size"]):
            start = time.perf_counter()
            images = job.pipe(**_call_arguments(batch, job.prompts, job.config)).images
            seconds = time.perf_counter() - start
            done, bad = [], None
            for item, image in zip(batch, images, strict=True):
                if not np.isfinite(image).all():
                    bad = bad or item
                    continue
                path = sample_path(job.outdir, item)
                with _writing(path):
                    write_bytes_atomic(path, png_bytes(to_pil(image)))
                done.append(item)
                written.append(item)
            if done:
                with _writing(timings.path):
                    timings.record(done, seconds * len(done) / len(batch))
            bar.update(len(done))
            if bad is not None:
                raise NonFiniteImage(bad, job.prompts[bad[0]]["prompt"])


def _finish(
    job: _Job, items: Sequence[WorkItem], generated: int, started: str, start: float
) -> int:
    """Merge every process's timings into result.json (main process, after all finished)."""
    wall = time.perf_counter() - start
    last_run = {
        "started_at": started,
        "num_processes": job.state.num_processes,
        "device": str(job.device),
        "images_generated": generated,
        "wall_seconds": wall,
        "images_per_second": generated / wall if wall > 0 else None,
    }
    width, height = job.config["width"], job.config["height"]
    with _writing(job.outdir / RESULT_NAME):
        result = merge_results(job.outdir, items, width, height, last_run)
    _report_end(result, job.outdir)
    return 0 if result["missing"] == 0 else 1


EXIT_FAILED = 1


def run(args: argparse.Namespace) -> int:
    return run_command(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    started, start = utc_stamp(), time.perf_counter()
    job = _prepare(args)
    items = work_items(len(job.prompts), args.n_samples)
    written: list[WorkItem] = []
    try:
        pending = _pending_work(job, items)
        before = len(items) - len(pending)
        _generate(job, shard(pending, job.state.process_index, job.state.num_processes), written)
    except (OutputError, NonFiniteImage) as error:
        # One line, no traceback: nothing is half-written, and a rerun continues from here.
        print(
            f"{PROG}: error: {error}; {before + len(written)} of {len(items)} images are done "
            "and kept; fix that and run the same command again to finish",
            file=sys.stderr,
        )
        return EXIT_FAILED
    job.state.wait_for_everyone()
    if not job.is_main:
        return 0
    return _finish(job, items, len(pending), started, start)


def _report_start(config: dict[str, Any], total: int, pending: int) -> None:
    plan = config["lss_plan"]
    stages = (
        " -> ".join(f"{s['width']}x{s['height']}/{s['steps']} steps" for s in plan["stages"])
        if plan
        else f"{config['width']}x{config['height']}/{config['steps']} steps (plain)"
    )
    print(
        f"{config['pipeline_class']} on {config['device']} ({config['dtype']}), "
        f"{config['num_processes']} process(es); {config['num_prompts']} prompts x "
        f"{config['n_samples']} samples = {total} images, {total - pending} already done; "
        f"{stages}",
        file=sys.stderr,
    )


def _report_end(result: dict[str, Any], outdir: Path) -> None:
    last = result["last_run"]
    print(
        f"{last['images_generated']} images in {last['wall_seconds']:.1f} s "
        f"({last['images_per_second'] or 0:.3g} img/s, model loading included); "
        f"{result['completed']}/{result['num_images']} done in {outdir}",
        file=sys.stderr,
    )
    if result["missing"]:
        print(f"{PROG}: {result['missing']} images are missing; run again", file=sys.stderr)
