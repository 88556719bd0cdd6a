"""Latent upsampling: the learned 2x latent upsampler and the interchangeable latent scalers.

Pure PyTorch. `safetensors` is imported only when upsampler weights are loaded or saved.

Training (`train_upsampler`) and evaluation (`evaluate_scalers`) work for any VAE given as
`encode` / `decode` callables (images in [-1, 1] <-> model-space latents); the Diffusers VAE
adapter and the `lssgen train-upsampler` / `eval-upsampler` commands live in lssgen_diffusers.
"""

from lssgen_core.upsample.checkpoint import load_training_state, save_training_state
from lssgen_core.upsample.config import UpsamplerConfig
from lssgen_core.upsample.evaluate import (
    EvalResult,
    MethodScore,
    evaluate_scalers,
    format_table,
    standard_scalers,
)
from lssgen_core.upsample.losses import UpsamplerLoss
from lssgen_core.upsample.lpips import LPIPS, load_lpips
from lssgen_core.upsample.metrics import latent_mse, psnr, ssim
from lssgen_core.upsample.network import LatentUpSampler, LatentUpsampler
from lssgen_core.upsample.pairs import DOWNSAMPLE_MODES, ImageSource, downsample
from lssgen_core.upsample.scalers import (
    SCALING_MODES,
    InterpolationScaler,
    LatentScaler,
    PixelRoundTripScaler,
    make_latent_scaler,
)
from lssgen_core.upsample.train import (
    ResumeError,
    SingleProcess,
    StepReport,
    TrainConfig,
    TrainResult,
    default_upsampler_config,
    init_upsampler,
    train_upsampler,
)

__all__ = [
    "DOWNSAMPLE_MODES",
    "LPIPS",
    "SCALING_MODES",
    "EvalResult",
    "ImageSource",
    "InterpolationScaler",
    "LatentScaler",
    "LatentUpSampler",
    "LatentUpsampler",
    "MethodScore",
    "PixelRoundTripScaler",
    "ResumeError",
    "SingleProcess",
    "StepReport",
    "TrainConfig",
    "TrainResult",
    "UpsamplerConfig",
    "UpsamplerLoss",
    "default_upsampler_config",
    "downsample",
    "evaluate_scalers",
    "format_table",
    "init_upsampler",
    "latent_mse",
    "load_lpips",
    "load_training_state",
    "make_latent_scaler",
    "psnr",
    "save_training_state",
    "ssim",
    "standard_scalers",
    "train_upsampler",
]
