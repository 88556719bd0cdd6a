"""The house rules of the layout: the library never imports the applications or the test
builders, and importing the core loads no training code."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = (
    "lssgen_core",
    "adapters/diffusers/lssgen_diffusers",
    "adapters/kdiffusion/lssgen_kdiffusion",
)
TEST_BUILDERS = (
    "adapters/diffusers/lssgen_diffusers/testing.py",
    "adapters/diffusers/lssgen_diffusers/testing_video.py",  # builds on testing.py's tokenizers
    "adapters/diffusers/lssgen_diffusers/testing_hidream.py",  # likewise
    "adapters/diffusers/lssgen_diffusers/testing_lumina2.py",  # and on its Gemma-2 and VAE
    "adapters/diffusers/lssgen_diffusers/testing_z_image.py",  # and on its VAE
    "adapters/diffusers/lssgen_diffusers/testing_text.py",  # shared tiny text encoders
)
TRAINING_MODULES = (
    "train",
    "batches",
    "pairs",
    "losses",
    "lpips",
    "checkpoint",
    "evaluate",
    "scaler_comparison",
    "metrics",
)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize(
    "package", ["lssgen", "lssgen_core", "lssgen_diffusers", "lssgen_kdiffusion"]
)
def test_every_package_lives_in_a_folder_named_as_it_imports(package: str) -> None:
    """A reader finds `lssgen_diffusers.mixin` at `.../lssgen_diffusers/mixin.py`."""
    module = importlib.import_module(package)
    folder = Path(module.__file__).parent
    assert folder.name == package
    assert folder.is_relative_to(ROOT)


def production_files() -> list[Path]:
    folders = (*LIBRARY, "lssgen")
    files = [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]
    return [path for path in files if path not in {ROOT / b for b in TEST_BUILDERS}]


def test_production_code_never_imports_the_test_builders() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in production_files()
        if {"lssgen_diffusers.testing", "lssgen_diffusers.testing_video"} & imported_modules(path)
    ]
    assert offenders == []


def test_the_library_never_imports_the_applications() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for folder in LIBRARY
        for path in sorted((ROOT / folder).rglob("*.py"))
        for module in imported_modules(path)
        if module == "lssgen" or module.startswith("lssgen.")
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "packages",
    [
        "lssgen_core, lssgen_core.sampling, lssgen_core.upsample, lssgen_core.atomic",
        "lssgen_diffusers",
    ],
)
def test_importing_the_library_loads_no_training_code(packages: str) -> None:
    """Training (the loop, LPIPS, pairs, checkpoints ...) is an application: `lssgen.training`."""
    # Before the move these were lssgen_core.upsample.train, .lpips ...: caught by their names.
    code = (
        f"import sys, {packages}\n"
        f"training = {TRAINING_MODULES!r}\n"
        "apps = sorted(m for m in sys.modules if m.split('.')[0] == 'lssgen'\n"
        "              or (m.startswith('lssgen_') and m.rsplit('.', 1)[-1] in training))\n"
        "assert not apps, apps\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_of_every_command_imports_no_model_library() -> None:
    """`lssgen [COMMAND] --help` starts without Diffusers (it took 5-18 s to import it)."""
    code = (
        "import contextlib, io, sys\n"
        "from lssgen.cli import COMMANDS, main\n"
        "for argv in [['--help'], *([name, '--help'] for name in COMMANDS)]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "    loaded = [m for m in ('diffusers', 'transformers') if m in sys.modules]\n"
        "    assert not loaded, (argv, loaded)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
