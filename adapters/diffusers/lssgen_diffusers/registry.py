"""The one registry of model families: what every part of lssgen that lists families reads.

One :class:`Family` line per family: the name ``lssgen generate --pipeline`` takes, the LSS and
stock class names, the module that defines the LSS class, its :class:`LSSDefaults` (the
original's, or the stock call's for a family the paper did not run) and the stock native size.
The package's exports (:mod:`lssgen_diffusers`), the command line, the tiny test pipelines
(:mod:`lssgen_diffusers.testing`) and the README's defaults table (:func:`defaults_table`, kept
equal by a test) all read :data:`FAMILIES`. Nothing here imports
Diffusers, so listing families costs no start-up time.

Adding a family: its module (see :mod:`lssgen_diffusers.family` and CONTRIBUTING.md) and one line
here.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class LSSDefaults:
    """A model family's defaults in the original: the LSS arguments that differ between families,
    and the steps and guidance its batch script used (the pipelines' own call keeps the stock
    defaults for those; ``lssgen generate`` uses these)."""

    min_size: int
    shorten_intermediate_steps: bool
    num_inference_steps: int
    guidance_scale: float


def stock_call_defaults(num_inference_steps: int, guidance_scale: float) -> LSSDefaults:
    """The defaults of a family the paper did not run: its stock call's steps and guidance, with
    FLUX.1's LSS ``min_size`` (512) and no shortened intermediate steps."""
    return LSSDefaults(512, False, num_inference_steps, guidance_scale)


@attrs.frozen
class Family:
    """One model family."""

    kind: str  # the --pipeline name; its module is lssgen_diffusers.<kind with _ for ->
    label: str  # as the docs name it
    stock_class: str  # in diffusers; the LSS class is "LSS" + it, in lssgen_diffusers
    defaults: LSSDefaults
    native_size: int = 1024  # the stock default size in px (the docs' "native size")

    @property
    def lss_class(self) -> str:
        return f"LSS{self.stock_class}"

    @property
    def module(self) -> str:
        """The module defining :attr:`lss_class`."""
        return f"lssgen_diffusers.{self.kind.replace('-', '_')}"


# One line per family; the order is the docs' and the command line's.
_LINES = (
    # The paper's five: the original implementation's defaults (its batch scripts' steps and
    # guidance); at SDXL's min_size 1024, LSS acts from 2048 px.
    Family("flux", "FLUX", "FluxPipeline", LSSDefaults(512, True, 50, 3.5)),
    Family("sd3", "SD3", "StableDiffusion3Pipeline", LSSDefaults(512, False, 28, 7.0)),
    Family("sdxl", "SDXL", "StableDiffusionXLPipeline", LSSDefaults(1024, False, 50, 5.0)),
    Family("sd", "SD", "StableDiffusionPipeline", LSSDefaults(512, False, 50, 7.5), 512),
    Family("cogview4", "CogView4", "CogView4Pipeline", LSSDefaults(512, False, 50, 5.0)),
    # Not in the paper: stock_call_defaults, with these notes.
    Family("pixart-sigma", "PixArt-Sigma", "PixArtSigmaPipeline", stock_call_defaults(20, 4.5)),
    Family("chroma", "Chroma", "ChromaPipeline", stock_call_defaults(35, 5.0)),
    # min_size 512 px is also SANA's smallest released resolution (the 512-px models), a 16x16
    # DC-AE latent (256 tokens).
    Family("sana", "SANA", "SanaPipeline", stock_call_defaults(20, 4.5)),
    # The stock call's 50 steps and true_cfg_scale 4.0: it guides with true_cfg_scale (and a
    # negative prompt); the guidance_scale that `lssgen generate` passes only reaches
    # guidance-distilled transformers.
    Family("qwen-image", "Qwen-Image", "QwenImagePipeline", stock_call_defaults(50, 4.0)),
    # The base checkpoint's 28 steps and guidance 4.5.
    Family("krea2", "Krea 2", "Krea2Pipeline", stock_call_defaults(28, 4.5)),
    # HiDream-I1 Full's; HiDream-I1 ships FLUX.1's VAE.
    Family("hidream", "HiDream-I1", "HiDreamImagePipeline", stock_call_defaults(50, 5.0)),
    # Z-Image's 50 / 5.0; Z-Image-Turbo is run with about 8 steps and guidance 0.
    Family("z-image", "Z-Image", "ZImagePipeline", stock_call_defaults(50, 5.0)),
    Family("lumina2", "Lumina 2", "Lumina2Pipeline", stock_call_defaults(30, 4.0)),
    # A base Klein model's; the distilled ones run 4 steps, guidance ignored.
    Family("flux2-klein", "FLUX.2 [klein]", "Flux2KleinPipeline", stock_call_defaults(50, 4.0)),
    Family("flux2", "FLUX.2", "Flux2Pipeline", stock_call_defaults(50, 4.0)),
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
