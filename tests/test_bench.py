"""`scalelab bench train` on a tiny model: both loops run and report consistent figures."""

import dataclasses

import numpy as np

from scalelab.arch.scaling import Scale, apply
from scalelab.arch.zoo import get_preset
from scalelab.bench import bench_train, matmul_flops
from scalelab.data import ImageDataset, split_validation


def test_bench_train_runs_both_loops():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(96, 32, 32, 3), dtype=np.uint8)
    y = np.arange(96, dtype=np.int64) % 3
    ds = ImageDataset("toy", ("a", "b", "c"), x, y, x[:12], y[:12], "generated")
    spec = apply(dataclasses.replace(get_preset("baseline_convnet", 3), resolution=16), Scale(1, 0.125, 1))
    result = bench_train(spec, split_validation(ds, 0.1), images=32, batch_size=8, workers=0)
    assert result.scalelab_images_per_s > 0 and result.reference_images_per_s > 0
    best = max(result.scalelab_images_per_s, result.scalelab_bf16_images_per_s or 0)
    assert result.speedup == best / result.reference_images_per_s
    assert result.achieved_flops == best * result.flops_per_image * 6


def test_matmul_flops_is_plausible():
    assert 1e8 < matmul_flops(n=256, repeats=2) < 1e15
