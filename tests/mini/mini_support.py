"""Shared by the lssgen-mini tests: the tiny sizes and the `lssgen mini` call."""

from lssgen.cli import main

NATIVE, LOW = 64, 32  # pixels: 8x8 latents, 4x4 at the first LSS stage


def mini(*args):
    return main(["mini", *map(str, args)])


def trained_weights(result):
    """A stage's trained network and its EMA, keyed as its checkpoint keys them."""
    nets = {"net": result.model, "ema": result.ema}
    return {f"{name}.{k}": v for name, net in nets.items() for k, v in net.state_dict().items()}
