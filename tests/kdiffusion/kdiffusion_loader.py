"""TEST-ONLY: load the installed k-diffusion's samplers without running its package __init__.

``import k_diffusion`` imports every submodule, and ``k_diffusion/utils.py`` imports
``torchvision.transforms.functional``; the registry's torchvision build fails on CPU torch and then
breaks diffusers (our measurement, torch 2.13 CPU with torchvision 0.28). So ``utils``,
``sampling`` and ``external`` are loaded from the installed files into a bare package under a
private name, with a stand-in for torchvision present only while they import. The real name
``k_diffusion`` and ``torchvision`` stay out of ``sys.modules``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types

PACKAGE = "_lssgen_tests_k_diffusion"
_STUBS = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")


def _torchvision_stand_in() -> dict[str, types.ModuleType]:
    modules = {name: types.ModuleType(name) for name in _STUBS}
    modules["torchvision"].transforms = modules["torchvision.transforms"]  # type: ignore[attr-defined]
    modules["torchvision.transforms"].functional = modules["torchvision.transforms.functional"]  # type: ignore[attr-defined]
    return modules


@functools.cache
def load_k_diffusion() -> types.SimpleNamespace:
    """``sampling``, ``external`` and ``utils`` of the installed k-diffusion, loaded privately."""
    spec = importlib.util.find_spec("k_diffusion")  # finds the files; imports nothing
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("k-diffusion is not installed (pip install --no-deps k-diffusion)")
    package = types.ModuleType(PACKAGE)
    package.__path__ = list(spec.submodule_search_locations)
    package.__package__ = PACKAGE
    sys.modules[PACKAGE] = package
    added = {name: m for name, m in _torchvision_stand_in().items() if name not in sys.modules}
    sys.modules.update(added)
    try:
        modules = {
            name: importlib.import_module(f"{PACKAGE}.{name}")
            for name in ("utils", "sampling", "external")
        }
    finally:
        for name in added:
            sys.modules.pop(name, None)
    return types.SimpleNamespace(**modules)


def sampler(name: str):
    """k-diffusion's ``sample_<name>``."""
    return getattr(load_k_diffusion().sampling, f"sample_{name}")
