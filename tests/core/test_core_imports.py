import subprocess
import sys

FORBIDDEN = (
    "diffusers",
    "transformers",
    "k_diffusion",
    "torchvision",
    "cv2",
    "matplotlib",
    "accelerate",
    "safetensors",
    "lssgen_diffusers",
    "lssgen_kdiffusion",
)


def test_importing_the_core_imports_no_model_library():
    code = (
        "import sys, lssgen_core, lssgen_core.sampling, lssgen_core.upsample\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
