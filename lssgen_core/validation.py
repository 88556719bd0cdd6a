"""Argument checks and attrs validators shared by lssgen_core, the adapters and the tools.

Each names the argument (or field) and the allowed range in its message, so a bad value fails
before any work.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import attrs

from lssgen_core.errors import LSSArgumentError


def check_positive_int(value: object, argument: str, *, shown: str | None = None) -> int:
    """``value`` as an int if it is an integer >= 1 (a numpy integer too, never a bool), else an
    LSSArgumentError naming ``argument``; ``shown`` is the name the message shows, where it is
    more precise than the argument (``stage_steps[1]``)."""
    # bool is an int subclass: True as a count is a mistake, not a 1.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise LSSArgumentError(argument, f"{shown or argument}={value!r} must be an integer >= 1")
    return int(value)


def positive_int(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """The attrs validator of :func:`check_positive_int`."""
    check_positive_int(value, attribute.name)


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
