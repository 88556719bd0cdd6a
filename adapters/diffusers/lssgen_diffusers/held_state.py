"""Pipeline state a callback may change and that must hold for the rest of an LSS call.

Every stock ``__call__`` starts with ``self._guidance_scale = guidance_scale``. Callbacks that
change guidance part-way (Diffusers' ``SDXLCFGCutoffCallback`` and the like set
``pipe._guidance_scale = 0.0``) rely on that value lasting until the call ends; with several
stages each stage's stock ``__call__`` would set it back, turning CFG on again at every stage. A
:class:`HeldAcrossStages` attribute therefore ignores the reset done by the stock ``__call__`` of
every stage after the first (while an LSS run says so), and is a plain attribute otherwise, so a
one-stage call is the stock call.
"""

from __future__ import annotations

from typing import Any, Protocol


class _HoldsState(Protocol):
    def ignores_stock_reset(self) -> bool: ...


class HeldAcrossStages:
    """Data descriptor for a pipeline attribute the stock ``__call__`` resets at its start."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        self._slot = f"_lss_held{name}"

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        try:
            return vars(instance)[self._slot]
        except KeyError:
            raise AttributeError(self._name) from None

    def __set__(self, instance: Any, value: Any) -> None:
        run: _HoldsState | None = getattr(instance, "_lss_run", None)
        if run is not None and run.ignores_stock_reset():
            return  # a later stage's stock __call__ resetting the value the call has reached
        vars(instance)[self._slot] = value
