"""The one note of the model libraries that `lssgen` commands hide, and only around themselves.

Importing a Diffusers pipeline module imports `CLIPImageProcessor` / `SiglipImageProcessor` from
transformers (for the pipelines' optional IP-Adapter feature extractors). Without torchvision,
which we do not install (its wheels pull another torch), transformers falls back to the PIL
classes, the ones those names meant before its image-processor refactoring, and logs a warning
for each: two lines on every command, about a component no lssgen command uses. `lssgen.cli.main`
runs each command inside `torchvision_fallback_hidden`, which drops those records on that one
logger while the command runs; every other message of transformers still shows, and a program
that imports Diffusers itself still sees these.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

# The logger and the wording of transformers 5 (`utils/import_utils.py`, `_LazyModule`).
TRANSFORMERS_IMPORT_LOGGER = "transformers.utils.import_utils"
TORCHVISION_FALLBACK = re.compile(
    r"`\w+ImageProcessor` requires torchvision \(not installed\); falling back to `\w+Pil`"
)


class _TorchvisionFallbackFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not TORCHVISION_FALLBACK.search(record.getMessage())


@contextlib.contextmanager
def torchvision_fallback_hidden() -> Iterator[None]:
    """Within the block, transformers' "requires torchvision ... falling back to ...Pil" warnings
    are dropped (nothing else is)."""
    logger = logging.getLogger(TRANSFORMERS_IMPORT_LOGGER)
    hidden = _TorchvisionFallbackFilter()
    logger.addFilter(hidden)
    try:
        yield
    finally:
        logger.removeFilter(hidden)
