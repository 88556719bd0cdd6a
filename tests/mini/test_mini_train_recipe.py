"""The mini stages' checkpoints keep their format: one written by the loop before it was shared
with the upsampler still resumes, and the shared loop writes that format."""

import json
import shutil
from pathlib import Path

import attrs
import pytest
import torch
from mini_support import trained_weights
from safetensors.torch import load_file
from torch import nn

from lssgen.mini.train_recipe import LoopConfig, run_identity, run_loop
from lssgen.training.backend import SingleProcess
from lssgen.training.checkpoint import STATE_NAME

pytestmark = pytest.mark.usefixtures("one_thread")

# Written by `lssgen/mini/train_loop.py` as it was before the loop was shared (commit 1e7b0bc),
# after 2 of 4 steps of `LeastSquares` from `fresh_net()` with `CONFIG` (warm-up still running,
# so a schedule that did not resume would show), the way a stage's checkpoint folder holds it.
OLD_CHECKPOINT = Path(__file__).parent / "fixtures" / "mini_loop_checkpoint_v1"
CONFIG = LoopConfig(steps=4, batch_size=4, lr=1e-2, warmup_steps=4, ema_decay=0.9)


class LeastSquares:
    def loss(self, net, step, generator):
        x = torch.randn(4, 3, generator=generator)
        return (net(x) - x.sum(1, keepdim=True)).pow(2).mean(), {}

    def identity(self):
        return {"task": "least-squares"}


def fresh_net(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(3, 1)


def old_checkpoint(tmp_path):
    folder = tmp_path / "checkpoints" / "transformer"
    shutil.copytree(OLD_CHECKPOINT, folder)
    return folder


def saved_tensors(folder):
    info = json.loads((folder / STATE_NAME).read_text())
    return info, load_file(str(folder / info["tensors"]))


def test_an_old_checkpoint_resumes_with_its_weights_ema_moments_and_schedule(tmp_path):
    folder = old_checkpoint(tmp_path)
    _, tensors = saved_tensors(folder)
    # Nothing left to run: what comes back is exactly what the old checkpoint holds.
    done = attrs.evolve(CONFIG, steps=2)
    loaded = run_loop(fresh_net(7), LeastSquares(), done, checkpoint_dir=folder, resume=True)
    assert (loaded.start_step, loaded.step) == (2, 2)
    for key, value in trained_weights(loaded).items():
        assert torch.equal(value, tensors[f"model/{key}"]), key
    # Two more steps continue the old run as an uninterrupted run of the new loop goes on.
    resumed = run_loop(fresh_net(7), LeastSquares(), CONFIG, checkpoint_dir=folder, resume=True)
    straight = run_loop(fresh_net(), LeastSquares(), CONFIG)
    assert (resumed.start_step, resumed.step) == (2, 4)
    # Close rather than equal: the fixture's first two steps ran on the machine that wrote it.
    torch.testing.assert_close(resumed.losses, straight.losses[2:])
    a, b = trained_weights(resumed), trained_weights(straight)
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_the_shared_loop_writes_the_old_layout(tmp_path):
    """Same tensor names, same JSON fields, same identity: what an old reader expects."""
    run_loop(fresh_net(), LeastSquares(), attrs.evolve(CONFIG, steps=2), checkpoint_dir=tmp_path)
    old_info, old_tensors = saved_tensors(OLD_CHECKPOINT)
    new_info, new_tensors = saved_tensors(tmp_path)
    assert new_tensors.keys() == old_tensors.keys()
    assert {k for k in new_tensors if k.startswith("model/")} == {
        "model/net.weight",
        "model/net.bias",
        "model/ema.weight",
        "model/ema.bias",
    }
    assert new_info.keys() == old_info.keys()
    for field in ("format", "version", "step", "tensors"):
        assert new_info[field] == old_info[field], field
    assert new_info["scheduler"].keys() == old_info["scheduler"].keys()
    assert new_info["info"]["identity"] == old_info["info"]["identity"]
    assert new_info["info"]["identity"] == {
        **run_identity(CONFIG, LeastSquares()),
        "num_processes": 1,
    }


def test_on_accelerate_the_loop_reaches_the_plain_torch_weights(tmp_path):
    """`lssgen mini` trains on `Accelerator(cpu=True)`: it must train as plain torch does."""
    from accelerate import Accelerator

    plain = run_loop(fresh_net(), LeastSquares(), CONFIG)
    accelerated = run_loop(fresh_net(), LeastSquares(), CONFIG, backend=Accelerator(cpu=True))
    assert accelerated.losses == plain.losses
    a, b = trained_weights(accelerated), trained_weights(plain)
    assert all(torch.equal(a[k], b[k]) for k in a)


@attrs.frozen
class TwoProcesses(SingleProcess):
    """Rank 0 of two: `reduce` answers for both, as the other process would add to it."""

    num_processes: int = 2
    other_loss: float = 5.0
    other_stops_at: int = 2  # the other process is interrupted after this many steps
    calls: list = attrs.field(factory=list)

    def reduce(self, tensor, reduction="sum"):
        self.calls.append(reduction)
        if reduction == "mean":
            return (tensor + self.other_loss) / 2
        steps = sum(1 for c in self.calls if c == "sum")
        return tensor + float(steps >= self.other_stops_at)


def test_the_mini_stages_average_the_loss_and_stop_when_any_process_stops(tmp_path):
    """Drift the shared loop removed: the mini loop logged rank 0's loss and stopped alone."""
    backend = TwoProcesses()
    result = run_loop(fresh_net(), LeastSquares(), CONFIG, checkpoint_dir=tmp_path, backend=backend)
    alone = run_loop(fresh_net(), LeastSquares(), attrs.evolve(CONFIG, steps=2))
    assert result.interrupted and result.step == 2  # rank 0 itself never asked to stop
    assert result.losses == pytest.approx([(own + 5.0) / 2 for own in alone.losses], rel=1e-6)
    assert json.loads((tmp_path / STATE_NAME).read_text())["step"] == 2
