"""The output folder of ``lssgen generate``: GenEval's layout plus run settings and timings.

    OUTDIR/config.json                    the run's settings (checked when a run resumes)
    OUTDIR/{i:05}/metadata.jsonl          prompt i's JSON object, written as GenEval writes it
    OUTDIR/{i:05}/samples/{k:05}.png      sample k of prompt i
    OUTDIR/timings/*.json                 one file per process and run: seconds per image
    OUTDIR/result.json                    all timings merged: per image, per process and total

GenEval's evaluator reads only the digit-named folders and ``\\d+\\.png`` names, so the extra
files are invisible to it. Every file is written atomically (temp file, then ``os.replace``); the
temp files start with a dot, so a killed run never leaves anything the evaluator would pick up.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lssgen_core.atomic import write_bytes_atomic, write_json_atomic

# The settings of a generate run (its own file, beside the samples; not a component config).
RUN_CONFIG_NAME = "config.json"
RESULT_NAME = "result.json"
TIMINGS_DIRNAME = "timings"
METADATA_NAME = "metadata.jsonl"
SAMPLES_DIRNAME = "samples"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

WorkItem = tuple[int, int]  # (prompt index i, sample index k)


def item_key(item: WorkItem) -> str:
    return f"{item[0]:05}/{item[1]:05}"


def prompt_dir(outdir: Path, prompt_index: int) -> Path:
    return outdir / f"{prompt_index:05}"


def sample_path(outdir: Path, item: WorkItem) -> Path:
    return prompt_dir(outdir, item[0]) / SAMPLES_DIRNAME / f"{item[1]:05}.png"


def work_items(num_prompts: int, n_samples: int) -> list[WorkItem]:
    """Every image of the run, prompt-major: the order images are generated in."""
    return [(i, k) for i in range(num_prompts) for k in range(n_samples)]


def shard(items: Sequence[WorkItem], process_index: int, num_processes: int) -> list[WorkItem]:
    """Process ``process_index``'s share: every ``num_processes``-th item, so shares differ in
    size by at most one and together hold every item exactly once."""
    return list(items[process_index::num_processes])


# --- prompts -----------------------------------------------------------------------------------


def metadata_text(metadata: dict[str, Any]) -> str:
    # Byte for byte what GenEval's own generation script writes (json.dump, default separators,
    # no trailing newline); its evaluator reads the file back with json.load.
    return json.dumps(metadata)


def write_metadata(outdir: Path, prompt_index: int, metadata: dict[str, Any]) -> None:
    path = prompt_dir(outdir, prompt_index) / METADATA_NAME
    text = metadata_text(metadata)
    # A resumed run finds the same text: skip the write (and its fsync) for thousands of prompts.
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    write_bytes_atomic(path, text.encode("utf-8"))


# --- images ------------------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a whole, undamaged PNG, else None.

    Walks every chunk and checks its CRC (zlib.crc32, about a millisecond per megabyte), so a
    file damaged anywhere (a flipped byte in the middle of the image data, a zeroed block) fails,
    as do truncated files and bytes after IEND.
    """
    if not data.startswith(_PNG_SIGNATURE):
        return None
    size: tuple[int, int] | None = None
    has_data = False
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        body_end = pos + 8 + length
        if body_end + 4 > len(data):
            return None
        (crc,) = struct.unpack_from(">I", data, body_end)
        if zlib.crc32(data[pos + 8 : body_end], zlib.crc32(kind)) != crc:
            return None
        if pos == len(_PNG_SIGNATURE):
            if kind != b"IHDR" or length != 13:
                return None
            size = struct.unpack_from(">II", data, pos + 8)
        has_data = has_data or kind == b"IDAT"
        pos = body_end + 4
        if kind == b"IEND":
            return size if has_data and pos == len(data) else None
    return None


def is_complete_png(path: Path, width: int, height: int) -> bool:
    """True if ``path`` is an undamaged PNG (`png_size`) of ``width`` x ``height``.

    Reads the whole file: a resumed run must redo an image damaged anywhere, not only one cut
    short. Files this tool writes are complete by construction (atomic rename); the check catches
    files damaged by something else (a partial copy, a bad disk) and images of another size.
    """
    try:
        data = path.read_bytes()
    except OSError:  # missing or unreadable
        return False
    return png_size(data) == (width, height)


