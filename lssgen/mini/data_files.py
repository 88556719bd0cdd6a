"""lssgen-mini's fixed data, kept as JSON in `configs/`: the palette and the configs of the models
its stages build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFIGS = Path(__file__).parent / "configs"


def read_config(name: str) -> dict[str, Any]:
    """The JSON object of `configs/<name>.json`."""
    data: dict[str, Any] = json.loads((CONFIGS / f"{name}.json").read_text())
    return data
