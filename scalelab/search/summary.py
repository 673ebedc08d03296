"""What a finished study says, rebuilt from its trial records: each kind writes its own summary (see
:meth:`StudyKind.summary`); the tables several kinds share are here."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from scalelab.files import confined
from scalelab.search.config import RunOptions, StudyConfig
from scalelab.search.record import TrialRecord, study_records
from scalelab.search.study import read_plan


@dataclass
class Summary:
    """``lines`` to print, ``data`` for programs (``--json``), ``files`` written."""

    lines: list[str]
    data: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(self.lines)


def summarise(study: optuna.Study, config: StudyConfig, options: RunOptions) -> Summary:
    """The kind's summary; result files go under ``<run_dir>/<study>/`` unless ``options.out``."""
    out_dir = confined(options.run_dir, study.study_name)
    return config.study_kind.summary(study, config, read_plan(study), study_records(study), out_dir, options.out)


def states(records: list[TrialRecord]) -> str:
    """'5 complete, 2 pruned' over the recorded trials."""
    counts = Counter(r.status.value for r in records)
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "no trial recorded"


def network_table(study: optuna.Study, records: list[TrialRecord], best: TrialRecord | None) -> Summary:
    """Every finished network of a family or sweep, by dimension and FLOPs."""
    done = sorted((r for r in records if r.finished), key=lambda r: (str(r.point.dimension), r.cost.flops))
    lines = [f"Study {study.study_name}: {states(records)}",
             f"{'trial':>5}  {'model':<36} {'dimension':<10} {'K':>6} {'d':>6} {'w':>6} {'r':>6} {'px':>4} "
             f"{'FLOPs (multiply-adds)':>22} {'val acc':>8}"]
    for r in done:
        p = r.point
        mults = " ".join(_num(v, ">6.3f") for v in (p.multiple, *p.scale))
        lines.append(f"{r.number:>5}  {r.spec.name:<36} {p.dimension or 'base':<10} {mults} "
                     f"{r.spec.resolution:>4} {r.cost.flops:>22,} {r.outcome.val_acc:>8.2%}")
    lines.append("K: planned FLOPs multiple of the base network; d, w, r: depth, width and resolution multipliers; "
                 "px: input size in pixels.")
    if best is not None:
        lines.append(f"Most accurate: trial {best.number}, {best.spec.name}, val acc {best.outcome.val_acc:.2%}")
    return Summary(lines, {"trials": [brief(r) for r in done], "best": brief(best) if best else None})


def comparison_table(study: optuna.Study, records: list[TrialRecord], best: TrialRecord | None) -> Summary:
    """Table 2: the models, most accurate first, with their cost, speed and accuracy."""
    done = sorted((r for r in records if r.finished), key=lambda r: (-r.outcome.val_acc, r.cost.flops, r.number))
    lines = [f"Study {study.study_name}: {states(records)}",
             f"{'trial':>5}  {'model':<28} {'px':>4} {'parameters':>12} {'FLOPs (multiply-adds)':>22} "
             f"{'latency (ms)':>12} {'train images/s':>14} {'epochs':>6} {'val acc':>8} {'test acc':>8}"]
    for r in done:
        o = r.outcome
        speed = f"{_num(r.cost.latency_ms, '>12.2f')} {_num(o.images_per_s, '>14,.0f')}"
        lines.append(f"{r.number:>5}  {r.spec.name:<28} {r.spec.resolution:>4} {r.cost.params:>12,} "
                     f"{r.cost.flops:>22,} {speed} {_num(o.epochs, '>6.2f')} {o.val_acc:>8.2%} "
                     f"{_num(o.test_acc, '>8.2%')}")
    lines.append("Latency: one image (batch 1), median after warm-up; FLOPs per image at the input size (px).")
    return Summary(lines, {"trials": [brief(r) for r in done], "best": brief(best) if best else None})


def brief(r: TrialRecord) -> dict[str, Any]:
    """The fields of a record that ``--json`` and the result files carry."""
    return {"trial": r.number, "model": r.spec.name, "status": r.status.value, "val_acc": r.outcome.val_acc,
            "test_acc": r.outcome.test_acc, "params": r.cost.params, "flops": r.cost.flops,
            "latency_ms": r.cost.latency_ms, "point": r.point.to_dict() if r.point else None}


def _num(value: float | None, fmt: str) -> str:
    """``value`` in ``fmt``, or a dash aligned to the same width."""
    return format(value, fmt) if value is not None else format("-", re.match(r"[<>^]?\d*", fmt).group(0))
