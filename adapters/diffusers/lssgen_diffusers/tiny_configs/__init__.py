"""The config values of the tiny random test models, as data.

Each JSON file of this package is a group of named configs (``text_encoders``, ``autoencoders``,
``denoisers``, ``schedulers``): the keyword arguments of a Diffusers model or scheduler class, or
of a Transformers config class, that do not depend on another component. What does (a text
encoder's vocabulary size, a transformer's text width) the builders in
:mod:`lssgen_diffusers.testing_build` add in code. Two keys are not config fields: ``"extends"``
names another config of the same group whose values this one starts from, and keys starting
with ``"//"`` are comments (where a value comes from).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["tiny_config"]

_EXTENDS = "extends"


@cache
def _group(group: str) -> dict[str, dict[str, Any]]:
    text = files(__package__).joinpath(f"{group}.json").read_text(encoding="utf-8")
    configs: dict[str, dict[str, Any]] = json.loads(text)
    return configs


def _resolved(group: str, name: str) -> dict[str, Any]:
    configs = _group(group)
    if name not in configs:
        raise KeyError(f"no tiny config {name!r} in {group}.json; it has {sorted(configs)}")
    entry = configs[name]
    base = _resolved(group, entry[_EXTENDS]) if _EXTENDS in entry else {}
    own = {key: value for key, value in entry.items() if key != _EXTENDS}
    return {**base, **own}


def tiny_config(group: str, name: str, **overrides: Any) -> dict[str, Any]:
    """A fresh copy of config ``name`` of ``group`` (its ``extends`` chain merged, comments
    dropped), with ``overrides`` on top."""
    values = json.loads(json.dumps(_resolved(group, name)))  # a deep copy the caller may change
    values = {key: value for key, value in values.items() if not key.startswith("//")}
    return {**values, **overrides}
