"""Building blocks: conv-BN-activation, squeeze-excitation, MBConv, Fused-MBConv, ResNet blocks.

Layouts follow the reference implementations (torchvision), so parameter counts of the presets match
the published ones exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {"silu": nn.SiLU, "relu": nn.ReLU}


def activation(name: str) -> nn.Module:
    return _ACTIVATIONS[name](inplace=True)


class ConvBNAct(nn.Sequential):
    """k x k convolution without bias, batch norm, optional activation ('same' padding)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, *, groups: int = 1,
                 act: str | None = "silu", bn_eps: float = 1e-5) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out, eps=bn_eps)]
        if act is not None:
            layers.append(activation(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: global pool, 1x1 reduce, activation, 1x1 expand, sigmoid gate."""

    def __init__(self, channels: int, squeeze: int, act: str) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = activation(act)
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(self.act(self.reduce(s))))


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch of a random subset of the batch's images."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), device=x.device, dtype=x.dtype)
        return x * mask.bernoulli_(keep) / keep

    def extra_repr(self) -> str:
        return f"p={self.p:.3f}"


class _Residual(nn.Module):
    """A branch plus an identity (or projection) shortcut, with stochastic depth on the branch."""

    def __init__(self, branch: nn.Sequential, shortcut: nn.Module | None, drop_path: float,
                 post_act: str | None = None, skip: bool = True) -> None:
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut
        self.skip = skip
        self.drop_path = DropPath(drop_path) if skip and drop_path > 0 else nn.Identity()
        self.post_act = activation(post_act) if post_act else nn.Identity()
        if skip:  # start as identity: helps short training (Goyal et al., 2017)
            nn.init.zeros_(_last_bn(branch).weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.branch(x)
        if self.skip:
            identity = x if self.shortcut is None else self.shortcut(x)
            out = self.drop_path(out) + identity
        return self.post_act(out)


def _last_bn(module: nn.Module) -> nn.BatchNorm2d:
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)][-1]


def mbconv(c_in: int, c_out: int, *, kernel: int, stride: int, expand_ratio: float, se_ratio: float,
           act: str, drop_path: float, bn_eps: float) -> nn.Module:
    """MBConv: 1x1 expansion, k x k depthwise, squeeze-excitation, 1x1 linear projection."""
    c_mid = _expanded(c_in, expand_ratio)
    layers: list[nn.Module] = []
    if c_mid != c_in:
        layers.append(ConvBNAct(c_in, c_mid, 1, act=act, bn_eps=bn_eps))
    layers.append(ConvBNAct(c_mid, c_mid, kernel, stride, groups=c_mid, act=act, bn_eps=bn_eps))
    if se_ratio > 0:
        layers.append(SqueezeExcite(c_mid, _squeezed(c_in, se_ratio), act))
    layers.append(ConvBNAct(c_mid, c_out, 1, act=None, bn_eps=bn_eps))
    return _Residual(nn.Sequential(*layers), None, drop_path, skip=stride == 1 and c_in == c_out)


def fused_mbconv(c_in: int, c_out: int, *, kernel: int, stride: int, expand_ratio: float,
                 se_ratio: float, act: str, drop_path: float, bn_eps: float) -> nn.Module:
    """Fused-MBConv (EfficientNetV2): one regular k x k convolution replaces expansion + depthwise."""
    c_mid = _expanded(c_in, expand_ratio)
    layers: list[nn.Module]
    if c_mid != c_in:
        layers = [ConvBNAct(c_in, c_mid, kernel, stride, act=act, bn_eps=bn_eps)]
        if se_ratio > 0:
            layers.append(SqueezeExcite(c_mid, _squeezed(c_in, se_ratio), act))
        layers.append(ConvBNAct(c_mid, c_out, 1, act=None, bn_eps=bn_eps))
    else:
        layers = [ConvBNAct(c_in, c_out, kernel, stride, act=act, bn_eps=bn_eps)]
        if se_ratio > 0:
            layers.append(SqueezeExcite(c_out, _squeezed(c_in, se_ratio), act))
    return _Residual(nn.Sequential(*layers), None, drop_path, skip=stride == 1 and c_in == c_out)


def basic_block(c_in: int, c_out: int, *, kernel: int, stride: int, act: str, drop_path: float,
                bn_eps: float, **_: float) -> nn.Module:
    """ResNet basic block: two k x k convolutions and a shortcut (projected when shapes differ)."""
    branch = nn.Sequential(ConvBNAct(c_in, c_out, kernel, stride, act=act, bn_eps=bn_eps),
                           ConvBNAct(c_out, c_out, kernel, act=None, bn_eps=bn_eps))
    return _Residual(branch, _projection(c_in, c_out, stride, bn_eps), drop_path, post_act=act)


def bottleneck_block(c_in: int, c_out: int, *, kernel: int, stride: int, expand_ratio: float, act: str,
                     drop_path: float, bn_eps: float, **_: float) -> nn.Module:
    """ResNet bottleneck (v1.5, stride on the k x k conv): 1x1 reduce to c_out / expand_ratio,
    k x k, 1x1 expand to c_out."""
    width = max(1, round(c_out / expand_ratio))
    branch = nn.Sequential(ConvBNAct(c_in, width, 1, act=act, bn_eps=bn_eps),
                           ConvBNAct(width, width, kernel, stride, act=act, bn_eps=bn_eps),
                           ConvBNAct(width, c_out, 1, act=None, bn_eps=bn_eps))
    return _Residual(branch, _projection(c_in, c_out, stride, bn_eps), drop_path, post_act=act)


def conv_layer(c_in: int, c_out: int, *, kernel: int, stride: int, act: str, bn_eps: float,
               **_: float) -> nn.Module:
    """Plain layer of the small baseline ConvNet: (2x2 max-pool when stride 2), conv, BN, activation."""
    conv = ConvBNAct(c_in, c_out, kernel, act=act, bn_eps=bn_eps)
    return nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), *conv) if stride == 2 else conv


def conv_pool_layer(c_in: int, c_out: int, *, kernel: int, stride: int, act: str, bn_eps: float,
                    **_: float) -> nn.Module:
    """Plain layer that pools after convolving: conv, (2x2 max-pool when stride 2), BN, activation."""
    conv, bn, *rest = ConvBNAct(c_in, c_out, kernel, act=act, bn_eps=bn_eps)
    pool = [nn.MaxPool2d(2, ceil_mode=True)] if stride == 2 else []
    return nn.Sequential(conv, *pool, bn, *rest)


def _expanded(c_in: int, ratio: float) -> int:
    return max(1, round(c_in * ratio))


def _squeezed(c_in: int, se_ratio: float) -> int:
    """SE width is a fraction of the block's input channels, as in the reference EfficientNets."""
    return max(1, int(c_in * se_ratio))


def _projection(c_in: int, c_out: int, stride: int, bn_eps: float) -> nn.Module | None:
    if stride == 1 and c_in == c_out:
        return None
    return ConvBNAct(c_in, c_out, 1, stride, act=None, bn_eps=bn_eps)


BLOCK_BUILDERS = {
    "mbconv": mbconv,
    "fused_mbconv": fused_mbconv,
    "basic": basic_block,
    "bottleneck": bottleneck_block,
    "conv": conv_layer,
    "conv_pool": conv_pool_layer,
}
