"""Named presets: EfficientNet B0..B7 and V2 S/M/L, ResNets, the seed's baseline ConvNet, and
small-input (32 px) variants of each for CIFAR-sized images.

Small-input variants keep every stage and channel count and change only the stem: stride 1 (and no
max-pool for ResNets, whose 7x7 stem becomes 3x3). A 32 px image then reaches the last stage at 2x2
(EfficientNets, total stride 16) or 4x4 (ResNets, total stride 8) instead of vanishing after five
halvings, which is the common choice of CIFAR ports of these networks. Their resolutions scale with the
ImageNet ones (B1: 240/224 * 32 = 34 px).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from pathlib import Path

from scalelab.arch.scaling import EFFICIENTNET_FAMILY, LayerRounding, Scale, apply, compound
from scalelab.arch.spec import HeadSpec, NetworkSpec, StageSpec, StemSpec
from scalelab.errors import SpecError

SMALL_INPUT_SUFFIX = "_32"
SMALL_INPUT_RESOLUTION = 32


def _mb(e: float, k: int, s: int, c: int, n: int, block: str = "mbconv", se: float = 0.25) -> StageSpec:
    return StageSpec(block=block, layers=n, out_channels=c, stride=s, kernel=k, expand_ratio=e,
                     se_ratio=se)


def _fused(e: float, k: int, s: int, c: int, n: int) -> StageSpec:
    return _mb(e, k, s, c, n, block="fused_mbconv", se=0.0)


# Table 1 of the seed report (its stem row says 36 channels; the published B0 has 32).
_B0_STAGES = (
    _mb(1, 3, 1, 16, 1),
    _mb(6, 3, 2, 24, 2),
    _mb(6, 5, 2, 40, 2),
    _mb(6, 3, 2, 80, 3),
    _mb(6, 5, 1, 112, 3),
    _mb(6, 5, 2, 192, 4),
    _mb(6, 3, 1, 320, 1),
)

_V2 = {  # stem channels, stages, resolution, dropout (torchvision's EfficientNetV2 configs)
    "s": (24, (_fused(1, 3, 1, 24, 2), _fused(4, 3, 2, 48, 4), _fused(4, 3, 2, 64, 4),
               _mb(4, 3, 2, 128, 6), _mb(6, 3, 1, 160, 9), _mb(6, 3, 2, 256, 15)), 384, 0.2),
    "m": (24, (_fused(1, 3, 1, 24, 3), _fused(4, 3, 2, 48, 5), _fused(4, 3, 2, 80, 5),
               _mb(4, 3, 2, 160, 7), _mb(6, 3, 1, 176, 14), _mb(6, 3, 2, 304, 18),
               _mb(6, 3, 1, 512, 5)), 480, 0.3),
    "l": (32, (_fused(1, 3, 1, 32, 4), _fused(4, 3, 2, 64, 7), _fused(4, 3, 2, 96, 7),
               _mb(4, 3, 2, 192, 10), _mb(6, 3, 1, 224, 19), _mb(6, 3, 2, 384, 25),
               _mb(6, 3, 1, 640, 7)), 480, 0.4),
}

_RESNETS = {  # block, layers per stage
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def efficientnet(variant: str, num_classes: int = 1000) -> NetworkSpec:
    """EfficientNet-B0..B7: B0 scaled by the published (width, depth, resolution, dropout) table."""
    width, depth, resolution, dropout = EFFICIENTNET_FAMILY[variant]
    b0 = NetworkSpec(name="efficientnet_b0", stem=StemSpec(32, 3, 2), stages=_B0_STAGES,
                     head=HeadSpec(channels=1280, dropout=dropout), resolution=224,
                     num_classes=num_classes, activation="silu", drop_path_rate=0.2)
    scaled = apply(b0, Scale(depth, width, 1.0), name=f"efficientnet_{variant}")
    return dataclasses.replace(scaled, resolution=resolution)  # the published sizes are not r * 224


def efficientnet_b0_fused(num_classes: int = 1000) -> NetworkSpec:
    """B0 with Fused-MBConv (a full 3x3 convolution in place of the 1x1 expansion and 3x3 depthwise, no
    squeeze-excitation) in its first three MBConv stages, as EfficientNetV2 does early on: the seed's
    "EfficientNet V2" (Section 7.2), which changes the operator and keeps B0's layout."""
    b0 = efficientnet("b0", num_classes)
    stages = tuple(_fused(st.expand_ratio, 3, st.stride, st.out_channels, st.layers) if i < 3 else st
                   for i, st in enumerate(b0.stages))
    return dataclasses.replace(b0, name="efficientnet_b0_fused", stages=stages)


