"""The arguments of a stock ``__call__`` as one flat dict, so each stage can re-issue the call."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def bind_call(
    function: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """Every parameter of ``function`` (defaults filled in) for this call, keyword by name.

    A ``**kwargs`` parameter (SDXL's deprecated ``callback`` arguments) is flattened into the
    result, so the dict can be passed back as ``function(**result)``.
    """
    signature = inspect.signature(function)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{exc} (the arguments of {function.__qualname__})") from exc
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(name, {}))
        elif parameter.kind is inspect.Parameter.VAR_POSITIONAL and arguments.pop(name, ()):
            raise TypeError(f"{function.__qualname__} got unexpected extra positional arguments")
    return arguments
