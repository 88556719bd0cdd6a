"""Timing instrumentation for the LSS benchmarks: where the time of one generation goes.

Nothing in the library is changed. The pieces of one call are timed by wrapping, on the
benchmark's own pipeline and module *instances*, the methods the stage loop calls:

- ``plan``: ``pipe._lss_plan`` (stage planning, scheduler copies, schedule read-back);
- ``enter``: the core stage loop's ``hand_over`` (noise draw, scaling, re-noise), and inside it
  ``scaler``: the object ``pipe._lss_scaler`` returns (upsampler, interpolation or the pixel
  round trip, whose VAE calls are then nested under it);
- ``schedule_check``: ``lssgen_diffusers.mixin._check_stage_schedule`` (per stage);
- ``text``: ``encode_prompt``; ``vae_decode`` / ``vae_encode``: the VAE's methods;
- ``denoiser``: forward hooks on the transformer / UNet, labelled with the call's token count.

"LSS machinery" is ``plan + enter + schedule_check``: everything the stage loop adds to the stock
pipeline's work. On CUDA every clock read synchronises, so a span holds its own GPU work.
"""

from __future__ import annotations

import functools
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import torch
from models import BenchModel

import lssgen_core.sampling.stages as stages
import lssgen_diffusers.mixin as mixin
from lssgen_core.cost import CalibratedCost, StepCost, calibrate, plan_cost

MODES = ("plain", "resnet", "latent", "pixel")
MACHINERY = ("plan", "enter", "schedule_check")


@attrs.frozen
class Span:
    name: str
    seconds: float
    parent: str | None  # the enclosing span, if any (pixel mode's VAE calls sit in "scaler")
    detail: int | None = None  # token count of a denoiser call


class Recorder:
    """Collects the spans of one generation; ``None`` spans are ignored between generations."""

    def __init__(self, device: torch.device) -> None:
        self._sync = device.type == "cuda"
        self._open: list[tuple[str, float, int | None]] = []
        self.spans: list[Span] = []

    def now(self) -> float:
        if self._sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def reset(self) -> None:
        self._open.clear()
        self.spans = []

    def open(self, name: str, detail: int | None = None) -> None:
        self._open.append((name, self.now(), detail))

    def close(self) -> None:
        end = self.now()
        name, start, detail = self._open.pop()
        parent = self._open[-1][0] if self._open else None
        self.spans.append(Span(name, end - start, parent, detail))

    @contextmanager
    def span(self, name: str) -> Iterator[None]:
        self.open(name)
        try:
            yield
        finally:
            self.close()