def efficientnet_v2(variant: str, num_classes: int = 1000) -> NetworkSpec:
    stem, stages, resolution, dropout = _V2[variant]
    return NetworkSpec(name=f"efficientnet_v2_{variant}", stem=StemSpec(stem, 3, 2), stages=stages,
                       head=HeadSpec(channels=1280, dropout=dropout), resolution=resolution,
                       num_classes=num_classes, activation="silu", drop_path_rate=0.2, bn_eps=1e-3)


def resnet(depth: int, num_classes: int = 1000) -> NetworkSpec:
    block, layers = _RESNETS[depth]
    expand = 4.0 if block == "bottleneck" else 1.0
    stages = tuple(
        StageSpec(block=block, layers=n, out_channels=int(w * expand), stride=1 if i == 0 else 2,
                  kernel=3, expand_ratio=expand)
        for i, (w, n) in enumerate(zip((64, 128, 256, 512), layers)))
    return NetworkSpec(name=f"resnet{depth}", stem=StemSpec(64, 7, 2, maxpool=True), stages=stages,
                       head=HeadSpec(), resolution=224, num_classes=num_classes, activation="relu")


def baseline_convnet(num_classes: int = 10) -> NetworkSpec:
    """The seed's baseline: 3 convolutional layers (64, 128, 256 channels, 3x3, a 2x2 max-pool before
    the 2nd and 3rd) and 3 fully connected layers (256, 128, classes) on 32 px images."""
    stages = (StageSpec("conv", 1, 128, stride=2), StageSpec("conv", 1, 256, stride=2))
    return NetworkSpec(name="baseline_convnet", stem=StemSpec(64, 3, 1), stages=stages,
                       head=HeadSpec(pool_size=4, hidden=(256, 128), dropout=0.3), resolution=32,
                       num_classes=num_classes, activation="relu")


def fast_convnet(num_classes: int = 10) -> NetworkSpec:
    """A VGG-style 32 px network for fast trials (the widths of airbench's CIFAR-10 speed runs, halved
    twice): a 32-channel stem, then three stages of two 3x3 conv-BN-ReLU layers at 64, 128 and 256
    channels, each stage opened by a 2x2 max-pool; global pooling and one linear layer."""
    stages = tuple(StageSpec("conv", 2, c, stride=2) for c in (64, 128, 256))
    return NetworkSpec(name="fast_convnet", stem=StemSpec(32, 3, 1), stages=stages, head=HeadSpec(),
                       resolution=32, num_classes=num_classes, activation="relu")


def frontier_convnet(num_classes: int = 10) -> NetworkSpec:
    """The network of the CPU-frontier recipe (``--recipe frontier``): airbench's block layout at CPU widths.
    A 32-channel stem, then three blocks of [3x3 conv at the block's input resolution, 2x2 max-pool, BN,
    ReLU, 3x3 conv] at 64, 128 and 256 channels; global pooling and one linear layer. Its first block
    convolves at the full 32 px, where ``fast_convnet`` pools first: 86 M multiply-adds against 43.5 M, and
    more accurate at equal training time on CIFAR-10 (88.4% against 87.8% in the same ~9 minutes). Pooling
    before BN (``conv_pool``) trains about 1.35x faster with bfloat16 than pooling after it, at the same cost."""
    stages = tuple(StageSpec(block, 1, c, stride=s) for c in (64, 128, 256)
                   for block, s in (("conv_pool", 2), ("conv", 1)))
    return NetworkSpec(name="frontier_convnet", stem=StemSpec(32, 3, 1), stages=stages, head=HeadSpec(),
                       resolution=32, num_classes=num_classes, activation="relu")


def small_input(spec: NetworkSpec) -> NetworkSpec:
    """The 32 px variant of an ImageNet preset (see the module docstring for the choice)."""
    stem = dataclasses.replace(spec.stem, stride=1, maxpool=False,
                               kernel=3 if spec.stem.maxpool else spec.stem.kernel)
    resolution = round(SMALL_INPUT_RESOLUTION * spec.resolution / _imagenet_base(spec))
    return dataclasses.replace(spec, name=spec.name + SMALL_INPUT_SUFFIX, stem=stem,
                               resolution=resolution)


def _imagenet_base(spec: NetworkSpec) -> int:
    """Resolution whose 32 px counterpart is exactly 32: B0's 224 for B1..B7, else the preset's own."""
    return 224 if spec.name.startswith("efficientnet_b") else spec.resolution


