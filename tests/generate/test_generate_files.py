"""Prompt files, sharding and PNG completeness: the pieces a resumed, sharded run relies on."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from lssgen.cli.geneval_layout import is_complete_png, shard, work_items
from lssgen.cli.prompts import PromptFileError, load_prompt_file


def test_text_prompts_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "prompts.txt"
    # A byte-order mark, CRLF line ends, blank lines and padding: all common in hand-made lists.
    path.write_bytes("\ufeffa red cube\r\n\r\n  two dogs  \r\n{not json}\n".encode())
    assert load_prompt_file(path) == [
        {"prompt": "a red cube"}, {"prompt": "two dogs"}, {"prompt": "{not json}"},
    ]  # fmt: skip


def test_jsonl_keeps_every_field(tmp_path: Path) -> None:
    path = tmp_path / "META.JSONL"
    path.write_text('{"tag": "counting", "prompt": "three cats", "include": []}\n\n')
    assert load_prompt_file(path) == [{"tag": "counting", "prompt": "three cats", "include": []}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('["a list"]\n', 'line 1: expected a JSON object with a "prompt" string, got list'),
        ('{"prompt": 3}\n', 'line 1: "prompt" must be a string, got int'),
        ("\n\n", "holds no prompts"),
    ],
)
def test_bad_jsonl(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(text)
    with pytest.raises(PromptFileError, match=message):
        load_prompt_file(path)


@pytest.mark.parametrize("num_processes", [1, 2, 3, 7])
def test_shards_cover_every_item_once(num_processes: int) -> None:
    items = work_items(5, 4)
    shares = [shard(items, index, num_processes) for index in range(num_processes)]
    assert sorted(item for share in shares for item in share) == items
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_png_completeness(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 10, 10)).save(buffer, format="PNG")
    data = buffer.getvalue()
    path = tmp_path / "00000.png"
    path.write_bytes(data)
    assert is_complete_png(path, 48, 32)
    assert not is_complete_png(path, 32, 48)  # another run's size
    path.write_bytes(data[:-1])
    assert not is_complete_png(path, 48, 32)  # truncated
    path.write_bytes(b"")
    assert not is_complete_png(path, 48, 32)
    assert not is_complete_png(tmp_path / "missing.png", 48, 32)