def _timed(recorder: Recorder, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    # wraps: the pipelines read encode_prompt's signature to pass the call's arguments by name.
    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        with recorder.span(name):
            return fn(*args, **kwargs)

    return timed


def _wrap_method(obj: Any, method: str, recorder: Recorder, name: str) -> None:
    # An instance attribute shadows the class's method for this object only.
    vars(obj)[method] = _timed(recorder, name, getattr(obj, method))


def _token_count(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    if "hidden_states" in kwargs:  # FLUX: packed (B, tokens, 64)
        return int(kwargs["hidden_states"].shape[1])
    sample = kwargs.get("sample", args[0] if args else None)  # UNet: (B, C, h, w)
    return int(sample.shape[-2] * sample.shape[-1])


def _hook_denoiser(module: torch.nn.Module, recorder: Recorder) -> None:
    def before(_: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        recorder.open("denoiser", _token_count(args, kwargs))

    def after(*_: Any) -> None:
        recorder.close()

    module.register_forward_pre_hook(before, with_kwargs=True)
    module.register_forward_hook(after)


def _time_scalers(pipe: Any, recorder: Recorder) -> None:
    make_scaler = pipe._lss_scaler

    def timed_scaler(mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
        return _timed(recorder, "scaler", make_scaler(mode))

    vars(pipe)["_lss_scaler"] = timed_scaler


_patched: dict[str, list[Recorder]] = {}


def _time_module_function(module: Any, name: str, span: str, recorder: Recorder) -> None:
    """Time ``module.name`` as ``span`` (a module function: patched once per process)."""
    if name in _patched:
        _patched[name][0] = recorder
        return
    current = _patched[name] = [recorder]
    original = getattr(module, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        with current[0].span(span):
            return original(*args, **kwargs)

    setattr(module, name, timed)


def instrument(bench: BenchModel, recorder: Recorder) -> None:
    """Time the pieces of every call of ``bench``'s two pipelines into ``recorder``."""
    pipe = bench.pipeline
    _wrap_method(pipe, "_lss_plan", recorder, "plan")
    # The stage hand-over (upsampling and re-noising) is the core stage loop's.
    _time_module_function(stages, "hand_over", "enter", recorder)
    _time_scalers(pipe, recorder)
    _time_module_function(mixin, "_check_stage_schedule", "schedule_check", recorder)
    for each in (pipe, bench.stock):
        _wrap_method(each, "encode_prompt", recorder, "text")
    _wrap_method(pipe.vae, "decode", recorder, "vae_decode")
    _wrap_method(pipe.vae, "encode", recorder, "vae_encode")
    _hook_denoiser(bench.denoiser, recorder)


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


@attrs.frozen
class RunRecord:
    seconds: float
    spans: tuple[Span, ...]

    def total(self, name: str, *, top_level: bool = False) -> float:
        return sum(s.seconds for s in self.spans if s.name == name and not (top_level and s.parent))

    def denoiser_calls(self) -> dict[int, list[float]]:
        calls: dict[int, list[float]] = {}
        for s in self.spans:
            if s.name == "denoiser" and s.detail is not None:
                calls.setdefault(s.detail, []).append(s.seconds)
        return calls

    def breakdown(self) -> dict[str, float]:
        """Seconds per part; the parts add up to the whole call."""
        parts = {
            "denoiser": self.total("denoiser"),
            "text": self.total("text"),
            "vae_decode": self.total("vae_decode", top_level=True),
            "upsample": self.total("scaler"),
            "renoise": self.total("enter") - self.total("scaler"),
            "plan": self.total("plan") + self.total("schedule_check"),
        }
        parts["other"] = self.seconds - sum(parts.values())
        return parts

    def machinery(self) -> float:
        return sum(self.total(name) for name in MACHINERY)


@attrs.define
class ModelRunner:
    """Runs one benchmark model in every mode and keeps the timed records of each run."""

    bench: BenchModel
    device: torch.device
    recorder: Recorder
    records: dict[str, list[RunRecord]] = attrs.field(factory=dict)

    @classmethod
    def create(cls, bench: BenchModel, device: torch.device) -> ModelRunner:
        recorder = Recorder(device)
        instrument(bench, recorder)
        return cls(bench, device, recorder)

    def generate(self, mode: str) -> Any:
        generator = torch.Generator(self.device).manual_seed(0)
        if mode == "plain":
            return self.bench.stock(**self.bench.call, generator=generator)
        return self.bench.pipeline(
            **self.bench.call, **self.bench.lss, scaling_mode=mode, generator=generator
        )

    def run_once(self, mode: str, key: str) -> RunRecord:
        """One timed generation, kept under ``records[key]``; ends with the device idle."""
        self.recorder.reset()
        start = self.recorder.now()
        self.generate(mode)
        record = RunRecord(self.recorder.now() - start, tuple(self.recorder.spans))
        self.records.setdefault(key, []).append(record)
        return record

    def timed_call(self, mode: str) -> Callable[[], None]:
        """What a per-mode case times: one generation in ``mode``."""

        def run() -> None:
            self.run_once(mode, mode)

        return run

    def paired_round(self) -> Callable[[], None]:
        """What the paired case times: one generation in every mode, back to back.

        Ratios of neighbouring runs cancel the slow drift of a shared machine's speed, which
        the per-mode cases (all rounds of one mode, then the next mode) cannot. The order
        rotates every round so that no mode always runs first or last.
        """
        rounds = [0]

        def run() -> None:
            shift = rounds[0] % len(MODES)
            for mode in MODES[shift:] + MODES[:shift]:
                self.run_once(mode, f"paired:{mode}")
            rounds[0] += 1

        return run


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def mode_summary(records: Sequence[RunRecord], wall: Mapping[str, float]) -> dict[str, Any]:
    """Per-mode figures from the timed rounds (``wall``: pytest-benchmark's min / median)."""
    parts = [r.breakdown() for r in records]
    return {
        # Other processes on the machine skew timings; the 1-minute load says how much.
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "rounds": len(records),
        "wall_min_s": wall["min"],
        "wall_median_s": wall["median"],
        "breakdown_median_s": {k: _median([p[k] for p in parts]) for k in parts[0]},
        "machinery_share": _median([r.machinery() / r.seconds for r in records]),
        "machinery_median_s": _median([r.machinery() for r in records]),
        "scaler_median_s": _median([r.total("scaler") for r in records]),
        "denoiser_median_s": _median([r.total("denoiser") for r in records]),
        "denoiser_calls": {str(n): len(calls) for n, calls in records[0].denoiser_calls().items()},
    }


def step_times(records: Mapping[str, Sequence[RunRecord]]) -> dict[int, float]:
    """Median seconds of one denoiser call per token count, over every timed run of a model."""
    calls: dict[int, list[float]] = {}
    for runs in records.values():
        for run in runs:
            for tokens, seconds in run.denoiser_calls().items():
                calls.setdefault(tokens, []).extend(seconds)
    return {tokens: _median(seconds) for tokens, seconds in sorted(calls.items())}


def _mode_flops(flops: Mapping[str, Any], mode: str) -> float:
    """FLOPs only LSS does in ``mode`` (the scaler), per image."""
    if mode == "resnet":
        return float(flops["upsampler"])
    if mode == "pixel":
        return float(flops["vae_decode_first"] + flops["vae_encode_target"])
    return 0.0  # bicubic interpolation: negligible, and not a counted op


def _end_to_end(bench: BenchModel, model: StepCost, flops: Mapping[str, Any], mode: str) -> float:
    """Predicted plain / LSS with the scaler and the final decode added.

    The cost models count one sample per denoiser call; SDXL's guided call is two, so work done
    once per image is divided by the guidance batch to be in the same units.
    """
    batch = bench.denoiser_batch
    cost = plan_cost(
        bench.plan(),
        model,
        overhead_flops=_mode_flops(flops, mode) / batch,
        shared_flops=float(flops["vae_decode_target"]) / batch,
    )
    return cost.speedup


def model_summary(
    bench: BenchModel,
    modes: Mapping[str, dict[str, Any]],
    steps: Mapping[int, float],
    flops: Mapping[str, Any],
    paired: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Measured speed-ups against the cost model's predictions, for one model.

    ``flops`` is the count of `flop_report` (`benchmarks/models.py`) for ``bench``;
    ``paired`` is :func:`paired_summary`'s, when the paired case ran.
    """
    plan = bench.plan()
    predicted = plan_cost(plan, bench.cost).speedup
    calibrated: CalibratedCost | None = calibrate(bench.cost, steps) if len(steps) >= 2 else None
    calibrated_speedup = plan_cost(plan, calibrated).speedup if calibrated else float("nan")
    full_tokens, first_tokens = plan.target.num_tokens, plan.stages[0].num_tokens
    full_step = steps.get(full_tokens, float("nan"))
    plain = modes["plain"]
    out: dict[str, Any] = {
        "plan": f"{plan.describe()}\n{plan_cost(plan, bench.cost).describe()}",
        "predicted_speedup": predicted,
        "calibrated_speedup": calibrated_speedup,
        "calibration": None
        if calibrated is None
        else {
            "flops_per_second": calibrated.flops_per_second,
            "overhead_seconds": calibrated.overhead_seconds,
        },
        "step_seconds": {str(n): s for n, s in steps.items()},
        "step_time_ratio": full_step / steps.get(first_tokens, float("nan")),
        "step_flop_ratio": bench.cost.flops(full_tokens) / bench.cost.flops(first_tokens),
        "predicted_speedup_by_steps": {
            str(n): plan_cost(bench.plan(num_inference_steps=n), bench.cost).speedup
            for n in (20, 28, 50)
        },
        "modes": {},
    }
    for mode, summary in modes.items():
        entry = dict(summary)
        if mode != "plain":
            measured = plain["wall_min_s"] / summary["wall_min_s"]
            end_to_end = _end_to_end(bench, calibrated, flops, mode) if calibrated else float("nan")
            entry.update(
                speedup=measured,
                speedup_median=plain["wall_median_s"] / summary["wall_median_s"],
                denoiser_speedup=plain["denoiser_median_s"] / summary["denoiser_median_s"],
                measured_over_predicted=measured / predicted,
                measured_over_calibrated=measured / calibrated_speedup,
                predicted_end_to_end_flops=_end_to_end(bench, bench.cost, flops, mode),
                predicted_end_to_end=end_to_end,
                measured_over_end_to_end=measured / end_to_end,
                scaler_per_full_step=summary["scaler_median_s"] / full_step,
            )
            if paired:
                speedup = paired[mode]["speedup"]
                entry.update(
                    paired_speedup=speedup,
                    paired_over_predicted=speedup / predicted,
                    paired_over_end_to_end=speedup / end_to_end,
                )
        out["modes"][mode] = entry
    return out


def upsampler_summary(
    walls: Mapping[str, Mapping[str, float]], steps: Mapping[int, float], bench: BenchModel
) -> dict[str, Any]:
    """The upsampler timed alone, per memory format, against one full-resolution step."""
    full_step = steps.get(bench.plan().target.num_tokens, float("nan"))
    return {
        memory_format: {
            "min_s": wall["min"],
            "median_s": wall["median"],
            "min_per_full_step": wall["min"] / full_step,
        }
        for memory_format, wall in walls.items()
    }


def paired_summary(records: Mapping[str, Sequence[RunRecord]], rounds: int) -> dict[str, Any]:
    """Median over the last ``rounds`` paired rounds of plain / LSS, per LSS mode."""
    plain = [r.seconds for r in records["paired:plain"][-rounds:]]
    summary: dict[str, Any] = {"rounds": rounds}
    for mode in MODES[1:]:
        lss = [r.seconds for r in records[f"paired:{mode}"][-rounds:]]
        ratios = [p / m for p, m in zip(plain, lss)]
        summary[mode] = {"speedup": _median(ratios), "ratios": ratios}
    return summary
