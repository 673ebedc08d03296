"""What a finished study says, rebuilt from the storage: the best network or the Pareto front of a
baseline search, the best alpha, beta, gamma of a grid, the table of a family, sweep or comparison;
and the files that carry them on (best spec JSON, coefficients JSON)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from scalelab.arch.spec import NetworkSpec
from scalelab.errors import SearchError
from scalelab.search.config import RunOptions, StudyConfig
from scalelab.search.study import point_of
from scalelab.units import si


@dataclass
class Summary:
    """``lines`` to print, ``data`` for programs, ``files`` written."""

    lines: list[str]
    data: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(self.lines)


def summarise(study: optuna.Study, config: StudyConfig, options: RunOptions) -> Summary:
    """The kind's summary; writes its result file under ``<run_dir>/<study>/`` unless ``options.out``."""
    out_dir = Path(options.run_dir) / study.study_name
    if config.kind == "baseline":
        return _baseline(study, config, Path(options.out or out_dir / "best.json"))
    if config.kind == "grid":
        return _grid(study, Path(options.out or out_dir / "coefficients.json"))
    if config.kind == "compare":
        return _comparison(study)
    return _table(study)


def _baseline(study: optuna.Study, config: StudyConfig, out: Path) -> Summary:
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    if not done:
        raise SearchError(f"no trial of study '{study.study_name}' finished training ({_states(trials)}); "
                          "raise --max-flops/--max-memory, or run more --trials")
    unit = study.user_attrs["resolved"]["cost_unit"]
    lines = [f"Study {study.study_name}: {_states(trials)}"]
    data: dict[str, Any] = {}
    files = []
    if len(study.directions) > 1:
        front = sorted(study.best_trials, key=lambda t: t.values[1])
        study.set_user_attr("pareto_front", [t.number for t in front])
        lines += [f"Pareto front, {len(front)} networks (maximise validation accuracy, minimise {unit}):",
                  *_rows(front, unit)]
        best = max(front, key=lambda t: t.values[0])
        data["pareto_front"] = [_record(t) for t in front]
        pareto = out.with_name("pareto.json")
        _write(pareto, json.dumps(data["pareto_front"], indent=2))
        files.append(pareto)
        lines.append(f"Most accurate on the front: trial {best.number}")
    else:
        best = study.best_trial
        target = study.user_attrs["resolved"]["target"]
        lines.append(f"Best: trial {best.number}, reward {best.value:.4f} = val acc {best.user_attrs['val_acc']:.2%} "
                     f"x ({_cost(best, unit)} / target {_fmt(target, unit)})^{config.search.w:g}")
    spec = NetworkSpec.from_dict(best.user_attrs["spec"])
    _write(out, spec.to_json())
    files.append(out)
    data["best"] = _record(best)
    lines += ["", spec.format_table(), "",
              f"Parameters: {best.user_attrs['params']:,}; FLOPs: {si(best.user_attrs['flops'], 'multiply-adds')} "
              f"per image at {spec.resolution}x{spec.resolution} px",
              *(f"Saved {p}" for p in files)]
    return Summary(lines, data, files)


