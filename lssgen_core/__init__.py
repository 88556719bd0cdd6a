"""lssgen_core: the pure-PyTorch core of Latent Space Scaling generation (LSSGen).

Needs only torch, numpy and attrs (safetensors for upsampler weights, imported when used).
"""

from lssgen_core.atomic import json_safe, write_bytes_atomic, write_json_atomic
from lssgen_core.cost import (
    CalibratedCost,
    CrossAttentionCost,
    TransformerCost,
    UNetCost,
    calibrate,
    plan_cost,
)
from lssgen_core.denoiser import Denoiser
from lssgen_core.errors import LSSArgumentError, LSSArgumentTypeError
from lssgen_core.explicit_plan import budget_final_steps
from lssgen_core.frames import FrameAxis, video_frame_axis
from lssgen_core.noise import randn
from lssgen_core.parameterization import (
    FLOW,
    VE,
    VP,
    Parameterization,
    convert_latent,
    convert_sigma,
)
from lssgen_core.plan import (
    ENTRY_RULES,
    LSSPlanWarning,
    Stage,
    StagePlan,
    count_extra_stages,
    entry_index,
    plan_notes,
    plan_stages,
)
from lssgen_core.sampling import enter_stage, sample_ddim, sample_euler, sample_progressive
from lssgen_core.schedules import (
    FlowSchedule,
    StageSize,
    cogview4_mu,
    cogview4_schedule,
    flow_sigmas,
    flux_mu,
    flux_schedule,
    resolution_shift,
    sd3_schedule,
    shift_exponential,
    shift_linear,
    shift_static,
)
from lssgen_core.upsample import (
    SCALING_MODES,
    LatentUpSampler,
    LatentUpsampler,
    UpsamplerConfig,
    make_latent_scaler,
    make_video_latent_scaler,
)

__version__ = "0.1.0"

__all__ = [
    "ENTRY_RULES",
    "FLOW",
    "SCALING_MODES",
    "VE",
    "VP",
    "CalibratedCost",
    "CrossAttentionCost",
    "Denoiser",
    "FlowSchedule",
    "FrameAxis",
    "LSSArgumentError",
    "LSSArgumentTypeError",
    "LSSPlanWarning",
    "LatentUpSampler",
    "LatentUpsampler",
    "Parameterization",
    "Stage",
    "StagePlan",
    "StageSize",
    "TransformerCost",
    "UNetCost",
    "UpsamplerConfig",
    "budget_final_steps",
    "calibrate",
    "cogview4_mu",
    "cogview4_schedule",
    "convert_latent",
    "convert_sigma",
    "count_extra_stages",
    "enter_stage",
    "entry_index",
    "flow_sigmas",
    "flux_mu",
    "flux_schedule",
    "json_safe",
    "make_latent_scaler",
    "make_video_latent_scaler",
    "plan_cost",
    "plan_notes",
    "plan_stages",
    "randn",
    "resolution_shift",
    "sample_ddim",
    "sample_euler",
    "sample_progressive",
    "sd3_schedule",
    "shift_exponential",
    "shift_linear",
    "shift_static",
    "video_frame_axis",
    "write_bytes_atomic",
    "write_json_atomic",
]
