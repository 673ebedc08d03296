"""The baseline search space: MnasNet's factorised hierarchical space around a skeleton network.

The skeleton (by default ``efficientnet_b0_32``, B0 with a stride-1 stem for 32 px images) fixes the
stem, the head, the number of stages and each stage's stride. Every stage then chooses, independently:

=====================  ====================================================
operator               MBConv or Fused-MBConv
expansion ratio        1, 4 or 6
kernel                 3x3 or 5x5
squeeze-excitation     off, or on with ratio 0.25
layers                 the skeleton's count -1, +0 or +1 (at least 1)
channel multiplier     0.75, 1 or 1.25 of the skeleton's output channels,
                       rounded with ``round_filters`` (multiples of 8)
=====================  ====================================================

That is 2 x 3 x 2 x 2 x 3 x 3 = 216 choices per stage, 216^7 (about 2.2e16) networks for B0's seven
stages. Factorising per stage, as MnasNet does, lets layers differ across stages while keeping the space
small enough for a sampler to learn from a few dozen trials.
"""

from __future__ import annotations

import dataclasses

import optuna

from scalelab.arch.scaling import round_filters
from scalelab.arch.spec import NetworkSpec, StageSpec

OPERATORS = ("mbconv", "fused_mbconv")
EXPANSIONS = (1, 4, 6)
KERNELS = (3, 5)
SE_RATIOS = (0.0, 0.25)
LAYER_DELTAS = (-1, 0, 1)
CHANNEL_MULTIPLIERS = (0.75, 1.0, 1.25)


def suggest_spec(trial: optuna.Trial, skeleton: NetworkSpec) -> NetworkSpec:
    """The network the trial's choices describe (parameters ``s<stage>_<choice>``, stages from 1)."""
    stages = []
    for i, st in enumerate(skeleton.stages, start=1):
        choice = {name: trial.suggest_categorical(f"s{i}_{name}", options) for name, options in (
            ("op", OPERATORS), ("expand", EXPANSIONS), ("kernel", KERNELS), ("se", SE_RATIOS),
            ("layers", LAYER_DELTAS), ("width", CHANNEL_MULTIPLIERS))}
        stages.append(StageSpec(
            block=choice["op"], expand_ratio=float(choice["expand"]), kernel=choice["kernel"],
            se_ratio=choice["se"], layers=max(1, st.layers + choice["layers"]),
            out_channels=round_filters(st.out_channels * choice["width"]), stride=st.stride))
    return dataclasses.replace(skeleton, name=f"{skeleton.name}-search{trial.number}", stages=tuple(stages))
