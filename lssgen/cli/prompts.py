"""Prompt lists for batch generation: GenEval's metadata JSONL or a plain text file.

Each prompt is kept as the JSON object GenEval's evaluator reads back from the prompt's
``metadata.jsonl`` (a text-file line ``a red cube`` becomes ``{"prompt": "a red cube"}``), so one
list serves both generation and evaluation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

JSONL_SUFFIXES = (".jsonl",)


class PromptFileError(ValueError):
    """A prompt file that cannot be used; the message names the file and, where known, the line."""


def prompt_from_text(text: str) -> dict[str, Any]:
    return {"prompt": text}


def load_prompt_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The prompts in ``path``: GenEval's JSONL if it ends in ``.jsonl``, else one per line.

    Blank lines are skipped in both formats. The choice goes by suffix only, so a text prompt that
    happens to start with ``{`` is never parsed as JSON.
    """
    file = Path(path)
    if not file.is_file():
        raise PromptFileError(f"prompt file not found: {file}")
    try:
        # utf-8-sig: files saved by Windows editors start with a byte-order mark.
        lines = file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptFileError(f"cannot read {file}: {exc}") from exc
    if file.suffix.lower() in JSONL_SUFFIXES:
        prompts = [_jsonl_entry(file, number, line) for number, line in _numbered(lines)]
    else:
        prompts = [prompt_from_text(line.strip()) for _, line in _numbered(lines)]
    if not prompts:
        raise PromptFileError(f"{file} holds no prompts")
    return prompts


def _numbered(lines: list[str]) -> list[tuple[int, str]]:
    # Line numbers count blank lines too, so they match what an editor shows.
    return [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]


def _jsonl_entry(file: Path, number: int, line: str) -> dict[str, Any]:
    where = f"{file} line {number}"
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise PromptFileError(f"{where} is not valid JSON ({exc.msg})") from exc
    if not isinstance(entry, dict):
        raise PromptFileError(
            f'{where}: expected a JSON object with a "prompt" string, got {type(entry).__name__}'
        )
    if "prompt" not in entry:
        raise PromptFileError(f'{where}: the object has no "prompt" key')
    if not isinstance(entry["prompt"], str):
        kind = type(entry["prompt"]).__name__
        raise PromptFileError(f'{where}: "prompt" must be a string, got {kind}')
    return entry
