"""Shared by the lssgen-mini tests: the tiny sizes and the `lssgen mini` call."""

from lssgen.cli import main

NATIVE, LOW = 64, 32  # pixels: 8x8 latents, 4x4 at the first LSS stage


def mini(*args):
    return main(["mini", *map(str, args)])
