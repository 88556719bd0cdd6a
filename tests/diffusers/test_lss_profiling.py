import torch

from lssgen_diffusers import LSSFluxPipeline
from lssgen_diffusers.testing import tiny_flux_pipeline


def test_lss_machinery_is_named_in_profiler_traces():
    pipe = LSSFluxPipeline(**tiny_flux_pipeline().components)
    pipe.set_progress_bar_config(disable=True)
    with torch.profiler.profile() as prof:
        pipe(
            "a red circle",
            height=128,
            width=128,
            num_inference_steps=4,
            min_size=64,
            scaling_mode="latent",
            output_type="latent",
        )
    names = {event.key for event in prof.key_averages() if event.key.startswith("lss.")}
    assert names == {"lss.stage[0]", "lss.stage[1]", "lss.enter_stage[1]"}