def _grid(study: optuna.Study, out: Path) -> Summary:
    trials = study.get_trials(deepcopy=False)
    plan, resolved = study.user_attrs["plan"], study.user_attrs["resolved"]
    by_point = {point_of(t): t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    multiple = resolved["multiple"]
    lines = [f"Grid for {multiple:.3g}x the baseline's {si(study.user_attrs['baseline_flops'], 'multiply-adds')}: "
             f"{len(resolved['candidates'])} points meet alpha*beta^2*gamma^2 = {multiple:.3g}",
             f"{'alpha':>6} {'beta':>6} {'gamma':>6} {'predicted x':>11} {'measured x':>10}  {'status':<10} val acc"]
    keys = {(p["attrs"]["alpha"], p["attrs"]["beta"], p["attrs"]["gamma"]): i for i, p in enumerate(plan)}
    for c in resolved["candidates"]:
        t = by_point.get(keys.get((c["alpha"], c["beta"], c["gamma"])))
        status = c["status"] if t is None or c["status"] != "train" else t.state.name.lower()
        acc = f"{t.user_attrs['val_acc']:.2%}" if t is not None and t.state == TrialState.COMPLETE else "-"
        lines.append(f"{c['alpha']:>6g} {c['beta']:>6g} {c['gamma']:>6g} {c['predicted_ratio']:>11.3f} "
                     f"{c['measured_ratio']:>10.3f}  {status:<10} {acc}")
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    statuses = [c["status"] for c in resolved["candidates"]]
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    saved = dict(off_target=statuses.count("off-target"), duplicates=statuses.count("duplicate"), pruned=pruned)
    lines.append(f"Trials saved: {saved['off_target']} off-target after rounding (never trained), "
                 f"{saved['duplicates']} duplicates (same network as another point), {pruned} pruned early; "
                 f"{len(done)} trained to the end")
    data: dict[str, Any] = {"saved": saved, "study": study.study_name}
    if len(by_point) < len(plan):
        lines.append(f"{len(plan) - len(by_point)} of {len(plan)} grid networks not finished; re-run to resume")
    if not done:
        return Summary(lines, data)
    best = max(done, key=lambda t: t.user_attrs["val_acc"])
    a = best.user_attrs
    data.update({k: a[k] for k in ("alpha", "beta", "gamma", "val_acc", "measured_ratio", "predicted_ratio",
                                   "flops", "aliases")}, multiple=multiple, trial=best.number,
                dataset=a["dataset"], baseline_spec=study.user_attrs["baseline_spec"])
    _write(out, json.dumps(data, indent=2))
    also = "".join(f" (also alpha={x['alpha']:g}, beta={x['beta']:g}, gamma={x['gamma']:g})" for x in a["aliases"])
    lines += [f"Best: alpha={a['alpha']:g}, beta={a['beta']:g}, gamma={a['gamma']:g}{also}: val acc "
              f"{a['val_acc']:.2%}, measured FLOPs ratio {a['measured_ratio']:.3f}x "
              f"(predicted {a['predicted_ratio']:.3f}x)", f"Saved {out}"]
    return Summary(lines, data, [out])


def _table(study: optuna.Study) -> Summary:
    trials = study.get_trials(deepcopy=False)
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE),
                  key=lambda t: (str(t.user_attrs.get("dimension")), t.user_attrs["flops"]))
    lines = [f"Study {study.study_name} ({study.user_attrs['kind']}): {_states(trials)}",
             f"{'trial':>5}  {'model':<36} {'dimension':<10} {'K':>6} {'d':>6} {'w':>6} {'r':>6} {'px':>4} "
             f"{'FLOPs (multiply-adds)':>22} {'val acc':>8}"]
    for t in done:
        a = t.user_attrs
        mults = " ".join(_num(a.get(k), ">6.3f") for k in ("multiple", "depth", "width", "resolution"))
        lines.append(f"{t.number:>5}  {a['spec']['name']:<36} {a.get('dimension') or '-':<10} {mults} "
                     f"{a['spec']['resolution']:>4} {a['flops']:>22,} {a['val_acc']:>8.2%}")
    return Summary(lines, {"trials": [_record(t) for t in done]})


def _comparison(study: optuna.Study) -> Summary:
    """Table 2: the models, most accurate first, with their cost, speed and accuracy."""
    trials = study.get_trials(deepcopy=False)
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: -t.user_attrs["val_acc"])
    lines = [f"Study {study.study_name} (compare): {_states(trials)}",
             f"{'trial':>5}  {'model':<28} {'px':>4} {'parameters':>12} {'FLOPs (multiply-adds)':>22} "
             f"{'latency (ms)':>12} {'train images/s':>14} {'epochs':>6} {'val acc':>8} {'test acc':>8}"]
    for t in done:
        a = t.user_attrs
        test = _num(a.get("test_acc"), ">8.2%")
        speed = f"{_num(a.get('latency_ms'), '>12.2f')} {_num(a.get('images_per_s'), '>14,.0f')}"
        lines.append(f"{t.number:>5}  {a['spec']['name']:<28} {a['spec']['resolution']:>4} {a['params']:>12,} "
                     f"{a['flops']:>22,} {speed} {_num(a.get('epochs'), '>6.2f')} {a['val_acc']:>8.2%} {test}")
    lines.append("Latency: one image (batch 1), median after warm-up; FLOPs per image at the input size (px).")
    return Summary(lines, {"trials": [_record(t) for t in done]})


def _num(value: float | None, fmt: str) -> str:
    """``value`` in ``fmt``, or a dash aligned to the same width."""
    return format(value, fmt) if value is not None else format("-", re.match(r"[<>^]?\d*", fmt).group(0))


def _states(trials: list[FrozenTrial]) -> str:
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    return ", ".join(f"{n} {s.name.lower()}" for s, n in counts.items() if n)


def _rows(trials: list[FrozenTrial], unit: str) -> list[str]:
    return [f"  trial {t.number:>4}: val acc {t.values[0]:.2%}, {_cost(t, unit)}, "
            f"{si(t.user_attrs['params'], 'parameters')}" for t in trials]


def _cost(t: FrozenTrial, unit: str) -> str:
    return _fmt(t.user_attrs["latency_ms"] if unit == "ms" else t.user_attrs["flops"], unit)


def _fmt(value: float, unit: str) -> str:
    return f"{value:.2f} ms" if unit == "ms" else si(value, unit)


def _record(t: FrozenTrial) -> dict[str, Any]:
    keep = ("val_acc", "params", "flops", "latency_ms", "spec")
    return {"trial": t.number, **{k: t.user_attrs.get(k) for k in keep}}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
