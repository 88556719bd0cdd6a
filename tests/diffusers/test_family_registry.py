"""The one registry of families: the package, the command line, the tiny pipelines and the
README's table all follow it."""

from __future__ import annotations

import re
from pathlib import Path

import diffusers
import pytest

import lssgen_diffusers
from lssgen.cli.generate import KINDS
from lssgen_diffusers.family import LSSFamily
from lssgen_diffusers.mixin import LSSPipelineMixin
from lssgen_diffusers.registry import FAMILIES, Family, defaults_table
from lssgen_diffusers.testing import PIPELINE_KINDS, TINY_FAMILIES, tiny_pipeline

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_defaults_table_is_the_registry() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^\| pipeline \| steps \|.*?(?=\n\n)", text, flags=re.M | re.S)
    assert match is not None, "README has no per-pipeline defaults table"
    assert match.group(0) == defaults_table()


@pytest.mark.parametrize("family", FAMILIES.values(), ids=list(FAMILIES))
def test_each_family_is_one_lss_class_over_its_stock_class(family: Family) -> None:
    lss_class = getattr(lssgen_diffusers, family.lss_class)
    assert lss_class.__module__ == family.module
    assert lss_class.__mro__[1] is LSSPipelineMixin
    assert issubclass(lss_class, LSSFamily)
    assert issubclass(lss_class, getattr(diffusers, family.stock_class))
    assert lss_class.lss_defaults == family.defaults
    assert family.lss_class in lssgen_diffusers.__all__


def test_the_command_line_and_the_tiny_pipelines_list_the_registry() -> None:
    assert list(KINDS) == list(FAMILIES)
    assert [(k.lss_class, k.stock_class, k.defaults) for k in KINDS.values()] == [
        (f.lss_class, f.stock_class, f.defaults) for f in FAMILIES.values()
    ]
    assert list(TINY_FAMILIES) == list(FAMILIES) == list(PIPELINE_KINDS)


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_tiny_pipeline_is_the_stock_class(kind: str) -> None:
    assert type(tiny_pipeline(kind)) is getattr(diffusers, FAMILIES[kind].stock_class)


# The latent multiple of each tiny denoiser (stage sizes are multiples of vae factor x it): the
# default reads the transformer config's patch_size, 1 for UNets; FLUX.1's layout packs 2x2 with
# patch_size=1 in its config. HiDream's tiny transformer has 8x8 patches (testing_hidream).
PATCH_SIZES = {
    "flux": 2,
    "sd3": 2,
    "sdxl": 1,
    "sd": 1,
    "cogview4": 2,
    "pixart-sigma": 2,
    "chroma": 2,
    "sana": 1,
    "hidream": 8,
}


@pytest.mark.parametrize("kind", list(PATCH_SIZES))
def test_the_patch_size_is_the_denoisers_unless_the_pipeline_packs(kind: str) -> None:
    stock = tiny_pipeline(kind)
    pipe = getattr(lssgen_diffusers, FAMILIES[kind].lss_class)(**stock.components)
    assert pipe.lss_patch_size == PATCH_SIZES[kind]
