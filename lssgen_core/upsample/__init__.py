"""Latent upsampling: the learned 2x latent upsampler and the interchangeable latent scalers.

Pure PyTorch. `safetensors` is imported only when upsampler weights are loaded or saved.

Training an upsampler (`train_upsampler`) and comparing scalers (`compare_scalers`) are
applications: they live in `lssgen.training`, and importing this package loads none of them.
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
from lssgen_core.upsample.video import (
    PerFrameScaler,
    VideoPixelRoundTripScaler,
    as_video_scaler,
    make_video_latent_scaler,
)

__all__ = [
    "SCALING_MODES",
    "InterpolationScaler",
    "LatentScaler",
    "LatentUpSampler",
    "LatentUpsampler",
    "PerFrameScaler",
    "PixelRoundTripScaler",
    "UpsamplerConfig",
    "VideoPixelRoundTripScaler",
    "as_video_scaler",
    "make_latent_scaler",
    "make_video_latent_scaler",
]
