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
import os
import statistics
import time
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from scalelab.arch.build import build
from scalelab.arch.spec import NetworkSpec, StageSpec
from scalelab.errors import SpecError

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
    """Parameters and multiply-adds of ``spec`` (builds it on the CPU once, after checking it fits)."""
    check_fits(spec, batch_size=1, training=False, device="cpu")
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


# --- size before building: would this network fit in memory at all? -------------------------------------


@dataclass(frozen=True)
class Footprint:
    """Counted from the spec alone, without building it: parameters (exact for every block type) and the
    elements of the feature maps one image produces (each convolution's and linear layer's output)."""

    params: int
    activations: int

    def bytes(self, batch_size: int = 1, *, training: bool = False) -> int:
        """fp32 bytes one step needs, roughly: weights (training: plus gradients and two Adam moments)
        and feature maps (training: each convolution's and batch norm's output, which autograd saves; the
        in-place activations add none)."""
        if training:
            return 4 * (4 * self.params + 2 * self.activations * batch_size)
        return 4 * (self.params + self.activations * batch_size)


def footprint(spec: NetworkSpec) -> Footprint:
    """Parameters and per-image feature-map elements of ``spec``, in time linear in its number of stages
    (a stage's repeated layers are counted once and multiplied), so any spec is sized instantly."""
    total = _Tally()
    res = _down(spec.resolution, spec.stem.stride)
    total.conv(3, spec.stem.channels, spec.stem.kernel, res)
    if spec.stem.maxpool:
        res = _down(res, 2)
    c_in = spec.stem.channels
    for st in spec.stages:
        first, res_out = _Tally(), _down(res, st.stride)
        _block(first, st, c_in, res, res_out, st.stride)
        total.add(first)
        if st.layers > 1:
            rest = _Tally()
            _block(rest, st, st.out_channels, res_out, res_out, 1)
            total.add(rest, times=st.layers - 1)
        c_in, res = st.out_channels, res_out
    if spec.head.channels:
        total.conv(c_in, spec.head.channels, 1, res)
        c_in = spec.head.channels
    features = c_in * spec.head.pool_size ** 2
    for width in (*spec.head.hidden, spec.num_classes):
        total.params += features * width + width
        total.activations += width
        features = width
    return Footprint(params=total.params, activations=total.activations)


class _Tally:
    def __init__(self) -> None:
        self.params = self.activations = 0

    def conv(self, c_in: int, c_out: int, kernel: int, res: int, *, groups: int = 1, bn: bool = True,
             bias: bool = False) -> None:
        self.params += kernel * kernel * (c_in // groups) * c_out + (2 * c_out if bn else 0) + (c_out if bias else 0)
        self.activations += c_out * res * res

    def se(self, channels: int, squeeze: int) -> None:
        self.params += 2 * channels * squeeze + squeeze + channels
        self.activations += squeeze + channels

    def add(self, other: _Tally, times: int = 1) -> None:
        self.params += times * other.params
        self.activations += times * other.activations


def _block(t: _Tally, st: StageSpec, c_in: int, res_in: int, res_out: int, stride: int) -> None:
    """One layer of a stage, as :mod:`scalelab.arch.blocks` builds it."""
    c_out, k = st.out_channels, st.kernel
    if st.block in ("mbconv", "fused_mbconv"):
        c_mid = max(1, round(c_in * st.expand_ratio))
        squeeze = max(1, int(c_in * st.se_ratio))
        if st.block == "mbconv":
            if c_mid != c_in:
                t.conv(c_in, c_mid, 1, res_in)
            t.conv(c_mid, c_mid, k, res_out, groups=c_mid)
            if st.se_ratio > 0:
                t.se(c_mid, squeeze)
            t.conv(c_mid, c_out, 1, res_out)
        elif c_mid != c_in:
            t.conv(c_in, c_mid, k, res_out)
            if st.se_ratio > 0:
                t.se(c_mid, squeeze)
            t.conv(c_mid, c_out, 1, res_out)
        else:
            t.conv(c_in, c_out, k, res_out)
            if st.se_ratio > 0:
                t.se(c_out, squeeze)
    elif st.block in ("basic", "bottleneck"):
        if st.block == "basic":
            t.conv(c_in, c_out, k, res_out)
            t.conv(c_out, c_out, k, res_out)
        else:
            width = max(1, round(c_out / st.expand_ratio))
            t.conv(c_in, width, 1, res_in)
            t.conv(width, width, k, res_out)
            t.conv(width, c_out, 1, res_out)
        if stride != 1 or c_in != c_out:
            t.conv(c_in, c_out, 1, res_out)
    elif st.block == "conv_pool":  # conv, (2x2 max-pool when stride 2), BN, activation
        t.conv(c_in, c_out, k, res_in)
    else:  # "conv": (2x2 max-pool when stride 2), conv, BN, activation
        t.conv(c_in, c_out, k, res_out)


def _down(size: int, stride: int) -> int:
    return -(-size // stride)


def available_memory(device: str | torch.device = "cpu") -> int | None:
    """Bytes free for one more process on ``device``: CUDA's free memory; on the CPU the kernel's
    MemAvailable, capped by this process's cgroup limit. None where it cannot be told."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    found: list[int] = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit) as f, open(usage) as g:
                text = f.read().strip()
                if text != "max" and int(text) < 2**60:
                    found.append(max(0, int(text) - int(g.read().strip())))
                break
        except (OSError, ValueError):
            continue
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            return None
    return min(found)


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n < 2**70 else f"{float(n) / 2**30:.2e} GiB"


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"{float(n):.2e}"


def check_fits(spec: NetworkSpec, *, batch_size: int = 1, training: bool = False,
               device: str | torch.device = "cpu") -> Footprint:
    """Refuse, in one line and before building it, a network whose weights and feature maps could not
    fit in the memory free on ``device``; returns its :class:`Footprint` otherwise."""
    size = footprint(spec)
    need = size.bytes(batch_size, training=training)
    free = available_memory(device)
    if free is not None and need > free:
        what = f"training at batch {batch_size}" if training else "building it and counting its FLOPs"
        raise SpecError(f"network '{spec.name}' is too large for this machine: {_count(size.params)} parameters, "
                        f"about {_gib(need)} for {what}, {_gib(free)} free on "
                        f"{torch.device(device).type}; scale it down (width, depth, resolution) or lower "
                        "the batch size")
    return size
