"""Throughput figures users can run on their own hardware (`scalelab bench ...`).

`bench_train` compares scalelab's trainer with a reference loop written the way the PyTorch tutorials
do it: a ``Dataset`` that decodes one image at a time, per-image transforms, and a ``DataLoader``
collating batches. Same model, batch size, optimizer and augmentation (random rotation, shift, zoom
and flip), so the difference is the data path and the loop.
"""

from __future__ import annotations

import dataclasses
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
from scalelab.train import CIFAR_MEAN, CIFAR_STD, TrainConfig, train


@dataclass(frozen=True)
class TrainBench:
    """Training images/s: scalelab's trainer in fp32 (the reference's precision) and with bfloat16
    autocast (None where the device has no fast bfloat16), and the reference loop in fp32."""

    model: str
    batch_size: int
    scalelab_images_per_s: float
    scalelab_bf16_images_per_s: float | None
    reference_images_per_s: float
    flops_per_image: int  # forward multiply-adds

    @property
    def best_images_per_s(self) -> float:
        return max(self.scalelab_images_per_s, self.scalelab_bf16_images_per_s or 0.0)

    @property
    def speedup(self) -> float:
        """Best scalelab setting over the reference."""
        return self.best_images_per_s / self.reference_images_per_s

    @property
    def achieved_flops(self) -> float:
        """Model FLOP/s of the best setting: forward + backward ~ 3 forward passes, 2 FLOPs per MAC."""
        return self.best_images_per_s * self.flops_per_image * 3 * 2


def has_fast_bf16(device: str) -> bool:
    """CUDA, or a CPU whose oneDNN has bfloat16 kernels (AVX512-BF16 or AMX)."""
    if torch.device(device).type == "cuda":
        return True
    try:  # a private oneDNN query (no public one exists); an older or newer torch may lack it
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


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


def bench_train(spec: NetworkSpec, splits: Splits, *, images: int = 2048, batch_size: int = 128,
                workers: int = 2, device: str = "cpu") -> TrainBench:
    """Images/s of scalelab's trainer (fp32, and bfloat16 autocast where fast) and of the tutorial-style
    reference loop, each after a warm-up."""
    def ours(amp: bool) -> float:
        config = TrainConfig(epochs=math.inf, max_images=images, batch_size=batch_size, warmup=0.0, amp=amp)
        warm = dataclasses.replace(config, max_images=2 * batch_size)
        train(spec, splits, warm, device=device, progress=False)
        return train(spec, splits, config, device=device, progress=False).images_per_s

    fp32 = ours(amp=False)
    bf16 = ours(amp=True) if has_fast_bf16(device) else None
    ref = _reference_loop(spec, splits, images=images, batch_size=batch_size, workers=workers,
                          device=device)
    return TrainBench(model=spec.name, batch_size=batch_size, scalelab_images_per_s=fp32,
                      scalelab_bf16_images_per_s=bf16, reference_images_per_s=ref,
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
