"""The lssgen-mini loop stops on a non-finite loss, keeping the last good checkpoint (issue 12)."""

import json
import math

import pytest
import torch
from mini_support import LOW, NATIVE, mini
from safetensors.torch import load_file
from torch import nn

from lssgen.mini.train_recipe import LoopConfig, run_loop
from lssgen.training.checkpoint import STATE_NAME
from lssgen.training.loop import NonFiniteLossError

pytestmark = pytest.mark.usefixtures("one_thread")


class NanAtStep:
    """A least-squares task whose loss turns NaN at one step (as a diverging run's does)."""

    def __init__(self, bad_step: int) -> None:
        self.bad_step = bad_step

    def loss(self, net, step, generator):
        x = torch.randn(4, 3, generator=generator)
        loss = (net(x) - x.sum(1, keepdim=True)).pow(2).mean()
        if step + 1 == self.bad_step:
            loss = loss * math.nan
        return loss, {"loss": float(loss.detach())}

    def identity(self):
        return {"task": "nan-at-step", "bad_step": self.bad_step}


def _model_tensors(folder):
    info = json.loads((folder / STATE_NAME).read_text())
    tensors = load_file(str(folder / info["tensors"]))
    return info["step"], {k: v for k, v in tensors.items() if k.startswith("model/")}


def test_the_loop_stops_before_the_update_and_keeps_the_last_checkpoint(tmp_path):
    config = LoopConfig(steps=6, batch_size=4, lr=1e-2, warmup_steps=0)
    net = nn.Linear(3, 1)
    with pytest.raises(NonFiniteLossError) as info:
        run_loop(net, NanAtStep(4), config, checkpoint_dir=tmp_path, checkpoint_every=2)
    assert info.value.step == 4 and info.value.last_checkpoint == 2
    step, tensors = _model_tensors(tmp_path)
    assert step == 2
    assert all(bool(torch.isfinite(t).all()) for t in tensors.values())
    assert all(bool(torch.isfinite(p).all()) for p in net.parameters())  # no NaN update


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_non_finite_learning_rates_are_refused(value):
    with pytest.raises(ValueError, match="lr must be a finite number"):
        LoopConfig(lr=value)


def test_a_diverging_stage_exits_non_zero_and_publishes_nothing(tmp_path, capsys):
    work = tmp_path / "work"
    loop = ["--steps", 8, "--batch-size", 2, "--warmup-steps", 0, "--checkpoint-every", 1]
    vae = ["--crop", LOW, "--size", NATIVE, "--channels", "8,8,8,8", "--stats-count", 4]
    assert mini("vae", "--work", work, *loop, *vae, "--lr", "1e6") == 1
    err = capsys.readouterr().err
    assert "lssgen mini vae: error: training diverged" in err and "Traceback" not in err
    assert "--lr (now 1e+06)" in err
    assert not (work / "vae" / "config.json").exists()
    step, tensors = _model_tensors(work / "checkpoints" / "vae")
    assert f"the checkpoint of step {step}" in err
    assert all(bool(torch.isfinite(t).all()) for t in tensors.values())
