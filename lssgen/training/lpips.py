"""LPIPS (AlexNet trunk, v0.1) in plain PyTorch, loaded only from weights the user already has.

The `lpips` package fetches its AlexNet trunk through torchvision's downloader and stores weights
as pickles; neither works here (no network, no pickle loading). This module rebuilds the same
network and reads one safetensors file whose tensor names are those of `lpips.LPIPS(net="alex")`:

    net.slice1.0.{weight,bias}   Conv2d(3, 64, 11, stride 4, pad 2)
    net.slice2.3.{weight,bias}   Conv2d(64, 192, 5, pad 2)      (after MaxPool 3/2)
    net.slice3.6.{weight,bias}   Conv2d(192, 384, 3, pad 1)     (after MaxPool 3/2)
    net.slice4.8.{weight,bias}   Conv2d(384, 256, 3, pad 1)
    net.slice5.10.{weight,bias}  Conv2d(256, 256, 3, pad 1)
    lin{0..4}.model.1.weight     1x1 Conv2d(C, 1), no bias
    scaling_layer.{shift,scale}  optional (constants)

Convert once on a machine that has both packages and their weights:
    import lpips; from safetensors.torch import save_file
    save_file(lpips.LPIPS(net="alex").state_dict(), "lpips_alex.safetensors")
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lssgen_core.upsample.io import read_weights

# (in, out, kernel, stride, padding, max-pool before) of AlexNet's five conv layers.
_ALEX_LAYERS = (
    (3, 64, 11, 4, 2, False),
    (64, 192, 5, 1, 2, True),
    (192, 384, 3, 1, 1, True),
    (384, 256, 3, 1, 1, False),
    (256, 256, 3, 1, 1, False),
)
# Index of each conv inside torchvision's `alexnet().features`, which names the lpips tensors.
_FEATURE_INDEX = (0, 3, 6, 8, 10)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10


class LPIPS(nn.Module):
    """Perceptual distance between images in [-1, 1]; returns one value per sample (B,)."""

    shift: Tensor
    scale: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, k, stride=s, padding=p)
            for c_in, c_out, k, s, p, _ in _ALEX_LAYERS
        )
        self.lins = nn.ModuleList(nn.Conv2d(layer[1], 1, 1, bias=False) for layer in _ALEX_LAYERS)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def _features(self, x: Tensor) -> list[Tensor]:
        h = (x - self.shift) / self.scale
        feats = []
        for conv, (*_, pool_first) in zip(self.convs, _ALEX_LAYERS):
            if pool_first:
                h = F.max_pool2d(h, 3, 2)
            h = F.relu(conv(h))
            feats.append(h)
        return feats

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        total = x.new_zeros(x.shape[0])
        for fx, fy, lin in zip(self._features(x), self._features(y), self.lins):
            # Unit length along channels, as lpips.normalize_tensor (eps added to the norm).
            nx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + _EPS)
            ny = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + _EPS)
            total = total + lin((nx - ny).pow(2)).mean(dim=(1, 2, 3))
        return total


def lpips_key_map() -> dict[str, str]:
    """lpips package tensor name -> name in `LPIPS.state_dict()`."""
    keys = {}
    for i, (slice_no, feature) in enumerate(zip(range(1, 6), _FEATURE_INDEX)):
        for kind in ("weight", "bias"):
            keys[f"net.slice{slice_no}.{feature}.{kind}"] = f"convs.{i}.{kind}"
        keys[f"lin{i}.model.1.weight"] = f"lins.{i}.weight"
    return keys


def load_lpips(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> LPIPS:
    """Frozen LPIPS from a local safetensors file in the `lpips` package's naming (see above)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"LPIPS weights not found: {file}")
    if file.suffix != ".safetensors":
        raise ValueError(
            f"{file} is not a .safetensors file; convert the lpips weights as described in "
            "lssgen.training.lpips (pickle files are never loaded)"
        )
    tensors = read_weights(file)
    key_map = lpips_key_map()
    missing = sorted(k for k in key_map if k not in tensors)
    if missing:
        raise ValueError(
            f"{file} lacks LPIPS(alex) tensors {missing[:4]}{' ...' if len(missing) > 4 else ''}; "
            "expected the state_dict of lpips.LPIPS(net='alex')"
        )
    model = LPIPS()
    state = {key_map[k]: tensors[k].float() for k in key_map}
    # The input normalisation is fixed by LPIPS v0.1; the file's copies (if any) are ignored.
    state["shift"] = model.shift
    state["scale"] = model.scale
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{file} does not hold LPIPS(alex) weights: {exc}") from exc
    model.requires_grad_(False)
    return model.eval().to(device)
