"""Would the study's answer hold with more training? A study file that trains its leading networks again
at a multiple of the budget.

A network still gaining accuracy at the end of its trial is not converged, but under a schedule that
decays the learning rate to zero (cosine, linear) the last epochs gain accuracy however far from converged
the network is: the annealing itself sharpens it. Only a longer run of the same schedule says how much is
left, and whether the ranking changes with it. The check is a comparison study (kind ``compare``) of the
best networks, as spec JSON files, with the study's data, split, recipe and seeds and ``factor`` times its
training budget; `scalelab run` trains it, and its summary separates the networks at that budget and sets
each network's accuracy against the study's, seed by seed (:func:`against_study`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from scipy import special

from scalelab.analysis.replicates import pooled_spread
from scalelab.files import write_text_atomic
from scalelab.search.config import StudyConfig
from scalelab.search.record import TrialRecord, study_records

if TYPE_CHECKING:
    from scalelab.search.summary import NetworkResult

CHECK_FILE = "budget-check.toml"


def write_budget_check(study_name: str, config: StudyConfig, networks: list[NetworkResult], out_dir: Path,
                       factor: float = 2.0) -> Path:
    """Write ``out_dir/budget-check.toml`` and the networks' specs beside it (``budget-check/<name>.json``);
    returns the study file's path."""
    specs = out_dir / "budget-check"
    models = [str(write_text_atomic(specs / (re.sub(r"[^A-Za-z0-9_.@-]+", "-", n.first.spec.name) + ".json"),
                                    n.first.spec.to_json() + "\n")) for n in networks]
    train = {k: v for k, v in config.to_dict()["train"].items() if v is not None}
    for key in ("epochs", "max_images", "max_seconds"):
        if key in train and math.isfinite(train[key]):
            train[key] = type(train[key])(train[key] * factor)
    top = dict(kind="compare", study=f"{study_name}-x{factor:g}-budget", dataset=config.dataset,
               val_fraction=config.val_fraction, train_fraction=config.train_fraction,
               evaluate_test=config.evaluate_test, seeds=config.seeds)
    if config.data_dir is not None:
        top["data_dir"] = config.data_dir
    budget = ", ".join(f"{k} {train[k]:g}" for k in ("epochs", "max_images", "max_seconds") if k in train)
    now = "; ".join(f"{n.first.spec.name} {n.accuracy()}" for n in networks)
    header = (f"# Budget check of study {study_name}: {len(networks)} of its networks trained again with "
              f"{factor:g}x its training budget\n# ({budget}), the same data, split, recipe and seeds. Run it "
              f"from the folder the study ran in:\n#   scalelab run {out_dir / CHECK_FILE}\n"
              f"# Validation accuracy at the study's budget: {now}\n")
    return write_text_atomic(out_dir / CHECK_FILE,
                             header + _toml(top) + "\n[train]\n" + _toml(train) + "\n[search]\n"
                             + _toml({"models": models, "budget_check_of": study_name}))


def _toml(table: dict[str, Any]) -> str:
    """Flat ``key = value`` lines: strings, booleans, numbers and lists of them (JSON's literals are TOML's,
    except for booleans and the infinities)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float) and not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    return "".join(f"{k} = {value(v)}\n" for k, v in table.items())


def against_study(study: optuna.Study, records: list[TrialRecord], reference: str,
                  level: float = 0.95) -> tuple[list[str], dict[str, Any]]:
    """Each network of this budget check against the same network in study ``reference`` (same storage),
    paired by seed: the gain in validation accuracy with its t interval (the spread of the paired
    differences pooled over the networks), and whether the order of the networks is the same."""
    try:
        earlier = study_records(optuna.load_study(study_name=reference, storage=study._storage))
    except KeyError:
        return [f"Budget check of {reference}: that study is not in this storage; run the check with the "
                "study's --storage to set the two budgets side by side"], {}
    before = {(r.spec.network_key, r.provenance.seed): r for r in earlier if r.finished}
    pairs: dict[str, list[tuple[TrialRecord, TrialRecord]]] = {}  # network key -> (there, here) by seed
    for r in records:
        if r.finished and (r.spec.network_key, r.provenance.seed) in before:
            pairs.setdefault(r.spec.network_key, []).append((before[r.spec.network_key, r.provenance.seed], r))
    if not pairs:
        return [f"Budget check of {reference}: no network here finished with a seed that finished there"], {}
    gains = {key: [now.outcome.val_acc - then.outcome.val_acc for then, now in p] for key, p in pairs.items()}
    sd, df = pooled_spread(list(gains.values()))
    t = float(special.stdtrit(df, 0.5 + level / 2)) if df else float("nan")
    lines = [f"Against study {reference}, seed by seed (validation accuracy; interval at {level:.0%} from the "
             f"spread of the gains pooled over the networks, {df} degrees of freedom):"]
    data: dict[str, Any] = {"reference": reference, "networks": {}}
    for key, p in pairs.items():
        name, gain = p[0][1].spec.name, float(np.mean(gains[key]))
        then, now = (float(np.mean([pair[i].outcome.val_acc for pair in p])) for i in (0, 1))
        bounds = (gain - t * sd / len(p) ** 0.5, gain + t * sd / len(p) ** 0.5) if df else None
        interval = (f"{100 * bounds[0]:+.2f} to {100 * bounds[1]:+.2f} points, " if bounds
                    else "spread unknown: one seed, ")
        lines.append(f"  {name}: {then:.2%} at {p[0][0].outcome.epochs:g} epochs -> {now:.2%} at "
                     f"{p[0][1].outcome.epochs:g}: {100 * gain:+.2f} points ({interval}{len(p)} seed(s))")
        data["networks"][name] = {"before": then, "after": now, "gain": gain, "seeds": len(p),
                                  "gain_interval": list(bounds) if bounds else None}
    order = {i: [pairs[k][0][1].spec.name for k in
                 sorted(pairs, key=lambda k: -np.mean([pair[i].outcome.val_acc for pair in pairs[k]]))] for i in (0, 1)}
    same = order[0] == order[1]
    lines.append(f"Order by mean accuracy: {' > '.join(order[1])} here; "
                 + ("the same as there." if same else f"there: {' > '.join(order[0])} (changed)."))
    data["same_order"] = same
    return lines, data
