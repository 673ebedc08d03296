"""What a network costs before any training: parameters, FLOPs, latency, training memory.

FLOPs are multiply-adds (one MAC = one FLOP, fvcore's convention and the one of the EfficientNet
paper), for one image at the spec's resolution, counted by fvcore in inference mode: convolutions and
linear layers, plus fvcore's defaults for batch norm (two per element: scale and shift) and adaptive
average pooling (one per input element). Activations,
squeeze-excitation gating products and means, residual additions, dropout and max-pooling count zero:
they are registered as free on purpose below, so any *other* operator fvcore cannot count is reported
in ``Cost.uncounted_ops`` instead of being silently dropped. With this rule EfficientNet-B0 at 224 px
counts 398.1 M multiply-adds, the seed report's figure.
"""

from __future__ import annotations

import itertools
import statistics
import time
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from scalelab.arch.build import build
from scalelab.arch.spec import NetworkSpec

_FREE_OPS = (
    "aten::silu", "aten::silu_", "aten::relu", "aten::relu_", "aten::sigmoid", "aten::sigmoid_",
    "aten::mul", "aten::mul_", "aten::add", "aten::add_", "aten::div", "aten::div_", "aten::mean",
    "aten::max_pool2d", "aten::dropout", "aten::dropout_", "aten::bernoulli_", "aten::empty",
)


@dataclass(frozen=True)
class Cost:
    """Static cost of a spec: parameter count and multiply-adds for one image."""

    params: int
    flops: int
    resolution: int
    uncounted_ops: tuple[str, ...] = ()


@dataclass(frozen=True)
class Latency:
    """Median wall time of a forward pass in inference mode, after warm-up; ``q1_ms`` and ``q3_ms``
    are the quartiles of the timed runs (their spread shows how steady the machine was)."""

    batch_size: int
    device: str
    median_ms: float
    images_per_s: float
    repeats: int
    q1_ms: float
    q3_ms: float


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, resolution: int) -> tuple[int, tuple[str, ...]]:
    """Multiply-adds of one forward pass of a 1 x 3 x R x R input, and operators fvcore could not count."""
    with warnings.catch_warnings():  # fvcore's import touches torch.jit.script, deprecated in torch 2.10+
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit.script.*")
        from fvcore.nn import FlopCountAnalysis  # imported here: fvcore's import is slow

    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        analysis = FlopCountAnalysis(model, torch.zeros(1, 3, resolution, resolution, device=device))
        analysis.set_op_handle(**{op: None for op in _FREE_OPS})
        analysis.unsupported_ops_warnings(False)  # reported through the return value instead
        analysis.uncalled_modules_warnings(False)  # e.g. Identity shortcuts: nothing to count
        total = int(analysis.total())
        uncounted = tuple(sorted(analysis.unsupported_ops()))
    finally:
        model.train(was_training)
    return total, uncounted


def cost(spec: NetworkSpec) -> Cost:
    """Parameters and multiply-adds of ``spec`` (builds it on the CPU once)."""
    model = build(spec)
    flops, uncounted = count_flops(model, spec.resolution)
    return Cost(params=count_params(model), flops=flops, resolution=spec.resolution,
                uncounted_ops=uncounted)


def measure_latency(model: nn.Module, resolution: int, batch_size: int = 1, *,
                    device: str | torch.device = "cpu", warmup: int = 3, repeats: int = 10,
                    min_seconds: float = 0.5, max_repeats: int = 1000) -> Latency:
    """Median forward time after ``warmup`` untimed runs, over at least ``repeats`` timed runs and at
    least ``min_seconds`` of timing (at most ``max_repeats`` runs): a fast model gets many runs, so one
    disturbed run on a busy machine cannot move the median."""
    device = torch.device(device)
    model = model.to(device).eval()
    x = torch.randn(batch_size, 3, resolution, resolution, device=device)
    times: list[float] = []
    timed = 0.0
    with torch.inference_mode():
        for i in itertools.count():
            _sync(device)
            start = time.perf_counter()
            model(x)
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
                timed += times[-1]
                if len(times) >= max_repeats or (len(times) >= repeats and timed >= min_seconds):
                    break
    median = statistics.median(times)
    q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else times * 3
    return Latency(batch_size=batch_size, device=str(device), median_ms=median * 1e3,
                   images_per_s=batch_size / median, repeats=len(times), q1_ms=q1 * 1e3, q3_ms=q3 * 1e3)


def training_memory(model: nn.Module, resolution: int, batch_size: int, *,
                    device: str | torch.device = "cpu") -> int:
    """Peak bytes of one Adam training step at this batch size.

    On CUDA this is measured (``max_memory_allocated``). On the CPU, where PyTorch keeps no such
    counter, it is the sum of what a step must hold at its peak: weights, gradients, two Adam moments
    and the activations autograd saves for the backward pass (counted once per storage).
    """
    device = torch.device(device)
    model = model.to(device).train()
    x = torch.randn(batch_size, 3, resolution, resolution, device=device)
    if device.type == "cuda":
        optimizer = torch.optim.Adam(model.parameters())
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        model(x).float().logsumexp(1).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return torch.cuda.max_memory_allocated(device) - base + x.nbytes
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(x).logsumexp(1).mean()
    loss.backward()
    param_bytes = sum(p.nbytes for p in model.parameters())
    model.zero_grad(set_to_none=True)
    return 4 * param_bytes + sum(saved.values()) + x.nbytes


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
