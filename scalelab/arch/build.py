"""NetworkSpec -> torch.nn.Module."""

from __future__ import annotations

from torch import Tensor, nn

from scalelab.arch.blocks import BLOCK_BUILDERS, ConvBNAct, activation
from scalelab.arch.spec import NetworkSpec


class Network(nn.Module):
    """A ConvNet built from a spec: ``stem``, ``stages`` (one Sequential each) and ``head``."""

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        act, eps = spec.activation, spec.bn_eps
        stem: list[nn.Module] = [ConvBNAct(3, spec.stem.channels, spec.stem.kernel, spec.stem.stride,
                                           act=act, bn_eps=eps)]
        if spec.stem.maxpool:
            stem.append(nn.MaxPool2d(3, 2, padding=1))
        self.stem = nn.Sequential(*stem)

        total_blocks = sum(st.layers for st in spec.stages)
        c_in, block_id, stages = spec.stem.channels, 0, []
        for st in spec.stages:
            blocks = []
            for i in range(st.layers):
                # Stochastic depth grows linearly with depth, as in the reference EfficientNets.
                drop = spec.drop_path_rate * block_id / total_blocks
                blocks.append(BLOCK_BUILDERS[st.block](
                    c_in, st.out_channels, kernel=st.kernel, stride=st.stride if i == 0 else 1,
                    expand_ratio=st.expand_ratio, se_ratio=st.se_ratio, act=act, drop_path=drop,
                    bn_eps=eps))
                c_in, block_id = st.out_channels, block_id + 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)

        head: list[nn.Module] = []
        if spec.head.channels:
            head.append(ConvBNAct(c_in, spec.head.channels, 1, act=act, bn_eps=eps))
            c_in = spec.head.channels
        head += [nn.AdaptiveAvgPool2d(spec.head.pool_size), nn.Flatten()]
        features = c_in * spec.head.pool_size**2
        for width in spec.head.hidden:
            head += [nn.Linear(features, width), activation(act)]
            if spec.head.dropout:
                head.append(nn.Dropout(spec.head.dropout))
            features = width
        if spec.head.dropout and not spec.head.hidden:
            head.append(nn.Dropout(spec.head.dropout))
        head.append(nn.Linear(features, spec.num_classes))
        self.head = nn.Sequential(*head)
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))


def build(spec: NetworkSpec) -> Network:
    """Build the module described by ``spec`` (weights freshly initialised)."""
    return Network(spec)


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
