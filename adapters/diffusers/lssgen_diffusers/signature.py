"""The LSS pipelines' ``__call__`` as tools see it: the stock signature plus the LSS keywords.

UIs and servers build their forms from ``inspect.signature(pipe.__call__)`` and Diffusers' own
tests look arguments up there, so the generated ``__call__`` carries every stock parameter, in the
stock order and with the stock defaults and annotations (positional calls keep working), followed
by the LSS arguments as keyword-only parameters showing this pipeline's defaults; the stock
``**kwargs`` (SDXL's deprecated callback arguments) stays last. The docstring is the stock one
plus the LSS section. The call itself goes to the shared implementation, which binds the stock
arguments with :func:`~lssgen_diffusers.call_args.bind_call`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from lssgen_diffusers.options import LSS_ARGUMENTS, LSSDefaults, shown_defaults


def lss_parameters(defaults: LSSDefaults) -> list[inspect.Parameter]:
    """The LSS keyword-only parameters with ``defaults``' values visible."""

    shown = shown_defaults(defaults)
    return [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=shown[name], annotation=annotation
        )
        for name, annotation in LSS_ARGUMENTS.items()
    ]


def lss_call_signature(stock_call: Callable[..., Any], defaults: LSSDefaults) -> inspect.Signature:
    """``stock_call``'s signature (``self`` included) with the LSS keywords before ``**kwargs``."""
    stock = inspect.signature(stock_call)
    plain = [p for p in stock.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    var_keyword = [p for p in stock.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    return stock.replace(parameters=[*plain, *lss_parameters(defaults), *var_keyword])


def lss_call(
    stock_pipeline: type,
    implementation: Callable[..., Any],
    defaults: LSSDefaults,
    lss_doc: str,
) -> Callable[..., Any]:
    """``__call__`` for the LSS subclass of ``stock_pipeline``, running ``implementation``.

    ``implementation`` takes the stock arguments as ``*args, **kwargs`` and the LSS ones by
    keyword (``None`` meaning the pipeline's default), as ``LSSPipelineMixin.__call__`` does.
    """
    stock_call = stock_pipeline.__call__

    @functools.wraps(implementation)
    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("min_size") == defaults.min_size:
            # The default shown in the signature, passed back by a form built from it, acts as
            # the default: larger than the image, it means one stage instead of an error.
            kwargs["min_size"] = None
        return implementation(self, *args, **kwargs)

    __call__.__signature__ = lss_call_signature(stock_call, defaults)  # type: ignore[attr-defined]
    # functools.wraps set __wrapped__; the signature above is the one to show, so drop it.
    del __call__.__wrapped__
    __call__.__qualname__ = f"LSS{stock_pipeline.__name__}.__call__"
    __call__.__doc__ = (
        f"``{stock_pipeline.__name__}.__call__`` with latent space scaling.\n"
        f"{stock_call.__doc__ or ''}\n{lss_doc}"
    )
    return __call__
