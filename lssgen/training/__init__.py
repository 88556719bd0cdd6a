"""Training and evaluating latent upsamplers, and the one training loop (`lssgen.training.loop`)
that the upsampler and lssgen-mini's stages share.

Works for any VAE given as `encode` / `decode` callables (images in [-1, 1] <-> model-space
latents); the Diffusers VAE adapter is `lssgen_diffusers.vae`, the commands are
`lssgen train-upsampler` / `lssgen eval-upsampler` (`lssgen.cli`).
"""

from lssgen.training.backend import SingleProcess
from lssgen.training.checkpoint import load_training_state, save_training_state
from lssgen.training.loop import NonFiniteLossError, StepReport, TrainResult, run_training
from lssgen.training.losses import UpsamplerLoss
from lssgen.training.lpips import LPIPS, load_lpips
from lssgen.training.metrics import latent_mse, psnr, ssim
from lssgen.training.pairs import DOWNSAMPLE_MODES, ImageSource, downsample
from lssgen.training.resume import ResumeError
from lssgen.training.scaler_comparison import (
    MethodScore,
    ScalerComparison,
    compare_scalers,
    format_table,
    standard_scalers,
)
from lssgen.training.train import (
    TrainConfig,
    default_upsampler_config,
    init_upsampler,
    train_upsampler,
)

__all__ = [
    "DOWNSAMPLE_MODES",
    "LPIPS",
    "ImageSource",
    "MethodScore",
    "NonFiniteLossError",
    "ResumeError",
    "ScalerComparison",
    "SingleProcess",
    "StepReport",
    "TrainConfig",
    "TrainResult",
    "UpsamplerLoss",
    "compare_scalers",
    "default_upsampler_config",
    "downsample",
    "format_table",
    "init_upsampler",
    "latent_mse",
    "load_lpips",
    "load_training_state",
    "psnr",
    "run_training",
    "save_training_state",
    "ssim",
    "standard_scalers",
    "train_upsampler",
]
