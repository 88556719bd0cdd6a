"""Neither the adapter nor the test loader may leave ``k_diffusion`` or torchvision imported."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, cwd=HERE)


def test_the_adapter_imports_and_samples_without_k_diffusion():
    # A two-stage LSS with the core's own Euler: k-diffusion, torchvision and the model libraries
    # stay unimported (torchsde and scipy too: only the Brownian noise sampler needs torchsde).
    run(
        "import sys, torch\n"
        "import lssgen_kdiffusion as lk\n"
        "from lssgen_core.sampling import sample_euler\n"
        "model = lk.FlowDenoiser(lambda x, t: x)\n"
        "plan = lk.plan_for_model(model, 64, 64, num_steps=4, min_size=32)\n"
        "assert len(plan.stages) == 2\n"
        "out = lk.sample_lss(sample_euler, model, plan, 'bicubic', channels=4,\n"
        "                    generator=torch.Generator().manual_seed(0))\n"
        "assert out.shape == (1, 4, 8, 8) and torch.isfinite(out).all()\n"
        "bad = [m for m in ('k_diffusion', 'torchvision', 'diffusers', 'transformers',\n"
        "                   'torchsde', 'scipy') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )


def test_the_test_loader_hides_k_diffusion_and_torchvision_and_diffusers_still_imports():
    run(
        "import sys\n"
        "from kdiffusion_loader import PACKAGE, load_k_diffusion\n"
        "kd = load_k_diffusion()\n"
        "assert callable(kd.sampling.sample_euler) and kd.external.DiscreteEpsDDPMDenoiser\n"
        "assert kd.sampling.__name__ == PACKAGE + '.sampling'\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('k_diffusion', 'torchvision')]\n"
        "assert not bad, bad\n"
        "import diffusers\n"
        "from diffusers import FlowMatchEulerDiscreteScheduler\n"
    )
