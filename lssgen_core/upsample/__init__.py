"""Latent upsampling: the learned 2x latent upsampler and the interchangeable latent scalers.

Pure PyTorch. `safetensors` is imported only when upsampler weights are loaded or saved.
"""

from lssgen_core.upsample.config import UpsamplerConfig
from lssgen_core.upsample.network import LatentUpSampler, LatentUpsampler
from lssgen_core.upsample.scalers import (
    SCALING_MODES,
    InterpolationScaler,
    LatentScaler,
    PixelRoundTripScaler,
    make_latent_scaler,
)

# Training and evaluation of the upsampler (train.py, evaluate.py) are added by a separate change;
# re-export their public names here when they land.

__all__ = [
    "SCALING_MODES",
    "InterpolationScaler",
    "LatentScaler",
    "LatentUpSampler",
    "LatentUpsampler",
    "PixelRoundTripScaler",
    "UpsamplerConfig",
    "make_latent_scaler",
]