def _registry() -> dict[str, Callable[[int], NetworkSpec]]:
    reg: dict[str, Callable[[int], NetworkSpec]] = {}
    for v in EFFICIENTNET_FAMILY:
        reg[f"efficientnet_{v}"] = lambda k, v=v: efficientnet(v, k)
    reg["efficientnet_b0_fused"] = efficientnet_b0_fused
    for v in _V2:
        reg[f"efficientnet_v2_{v}"] = lambda k, v=v: efficientnet_v2(v, k)
    for depth in _RESNETS:
        reg[f"resnet{depth}"] = lambda k, d=depth: resnet(d, k)
    for name, make in list(reg.items()):
        reg[name + SMALL_INPUT_SUFFIX] = lambda k, make=make: small_input(make(k))
    reg["baseline_convnet"] = baseline_convnet
    reg["fast_convnet"] = fast_convnet
    reg["frontier_convnet"] = frontier_convnet
    return reg


PRESETS = _registry()


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str, num_classes: int = 1000) -> NetworkSpec:
    """The named preset with a classifier for ``num_classes`` classes."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `scalelab models list` shows all"
        raise SpecError(f"unknown model '{name}'{hint}")
    return PRESETS[name](num_classes)


def resolve(name_or_path: str, num_classes: int | None = None) -> NetworkSpec:
    """A preset name or the path of a spec JSON file (as written by `scalelab search baseline`).

    A ``@PIXELS`` suffix sets the input resolution and keeps the architecture: ``resnet152@32`` is
    ResNet-152 with its ImageNet stem fed 32 px images (``resnet152_32`` swaps in a small-input stem).
    """
    base, at, pixels = name_or_path.rpartition("@")
    if at and not Path(name_or_path).is_file():
        if not pixels.isdigit() or int(pixels) < 8:
            raise SpecError(f"'{name_or_path}': the part after '@' must be an input size in pixels "
                            f"(at least 8), as in resnet152@32")
        spec = resolve(base, num_classes)
        return dataclasses.replace(spec, name=f"{spec.name}@{pixels}", resolution=int(pixels))
    if name_or_path.endswith(".json") or Path(name_or_path).is_file():
        path = Path(name_or_path)
        if path.is_dir():
            raise SpecError(f"spec file '{path}' is a folder; give a preset name or a spec JSON file")
        if not path.is_file():
            raise SpecError(f"spec file '{path}' does not exist; give a preset name or a spec JSON path")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SpecError(f"spec file '{path}' is not text (not UTF-8); give a spec JSON file") from None
        except OSError as exc:
            raise SpecError(f"cannot read spec file '{path}': {exc.strerror or exc}") from None
        try:
            spec = NetworkSpec.from_json(text)
        except SpecError as exc:
            raise SpecError(f"spec file '{path}': {exc}") from None
        return spec if num_classes is None else dataclasses.replace(spec, num_classes=num_classes)
    return get_preset(name_or_path, 1000 if num_classes is None else num_classes)


def make_spec(model: str, *, num_classes: int | None = None, resolution: int | None = None,
              depth: float = 1.0, width: float = 1.0, alpha: float | None = None,
              beta: float | None = None, gamma: float | None = None,
              phi: float | None = None, layers: LayerRounding = "up") -> NetworkSpec:
    """A preset (or spec file) scaled by explicit multipliers or by compound coefficients.

    ``phi`` selects compound scaling with ``alpha``, ``beta``, ``gamma`` (defaults: the seed's 1.2,
    1.1, 1.15), which then must not be mixed with ``depth`` or ``width``; ``resolution`` sets the input
    size in pixels after scaling; ``layers`` is the layer rounding rule (``"up"`` or ``"nearest"``).
    """
    spec = resolve(model, num_classes)
    if phi is not None:
        if (depth, width) != (1.0, 1.0):
            raise SpecError("give either --phi (compound scaling) or --depth/--width, not both")
        try:
            scale = compound(alpha or 1.2, beta or 1.1, gamma or 1.15, phi)
        except OverflowError:
            raise SpecError(f"--phi {phi} scales the network beyond any size a number can hold; use a "
                            "smaller phi") from None
    elif any(v is not None for v in (alpha, beta, gamma)):
        raise SpecError("--alpha/--beta/--gamma need --phi (the compound coefficient)")
    else:
        scale = Scale(depth, width, 1.0)
    spec = apply(spec, scale, layers=layers)
    return spec if resolution is None else dataclasses.replace(spec, resolution=resolution)
