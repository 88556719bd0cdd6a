"""One progress bar over all stages of an LSS run.

Each stage's stock ``__call__`` opens ``self.progress_bar(total=<its steps>)``; while a run is
active the pipeline hands it a :class:`StageProgress` instead, which forwards updates to the run's
single bar (total: the plan's denoising steps) and leaves it open for the next stage.
"""

from __future__ import annotations

from typing import Any


class StageProgress:
    """Context manager a stage's stock loop gets from ``progress_bar``; updates the shared bar."""

    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def __enter__(self) -> StageProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # The shared bar stays open: the next stage keeps counting on it.
        return None

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bar, name)
