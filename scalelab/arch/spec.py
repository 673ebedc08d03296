"""Networks as plain data: a stem, a list of stages (Eq. 1 of the seed report) and a head.

A :class:`NetworkSpec` is frozen, validated in one place, serialises to JSON and back exactly, and is
what search, scaling, cost and reports talk about; :mod:`scalelab.arch.build` turns it into a module.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from scalelab.errors import SpecError

BLOCKS = ("mbconv", "fused_mbconv", "basic", "bottleneck", "conv", "conv_pool")
"""Stage operators: MBConv (V1), Fused-MBConv (V2), ResNet basic and bottleneck blocks, and plain
conv + BN + activation layers: ``conv`` opens a stride-2 stage with a 2x2 max-pool, ``conv_pool`` convolves
at the stage's input resolution and max-pools before its BN (airbench's order: the same multiply-adds as a
``conv`` stage one resolution up, with BN and activation on a quarter of the pixels)."""

ACTIVATIONS = ("silu", "relu")

_OPERATOR_LABEL = {
    "mbconv": "MBConv{e:g},k{k}x{k}",
    "fused_mbconv": "Fused-MBConv{e:g},k{k}x{k}",
    "basic": "ResBasic,k{k}x{k}",
    "bottleneck": "ResBottleneck{e:g}",
    "conv": "Conv{k}x{k}",
    "conv_pool": "Conv{k}x{k}",
}


@dataclass(frozen=True)
class StemSpec:
    """First convolution (+ BN + activation), optionally followed by a 3x3 stride-2 max-pool (ResNet)."""

    channels: int
    kernel: int = 3
    stride: int = 2
    maxpool: bool = False


@dataclass(frozen=True)
class StageSpec:
    """``layers`` repetitions of one operator; the first layer applies ``stride``.

    ``expand_ratio`` is MBConv's expansion (or the bottleneck's output/width ratio, 4 for ResNet-50+);
    ``se_ratio`` is the squeeze-excitation width as a fraction of the block input channels (0: no SE).
    """

    block: str
    layers: int
    out_channels: int
    stride: int = 1
    kernel: int = 3
    expand_ratio: float = 1.0
    se_ratio: float = 0.0


@dataclass(frozen=True)
class HeadSpec:
    """Classifier: optional 1x1 conv to ``channels`` (0: none), adaptive average pool to
    ``pool_size`` x ``pool_size``, flatten, hidden fully connected layers, dropout, final linear."""

    channels: int = 0
    pool_size: int = 1
    hidden: tuple[int, ...] = ()
    dropout: float = 0.0


@dataclass(frozen=True)
class NetworkSpec:
    """A whole ConvNet: Eq. 1 of the seed report plus its input resolution and class count."""

    name: str
    stem: StemSpec
    stages: tuple[StageSpec, ...]
    head: HeadSpec = field(default_factory=HeadSpec)
    resolution: int = 224
    num_classes: int = 1000
    activation: str = "silu"
    drop_path_rate: float = 0.0
    bn_eps: float = 1e-5

    def __post_init__(self) -> None:
        _validate(self)

    # --- derived views -------------------------------------------------------------------------
    @property
    def total_stride(self) -> int:
        """Downsampling factor from the input to the last feature map."""
        s = self.stem.stride * (2 if self.stem.maxpool else 1)
        for st in self.stages:
            s *= st.stride
        return s

    def stage_resolutions(self) -> list[int]:
        """Input resolution of each stage (the seed's H_i = W_i column)."""
        res = _down(self.resolution, self.stem.stride)
        if self.stem.maxpool:
            res = _down(res, 2)
        out = []
        for st in self.stages:
            out.append(res)
            res = _down(res, st.stride)
        return out

    def table(self) -> list[dict[str, Any]]:
        """Rows of the seed's Table 1: stage, operator, input resolution, channels, layers."""
        res = self.stage_resolutions()
        rows = [dict(stage=1, operator=f"Conv{self.stem.kernel}x{self.stem.kernel}"
                     + ("+MaxPool" if self.stem.maxpool else ""),
                     resolution=f"{self.resolution}x{self.resolution}",
                     channels=self.stem.channels, layers=1)]
        for i, st in enumerate(self.stages):
            label = _OPERATOR_LABEL[st.block].format(e=st.expand_ratio, k=st.kernel)
            if st.block == "conv" and st.stride == 2:
                label = "MaxPool+" + label
            if st.block == "conv_pool" and st.stride == 2:
                label += "+MaxPool"
            if st.se_ratio and st.block == "fused_mbconv":
                label += f",SE{st.se_ratio:g}"
            rows.append(dict(stage=i + 2, operator=label, resolution=f"{res[i]}x{res[i]}",
                             channels=st.out_channels, layers=st.layers))
        last = _down(res[-1], self.stages[-1].stride) if self.stages else res
        pool = "Pooling" if self.head.pool_size == 1 else f"Pool{self.head.pool_size}x{self.head.pool_size}"
        n_fc = 1 + len(self.head.hidden)
        head = ("Conv1x1+" if self.head.channels else "") + pool + ("+FC" if n_fc == 1 else f"+FCx{n_fc}")
        rows.append(dict(stage=len(self.stages) + 2, operator=head, resolution=f"{last}x{last}",
                         channels=self.head.channels or self.stages[-1].out_channels, layers=1))
        return rows

    def format_table(self) -> str:
        """The Table-1 view as aligned text."""
        rows = self.table()
        cols = [("stage", "Stage"), ("operator", "Operator"), ("resolution", "Resolution"),
                ("channels", "#Channels"), ("layers", "#Layers")]
        widths = [max(len(h), *(len(str(r[k])) for r in rows)) for k, h in cols]
        lines = ["  ".join(h.ljust(w) for (_, h), w in zip(cols, widths))]
        lines += ["  ".join(str(r[k]).ljust(w) for (k, _), w in zip(cols, widths)) for r in rows]
        return "\n".join(lines)

    # --- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def network_key(self) -> str:
        """The spec's JSON without its name: two specs are the same network when their keys match."""
        d = self.to_dict()
        d.pop("name")
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        try:
            d = dict(data)
            d["stem"] = StemSpec(**d["stem"])
            d["stages"] = tuple(StageSpec(**s) for s in d["stages"])
            head = dict(d.get("head", {}))
            head["hidden"] = tuple(head.get("hidden", ()))
            d["head"] = HeadSpec(**head)
            return cls(**d)
        except SpecError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise SpecError(f"not a valid network spec ({what}); expected the JSON written by "
                            "NetworkSpec.to_json or `scalelab search baseline`") from exc

    @classmethod
    def from_json(cls, text: str) -> NetworkSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"network spec is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise SpecError("network spec JSON must be an object with stem, stages and head")
        return cls.from_dict(data)


def _down(size: int, stride: int) -> int:
    """Output size of a 'same'-padded convolution or pooling with this stride."""
    return -(-size // stride)


def _check_types(obj: Any, where: str) -> None:
    """Every field of a spec part has its declared type: ints are ints (not bools, not 2.5), floats are
    finite real numbers, strings strings, flags booleans; a spec read from JSON can hold anything."""
    for f in dataclasses.fields(obj):
        value, kind = getattr(obj, f.name), str(f.type)
        label = f"{where}{f.name}"
        if kind == "int":
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            want = "an integer"
        elif kind == "float":
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            want = "a finite number"
        elif kind == "str":
            ok, want = isinstance(value, str), "a string"
        elif kind == "bool":
            ok, want = isinstance(value, bool), "true or false"
        elif kind == "tuple[int, ...]":
            ok = isinstance(value, tuple) and all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
            want = "a list of integers"
        else:
            continue
        if not ok:
            raise SpecError(f"network spec: {label} must be {want}, got {value!r} ({type(value).__name__})")


def _validate(spec: NetworkSpec) -> None:
    def bad(msg: str) -> SpecError:
        return SpecError(f"network '{spec.name}': {msg}")

    if not isinstance(spec.name, str):
        raise SpecError(f"network spec: name must be a string, got {spec.name!r}")
    for part, where in ((spec.stem, "stem."), (spec.head, "head.")):
        if not isinstance(part, (StemSpec, HeadSpec)):
            raise bad(f"{where[:-1]} must be an object, got {part!r}")
        _check_types(part, where)
    if not isinstance(spec.stages, tuple) or not all(isinstance(st, StageSpec) for st in spec.stages):
        raise bad("stages must be a list of stage objects")
    for i, st in enumerate(spec.stages, start=1):
        _check_types(st, f"stage {i} ")
    _check_types(spec, "")

    if spec.stem.channels < 1 or spec.stem.kernel < 1 or spec.stem.stride not in (1, 2):
        raise bad("stem needs channels >= 1, kernel >= 1 and stride 1 or 2")
    if not spec.stages:
        raise bad("needs at least one stage")
    for i, st in enumerate(spec.stages, start=1):
        if st.block not in BLOCKS:
            raise bad(f"stage {i} has unknown block '{st.block}'; choose one of {', '.join(BLOCKS)}")
        if st.layers < 1 or st.out_channels < 1:
            raise bad(f"stage {i} needs layers >= 1 and out_channels >= 1 "
                      f"(got {st.layers} and {st.out_channels})")
        if st.stride not in (1, 2):
            raise bad(f"stage {i} stride must be 1 or 2, got {st.stride}")
        if st.kernel < 1 or st.kernel % 2 == 0:
            raise bad(f"stage {i} kernel must be odd and positive, got {st.kernel}")
        if st.expand_ratio <= 0 or not 0 <= st.se_ratio <= 1:
            raise bad(f"stage {i} needs expand_ratio > 0 and 0 <= se_ratio <= 1")
        if st.se_ratio and st.block not in ("mbconv", "fused_mbconv"):
            raise bad(f"stage {i}: squeeze-excitation is only built into mbconv and fused_mbconv")
    if spec.head.channels < 0 or spec.head.pool_size < 1 or any(h < 1 for h in spec.head.hidden):
        raise bad("head needs channels >= 0, pool_size >= 1 and positive hidden widths")
    if not 0 <= spec.head.dropout < 1 or not 0 <= spec.drop_path_rate < 1:
        raise bad("dropout and drop_path_rate must be in [0, 1)")
    if spec.activation not in ACTIVATIONS:
        raise bad(f"unknown activation '{spec.activation}'; choose one of {', '.join(ACTIVATIONS)}")
    if spec.num_classes < 2:
        raise bad(f"num_classes must be at least 2, got {spec.num_classes}")
    if spec.resolution < spec.total_stride:
        raise bad(f"resolution {spec.resolution} px is smaller than the network's total stride "
                  f"{spec.total_stride}; use a resolution of at least {spec.total_stride} px "
                  "(or a small-input preset such as efficientnet_b0_32)")
