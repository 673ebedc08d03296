"""Would the study's answer hold with more training? A study file that trains its leading networks again
at a multiple of the budget.

A network still gaining accuracy at the end of its trial is not converged, but under a schedule that
decays the learning rate to zero (cosine, linear) the last epochs gain accuracy however far from converged
the network is: the annealing itself sharpens it. Only a longer run of the same schedule says how much is
left, and whether the ranking changes with it. The check is a comparison study (kind ``compare``) of the
best networks, as spec JSON files, with the study's data, split, recipe and seeds and ``factor`` times its
training budget; `scalelab run` trains it and its summary separates the networks at that budget.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalelab.files import write_text_atomic
from scalelab.search.config import StudyConfig

if TYPE_CHECKING:
    from scalelab.search.summary import NetworkResult

CHECK_FILE = "budget-check.toml"


def write_budget_check(study_name: str, config: StudyConfig, leaders: list[NetworkResult], out_dir: Path,
                       factor: float = 2.0) -> Path:
    """Write ``out_dir/budget-check.toml`` and the leaders' specs beside it (``budget-check/<name>.json``);
    returns the study file's path."""
    specs = out_dir / "budget-check"
    models = [str(write_text_atomic(specs / (re.sub(r"[^A-Za-z0-9_.@-]+", "-", n.first.spec.name) + ".json"),
                                    n.first.spec.to_json() + "\n")) for n in leaders]
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
    now = "; ".join(f"{n.first.spec.name} {n.accuracy()}" for n in leaders)
    header = (f"# Budget check of study {study_name}: its {len(leaders)} leading networks trained again with "
              f"{factor:g}x its training budget\n# ({budget}), the same data, split, recipe and seeds. Run it "
              f"from the folder the study ran in:\n#   scalelab run {out_dir / CHECK_FILE}\n"
              f"# Validation accuracy at the study's budget: {now}\n")
    return write_text_atomic(out_dir / CHECK_FILE,
                             header + _toml(top) + "\n[train]\n" + _toml(train) + "\n[search]\n"
                             + _toml({"models": models}))


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