def pending_items(
    outdir: Path, items: Iterable[WorkItem], width: int, height: int
) -> list[WorkItem]:
    """The items without a complete PNG: what a (resumed) run still has to generate."""
    return [item for item in items if not is_complete_png(sample_path(outdir, item), width, height)]


def remove_stale_temp_files(outdir: Path, items: Iterable[WorkItem]) -> int:
    """Delete temp files a killed run left for ``items``; returns how many.

    The names follow ``lssgen_core.atomic.write_bytes_atomic`` (``.NAME.*.tmp`` next to NAME).
    Call it only while no process writes these items.
    """
    removed = 0
    for item in items:
        path = sample_path(outdir, item)
        if not path.parent.is_dir():
            continue
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
            removed += 1
    return removed


# --- timings -----------------------------------------------------------------------------------


def utc_stamp() -> str:
    """The UTC time to the microsecond; sorts like the times it names."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


class ProcessTimings:
    """One process's timings for one run, rewritten atomically after every batch.

    Each process owns its own file (run start, process index and pid in the name), so processes
    never write the same file and a killed run keeps the timings of every image it finished.
    """

    def __init__(
        self,
        outdir: Path,
        *,
        process_index: int,
        num_processes: int,
        device: str,
        load_seconds: float,
    ) -> None:
        started = utc_stamp()
        name = f"{started}-p{process_index:03}-{os.getpid()}.json"
        self.path = outdir / TIMINGS_DIRNAME / name
        self._start = time.perf_counter()
        self.data: dict[str, Any] = {
            "started_at": started,
            "process_index": process_index,
            "num_processes": num_processes,
            "device": device,
            "load_seconds": load_seconds,
            "wall_seconds": 0.0,
            "generation_seconds": 0.0,
            "images": {},
        }

    def record(self, items: Sequence[WorkItem], seconds: float) -> None:
        """A batch of ``items`` took ``seconds``; each image is charged an equal share."""
        share = seconds / len(items)
        for item in items:
            self.data["images"][item_key(item)] = {"seconds": share, "batch_size": len(items)}
        self.data["generation_seconds"] += seconds
        self.data["wall_seconds"] = time.perf_counter() - self._start
        write_json_atomic(self.path, self.data)


def _read_timings(outdir: Path) -> list[dict[str, Any]]:
    runs = []
    # Names start with the UTC start time: sorted, later runs come last and win per image.
    for path in sorted((outdir / TIMINGS_DIRNAME).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # not ours, or damaged by hand: the images themselves are what count
        if isinstance(data, dict) and isinstance(data.get("images"), dict):
            runs.append({**data, "file": f"{TIMINGS_DIRNAME}/{path.name}"})
    return runs


def merge_results(
    outdir: Path,
    items: Sequence[WorkItem],
    width: int,
    height: int,
    last_run: dict[str, Any],
) -> dict[str, Any]:
    """Merge every process's timings into ``result.json``; call once all processes are done.

    ``total_seconds`` sums the model time charged to each finished image (over all processes and
    runs; a batch's time is shared equally by its images); ``last_run`` holds this run's wall
    time, model loading included.
    """
    runs = _read_timings(outdir)
    per_image: dict[str, Any] = {}
    for run in runs:
        for key, timing in run["images"].items():
            per_image[key] = {
                **timing,
                "process_index": run.get("process_index"),
                "run": run["file"],
            }
    done = [item for item in items if is_complete_png(sample_path(outdir, item), width, height)]
    images = {item_key(i): per_image[item_key(i)] for i in done if item_key(i) in per_image}
    total = sum(timing["seconds"] for timing in images.values())
    result = {
        "num_images": len(items),
        "completed": len(done),
        "missing": len(items) - len(done),
        # Images a killed process finished but had not yet recorded (at most its last batch).
        "untimed": len(done) - len(images),
        "total_seconds": total,
        "seconds_per_image": total / len(images) if images else None,
        "last_run": last_run,
        "processes": [{k: v for k, v in run.items() if k != "images"} for run in runs],
        "images": images,
    }
    write_json_atomic(outdir / RESULT_NAME, result)
    return result
