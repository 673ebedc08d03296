"""The trainer's optimizers take the same steps as torch.optim's, and training never imports torch._dynamo."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from scalelab import optim


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def _groups(model, weight_decay):
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    return [dict(params=decay, weight_decay=weight_decay), dict(params=rest, weight_decay=0.0)]


def _train(model, optimizer, steps=6):
    generator = torch.Generator().manual_seed(1)
    for step in range(steps):
        x = torch.randn(8, 3, 8, 8, generator=generator)
        y = torch.randint(0, 3, (8,), generator=generator)
        for group in optimizer.param_groups:
            group["lr"] *= 0.8  # the trainer sets the rate every step
        if step == 2:
            model[-1].bias.requires_grad_(False)  # a parameter that misses steps keeps its own step count
        if step == 4:
            model[-1].bias.requires_grad_(True)
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("weight_decay", [0.0, 5e-4])
def test_sgd_matches_torch(nesterov, weight_decay):
    ours, theirs = _model(), _model()
    got = _train(ours, optim.SGD(_groups(ours, weight_decay), lr=0.2, momentum=0.9, nesterov=nesterov))
    want = _train(theirs, torch.optim.SGD(_groups(theirs, weight_decay), lr=0.2, momentum=0.9, nesterov=nesterov))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(got, [p.detach() for p in _model().parameters()]))


@pytest.mark.parametrize("weight_decay", [0.0, 5e-2])
def test_adamw_matches_torch(weight_decay):
    ours, theirs = _model(), _model()
    got = _train(ours, optim.AdamW(_groups(ours, weight_decay), lr=1e-2))
    want = _train(theirs, torch.optim.AdamW(_groups(theirs, weight_decay), lr=1e-2))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_training_never_imports_the_compiler():
    code = ("import dataclasses, sys\n"
            "from conftest import corner_squares\n"
            "from scalelab.arch.zoo import get_preset\n"
            "from scalelab.data import split_validation\n"
            "from scalelab.train import TrainConfig, train\n"
            "splits = split_validation(corner_squares(32), 0.25, seed=0)\n"
            "spec = dataclasses.replace(get_preset('baseline_convnet', 3), resolution=16)\n"
            "for optimizer in ('adam', 'sgd'):\n"
            "    train(spec, splits, TrainConfig(epochs=1, batch_size=8, optimizer=optimizer), progress=False)\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("make", [lambda g: optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True),
                                  lambda g: optim.AdamW(g, lr=0.01)], ids=["sgd", "adamw"])
def test_state_dict_carries_the_steps_over_to_a_new_optimizer(make):
    model = _model()
    straight = make(_groups(model, 1e-3))
    _train(model, straight, steps=5)  # ends with every parameter trainable, as a fresh model
    copy = _model()
    copy.load_state_dict(model.state_dict())
    carried = make(_groups(copy, 1e-3))
    carried.load_state_dict(straight.state_dict())
    for a, b in zip(_train(model, straight), _train(copy, carried)):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="other parameters"):
        make([dict(params=list(_model().parameters()))]).load_state_dict(straight.state_dict())
