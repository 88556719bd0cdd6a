"""The one registry of model families: what every part of lssgen that lists families reads.

One :class:`Family` line per family: the name ``lssgen generate --pipeline`` takes, the LSS and
stock class names, the module that defines the LSS class, the original's defaults and the stock
native size. The package's exports (:mod:`lssgen_diffusers`), the command line, the tiny test
pipelines (:mod:`lssgen_diffusers.testing`) and the README's defaults table
(:func:`defaults_table`, kept equal by a test) all read :data:`FAMILIES`. Nothing here imports
Diffusers, so listing families costs no start-up time.

Adding a family: its module (see :mod:`lssgen_diffusers.family` and CONTRIBUTING.md) and one line
here.
"""

from __future__ import annotations

import attrs

from lssgen_diffusers.options import (
    COGVIEW4_DEFAULTS,
    FLUX_DEFAULTS,
    SD3_DEFAULTS,
    SD_DEFAULTS,
    SDXL_DEFAULTS,
    LSSDefaults,
)


@attrs.frozen
class Family:
    """One model family."""

    kind: str  # the --pipeline name; its module is lssgen_diffusers.<kind with _ for ->
    label: str  # as the docs name it
    stock_class: str  # in diffusers; the LSS class is "LSS" + it, in lssgen_diffusers
    defaults: LSSDefaults
    native_size: int  # the stock default size in px (the docs' "native size")

    @property
    def lss_class(self) -> str:
        return f"LSS{self.stock_class}"

    @property
    def module(self) -> str:
        """The module defining :attr:`lss_class`."""
        return f"lssgen_diffusers.{self.kind.replace('-', '_')}"


# One line per family; the order is the docs' and the command line's.
_LINES = (
    Family("flux", "FLUX", "FluxPipeline", FLUX_DEFAULTS, 1024),
    Family("sd3", "SD3", "StableDiffusion3Pipeline", SD3_DEFAULTS, 1024),
    Family("sdxl", "SDXL", "StableDiffusionXLPipeline", SDXL_DEFAULTS, 1024),
    Family("sd", "SD", "StableDiffusionPipeline", SD_DEFAULTS, 512),
    Family("cogview4", "CogView4", "CogView4Pipeline", COGVIEW4_DEFAULTS, 1024),
    # Not in the paper: the stock call's steps and guidance, FLUX.1's LSS min_size.
    Family(
        "pixart-sigma",
        "PixArt-Sigma",
        "PixArtSigmaPipeline",
        LSSDefaults(512, False, 20, 4.5),
        1024,
    ),
    Family("chroma", "Chroma", "ChromaPipeline", LSSDefaults(512, False, 35, 5.0), 1024),
    # Not in the paper: the stock call's steps and guidance; min_size 512 px is SANA's smallest
    # released resolution (the 512-px models), a 16x16 DC-AE latent (256 tokens).
    Family("sana", "SANA", "SanaPipeline", LSSDefaults(512, False, 20, 4.5), 1024),
    # Not in the paper: the stock call's 50 steps and true_cfg_scale 4.0, FLUX.1's LSS min_size.
    # The stock call guides with true_cfg_scale (and a negative prompt); the guidance_scale that
    # `lssgen generate` passes only reaches guidance-distilled transformers.
    Family("qwen-image", "Qwen-Image", "QwenImagePipeline", LSSDefaults(512, False, 50, 4.0), 1024),
    # Not in the paper: the stock call's 28 steps and guidance 4.5 (the base checkpoint's),
    # FLUX.1's LSS min_size.
    Family("krea2", "Krea 2", "Krea2Pipeline", LSSDefaults(512, False, 28, 4.5), 1024),
    # Not in the paper: the stock call's steps and guidance (HiDream-I1 Full), FLUX.1's LSS
    # min_size (HiDream-I1 ships FLUX.1's VAE).
    Family(
        "hidream",
        "HiDream-I1",
        "HiDreamImagePipeline",
        LSSDefaults(512, False, 50, 5.0),
        1024,
    ),
    # Not in the paper: the stock calls' steps and guidance (Z-Image's 50 / 5.0; Z-Image-Turbo is
    # run with about 8 steps and guidance 0), FLUX.1's LSS min_size.
    Family("z-image", "Z-Image", "ZImagePipeline", LSSDefaults(512, False, 50, 5.0), 1024),
    Family("lumina2", "Lumina 2", "Lumina2Pipeline", LSSDefaults(512, False, 30, 4.0), 1024),
    # Not in the paper: the stock call's steps and guidance (a base Klein model's; the distilled
    # ones run 4 steps, guidance ignored), FLUX.1's LSS min_size.
    Family(
        "flux2-klein",
        "FLUX.2 [klein]",
        "Flux2KleinPipeline",
        LSSDefaults(512, False, 50, 4.0),
        1024,
    ),
    # Not in the paper: the stock call's steps and guidance, FLUX.1's LSS min_size.
    Family("flux2", "FLUX.2", "Flux2Pipeline", LSSDefaults(512, False, 50, 4.0), 1024),
)

FAMILIES: dict[str, Family] = {family.kind: family for family in _LINES}


def family_of(kind: str) -> Family:
    """The family named ``kind``; a ``KeyError`` naming the known ones otherwise."""
    try:
        return FAMILIES[kind]
    except KeyError:
        raise KeyError(f"unknown family {kind!r}; known: {', '.join(FAMILIES)}") from None


def defaults_table() -> str:
    """The README's per-pipeline defaults table (Markdown), one row per family."""
    rows = [
        "| pipeline | steps | min size | shorten | guidance | native size |",
        "|---|---|---|---|---|---|",
    ]
    for family in FAMILIES.values():
        defaults = family.defaults
        native = str(family.native_size)
        if defaults.min_size >= family.native_size:
            native += f" (so LSS acts at {2 * defaults.min_size})"
        rows.append(
            f"| {family.label} | {defaults.num_inference_steps} | {defaults.min_size} | "
            f"{'on' if defaults.shorten_intermediate_steps else 'off'} | "
            f"{defaults.guidance_scale:.1f} | {native} |"
        )
    return "\n".join(rows)
