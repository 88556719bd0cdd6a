"""attrs validators shared by the configs of lssgen_core and the tools built on it.

Each names the field and the allowed range in its message, so a bad config fails before any work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from lssgen_core.errors import LSSArgumentError


def positive(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    # `not value > 0` rejects NaN; inf is refused too (an lr of inf trains straight to NaN).
    if isinstance(value, bool) or not value > 0 or value == math.inf:
        raise LSSArgumentError(
            attribute.name, f"{attribute.name} must be a finite number > 0, got {value!r}"
        )


def non_negative(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not value >= 0 or value == math.inf:
        raise LSSArgumentError(
            attribute.name, f"{attribute.name} must be a finite number >= 0, got {value!r}"
        )


def fraction(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not 0.0 <= value <= 1.0:
        raise LSSArgumentError(attribute.name, f"{attribute.name} must be in [0, 1], got {value!r}")


def one_of(options: tuple[str, ...]) -> Callable[[object, attrs.Attribute[str], str], None]:
    def check(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in options:
            raise LSSArgumentError(
                attribute.name, f"{attribute.name} must be one of {options}, got {value!r}"
            )

    return check
