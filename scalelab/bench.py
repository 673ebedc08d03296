"""Throughput figures users can run on their own hardware (`scalelab bench ...`).

`bench_train` compares scalelab's trainer with a reference loop written the way the PyTorch tutorials
do it: a ``Dataset`` that decodes one image at a time, per-image transforms, and a ``DataLoader``
collating batches. Same model, batch size, optimizer and augmentation (random rotation, shift, zoom
and flip), so the difference is the data path and the loop. The loops run alternately in rounds and are
compared by their per-round ratio (:mod:`scalelab.rounds`), the figure that holds on a busy machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from scalelab.arch.build import build
from scalelab.arch.spec import NetworkSpec
from scalelab.cost import cost
from scalelab.data import Splits
from scalelab.device import has_fast_bf16
from scalelab.rounds import DEFAULT_ROUNDS, Spread, alternate
from scalelab.train import CIFAR_MEAN, CIFAR_STD, TrainConfig, train


@dataclass(frozen=True)
class TrainBench:
    """Training images/s in every round: scalelab's trainer in fp32 (the reference's precision) and with
    bfloat16 autocast (None where the device has no fast bfloat16), the reference loop in fp32, and the
    machine's dense fp32 matrix-multiply FLOP/s, all run alternately (:func:`scalelab.rounds.alternate`)."""

    model: str
    batch_size: int
    scalelab_images_per_s: tuple[float, ...]
    scalelab_bf16_images_per_s: tuple[float, ...] | None
    reference_images_per_s: tuple[float, ...]
    matmul_flops: tuple[float, ...]
    flops_per_image: int  # forward multiply-adds

    @property
    def fp32_ratio(self) -> Spread:
        """scalelab fp32 over the reference, per round."""
        return Spread.ratio(self.scalelab_images_per_s, self.reference_images_per_s)

    @property
    def bf16_ratio(self) -> Spread | None:
        if self.scalelab_bf16_images_per_s is None:
            return None
        return Spread.ratio(self.scalelab_bf16_images_per_s, self.reference_images_per_s)

    @property
    def best_setting(self) -> str:
        """fp32 or bf16: the one with the higher median ratio."""
        bf16 = self.bf16_ratio
        return "bf16" if bf16 is not None and bf16.median > self.fp32_ratio.median else "fp32"

    @property
    def speedup(self) -> Spread:
        """Best scalelab setting over the reference, per round."""
        return self.bf16_ratio if self.best_setting == "bf16" else self.fp32_ratio

    @property
    def matmul_share(self) -> Spread:
        """Model FLOP/s of the best setting over the dense matrix-multiply FLOP/s, per round; model FLOPs of a
        training step ~ 3 forward passes (forward + backward), 2 FLOPs per multiply-add."""
        best = self.scalelab_bf16_images_per_s if self.best_setting == "bf16" else self.scalelab_images_per_s
        return Spread.ratio([v * self.flops_per_image * 3 * 2 for v in best], self.matmul_flops)


def matmul_flops(n: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Dense fp32 matrix-multiply FLOP/s of this machine (best of ``repeats``)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        if a.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def bench_train(spec: NetworkSpec, splits: Splits, *, images: int = 1024, batch_size: int = 128,
                workers: int = 2, device: str = "cpu", rounds: int = DEFAULT_ROUNDS) -> TrainBench:
    """Images/s of scalelab's trainer (fp32, and bfloat16 autocast where fast) and of the tutorial-style
    reference loop, and the matrix-multiply FLOP/s, after one warm-up of each, in ``rounds`` alternating
    rounds of ``images`` timed training images per loop."""
    def ours(amp: bool, max_images: int = images) -> float:
        config = TrainConfig(epochs=math.inf, max_images=max_images, batch_size=batch_size, warmup=0.0, amp=amp)
        return train(spec, splits, config, device=device, progress=False).images_per_s

    def reference(max_images: int = images) -> float:
        return _reference_loop(spec, splits, images=max_images, batch_size=batch_size, workers=workers,
                               device=device)

    loops = {"fp32": lambda: ours(amp=False)}
    if has_fast_bf16(device):
        loops["bf16"] = lambda: ours(amp=True)
    loops["reference"] = reference
    loops["matmul"] = lambda: matmul_flops(repeats=3, device=device)
    ours(amp=False, max_images=2 * batch_size)  # warm-ups: kernels chosen, memory allocated once
    if "bf16" in loops:
        ours(amp=True, max_images=2 * batch_size)
    reference(max_images=batch_size)
    figures = alternate(loops, rounds)
    return TrainBench(model=spec.name, batch_size=batch_size, scalelab_images_per_s=tuple(figures["fp32"]),
                      scalelab_bf16_images_per_s=tuple(figures["bf16"]) if "bf16" in figures else None,
                      reference_images_per_s=tuple(figures["reference"]), matmul_flops=tuple(figures["matmul"]),
                      flops_per_image=cost(spec).flops)


class _TutorialDataset(Dataset):
    """One image at a time: uint8 HWC -> float CHW tensor, random affine + flip, normalise."""

    def __init__(self, x: np.ndarray, y: np.ndarray, resolution: int, config: TrainConfig) -> None:
        self.x, self.y, self.resolution, self.config = x, y, resolution, config
        self.mean = torch.tensor(CIFAR_MEAN).view(3, 1, 1)
        self.std = torch.tensor(CIFAR_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = torch.from_numpy(self.x[i]).permute(2, 0, 1).float() / 255
        c = self.config
        angle = math.radians(np.random.uniform(-c.rotation, c.rotation))
        zx, zy = np.random.uniform(1 - c.zoom, 1 + c.zoom, size=2)
        if np.random.rand() < 0.5:
            zx = -zx
        tx, ty = np.random.uniform(-2 * c.shift, 2 * c.shift, size=2)
        theta = torch.tensor([[math.cos(angle) * zx, -math.sin(angle) * zy, tx],
                              [math.sin(angle) * zx, math.cos(angle) * zy, ty]], dtype=torch.float32)
        size = [1, 3, self.resolution, self.resolution]
        grid = F.affine_grid(theta[None], size, align_corners=False)
        img = F.grid_sample(img[None], grid, padding_mode="reflection", align_corners=False)[0]
        return (img - self.mean) / self.std, int(self.y[i])


def _reference_loop(spec: NetworkSpec, splits: Splits, *, images: int, batch_size: int, workers: int,
                    device: str) -> float:
    torch.manual_seed(0)
    model = build(spec).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = splits.train
    loader = DataLoader(_TutorialDataset(x, y, spec.resolution, TrainConfig()), batch_size=batch_size,
                        shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=workers > 0)
    seen, start = 0, None
    while seen < images + batch_size:
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if start is None:  # the first batch is the warm-up (worker start, allocations)
                start = time.perf_counter()
                continue
            seen += len(yb)
            if seen >= images:
                break
        if seen >= images:
            break
    return seen / (time.perf_counter() - start)
