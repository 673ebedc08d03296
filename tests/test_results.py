"""The tidy results table, rebuilt from the storage alone."""

import optuna
import pandas as pd
import pytest
from conftest import LEARNING_TRAIN_IMAGES
from optuna.trial import TrialState

from scalelab.analysis.results import COLUMNS, NUMERIC, complete, results_table, search_rewards
from scalelab.arch.spec import HeadSpec, NetworkSpec, StageSpec, StemSpec
from scalelab.report import ReportSettings, write_site
from scalelab.errors import SearchError
from scalelab.search import build, run_study
from scalelab.search.storage import open_storage

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.xdist_group("results")]  # module fixtures built once, in one process


@pytest.fixture(scope="module")
def storage_path(tiny_settings, learning_settings, tmp_path_factory):
    """A storage holding a 2-trial sweep and a 2-trial baseline search that learned (well above chance),
    a 1-model comparison on tiny settings (at chance), and a memory-capped search whose one trial never
    trains, plus a pruned and a failed trial added to the sweep from outside (no record)."""
    run_dir = str(tmp_path_factory.mktemp("results"))
    tiny_study, learning_study = ({**s, "run_dir": run_dir} for s in (tiny_settings, learning_settings))
    run_study(*build({**learning_study, "kind": "sweep", "study": "s",
                      "search": {"multiples": [1, 4], "dimensions": ["depth"]}}))
    run_study(*build({**tiny_study, "kind": "compare", "study": "c", "evaluate_test": True,
                      "search": {"models": ["baseline_convnet"]}}))
    skeleton = tmp_path_factory.mktemp("skeleton") / "tiny.json"
    skeleton.write_text(NetworkSpec(
        name="tiny", stem=StemSpec(8, 3, 1), resolution=16, num_classes=10, head=HeadSpec(32),
        stages=(StageSpec("mbconv", 1, 16, 1, 3, 4.0), StageSpec("mbconv", 1, 24, 2, 3, 4.0))).to_json())
    run_study(*build({**learning_study, "kind": "baseline", "study": "b", "base": {"name": str(skeleton)},
                      "search": {"trials": 2, "target": "1x", "max_flops": "10x", "prune": False}}))
    with pytest.raises(SearchError, match="no trial of study 'm' finished training"):
        run_study(*build({**tiny_study, "kind": "baseline", "study": "m", "base": {"name": str(skeleton)},
                          "search": {"trials": 1, "max_memory": "1K"}}))
    path = f"{run_dir}/scalelab.db"
    study = optuna.load_study(study_name="s", storage=open_storage(f"sqlite:///{path}"))
    study.add_trial(optuna.create_trial(state=TrialState.PRUNED, user_attrs={"reason": "over --max-flops"}))
    study.add_trial(optuna.create_trial(state=TrialState.FAIL))
    return path


def test_one_row_per_recorded_trial_with_the_agreed_columns(storage_path):
    table = results_table(storage_path)
    assert tuple(table.columns) == COLUMNS
    assert sorted(zip(table["study"], table["kind"], table["status"])) == [
        ("b", "baseline", "complete"), ("b", "baseline", "complete"), ("c", "compare", "complete"),
        ("m", "baseline", "over_cap"), ("s", "sweep", "complete"), ("s", "sweep", "complete")]
    assert list(complete(table)["study"]) == ["s", "s", "c", "b", "b"]  # trials without a record: no row
    sweep = table[table["study"] == "s"].set_index("dimension", drop=False)
    depth = sweep.loc["depth"]
    base = sweep[sweep["dimension"].isna()].iloc[0]
    assert (depth["depth_mult"], depth["width_mult"], depth["resolution_mult"]) == (4.0, 1.0, 1.0)
    assert pd.isna(depth["alpha"]) and pd.isna(depth["phi"]) and depth["multiple"] == 4.0
    assert depth["predicted_ratio"] == 4.0 and depth["measured_ratio"] == pytest.approx(depth["flops"] / base["flops"])
    assert (base["multiple"], base["predicted_ratio"], base["measured_ratio"]) == (1.0, 1.0, 1.0)
    assert depth["model"] == "baseline_convnet-w0.25-depth4x" and depth["resolution_px"] == 16
    assert depth["flops"] > base["flops"] and depth["status"] == "complete" and pd.isna(depth["reason"])
    assert depth["spec"]["stages"][0]["layers"] == 4 and depth["curve"][-1]["images_seen"] == LEARNING_TRAIN_IMAGES
    assert depth["val_acc"] == depth["curve"][-1]["val_acc"] and pd.isna(depth["test_acc"])
    assert depth["device"] == "cpu" and depth["dataset"] == "cifar10-mini" and depth["epochs"] > 0
    assert depth["seed"] == 0 and depth["threads"] >= 1 and depth["wall_s"] > 0
    compare = table[table["study"] == "c"].iloc[0]
    assert pd.isna(compare["dimension"]) and 0 <= compare["test_acc"] <= 1 and compare["params"] > 0
    assert compare["model"] == "baseline_convnet" and pd.isna(compare["multiple"])
    assert compare["latency_ms"] > 0 and pd.isna(depth["latency_ms"])  # comparisons time inference
    assert (complete(table)["images_per_s"] > 0).all()  # every trained trial records its training speed
    capped = table[table["study"] == "m"].iloc[0]
    assert "over --max-memory" in capped["reason"] and capped["curve"] == [] and capped["epochs"] == 0
    assert pd.isna(capped["val_acc"]) and pd.isna(capped["images_per_s"]) and not capped["best"]


def test_best_is_marked_once_per_study_by_the_kinds_definition(storage_path):
    table = results_table(storage_path)
    assert table["best"].dtype == bool
    assert table.groupby("study")["best"].sum().to_dict() == {"b": 1, "c": 0, "m": 0, "s": 1}
    trained = complete(table)
    at_chance = trained.groupby("study")["at_chance"].agg(lambda a: set(a.astype(bool))).to_dict()
    assert at_chance == {"b": {False}, "c": {True}, "s": {False}}  # c, all at chance, names no best network
    sweep = table[table["study"] == "s"]
    top = sweep[sweep["val_acc"] == sweep["val_acc"].max()].sort_values(["flops", "trial"]).iloc[0]
    assert sweep[sweep["best"]]["trial"].tolist() == [top["trial"]]  # most accurate, then fewer FLOPs
    search = table[table["study"] == "b"]
    target, w = search_rewards(storage_path)["b"]
    rewards = search["val_acc"] * (search["flops"] / target) ** w
    assert search[search["best"]]["trial"].tolist() == [search.loc[rewards.idxmax(), "trial"]]  # highest reward


def test_one_study_by_name_and_by_url(storage_path):
    assert list(results_table(f"sqlite:///{storage_path}", "c")["study"]) == ["c"]


def test_a_study_copied_under_another_name_is_reported_under_that_name(storage_path, tmp_path):
    copy = open_storage(f"sqlite:///{tmp_path / 'copy.db'}")
    optuna.copy_study(from_study_name="c", from_storage=open_storage(f"sqlite:///{storage_path}", create=False),
                      to_storage=copy, to_study_name="c-copy")
    optuna.copy_study(from_study_name="c-copy", from_storage=copy, to_storage=copy, to_study_name="c-again")
    table = results_table(copy)
    assert list(table["study"]) == ["c-copy", "c-again"]  # not both "c", which would merge their pages
    copy.engine.dispose()


def test_missing_study_or_storage_is_a_clear_error(storage_path, tmp_path):
    with pytest.raises(SearchError, match="no study 'x' in .* \\(studies there: s, c, b, m\\)"):
        results_table(storage_path, "x")
    with pytest.raises(SearchError, match="no study storage at"):
        results_table(str(tmp_path / "nowhere.db"))
    assert not (tmp_path / "nowhere.db").exists()


def test_numeric_columns_are_numeric_even_where_a_kind_leaves_them_empty(storage_path):
    table = results_table(storage_path)
    assert all(pd.api.types.is_numeric_dtype(table[c]) for c in NUMERIC)
    assert table[table["kind"] == "baseline"][["depth_mult", "multiple", "predicted_ratio"]].isna().all().all()
    assert table[table["study"] == "m"]["val_acc"].isna().all()


def test_report_site_from_the_recorded_studies(storage_path, tmp_path):
    rewards = search_rewards(storage_path)
    assert list(rewards) == ["b", "m"] and rewards["b"][1] == -0.07  # the baseline searches on FLOPs
    files = write_site(results_table(storage_path), tmp_path / "site", settings=ReportSettings(rewards=rewards))
    names = sorted(f.name for f in files)
    assert names == ["index.html", "plotly.min.js", "study-b.html", "study-c.html", "study-s.html"]  # m: none trained
    page = (tmp_path / "site" / "study-b.html").read_text()
    assert "Pareto" in page and "the search&#x27;s own target" in page
    assert "baseline_convnet-w0.25-depth4x" in (tmp_path / "site" / "study-s.html").read_text()


def test_every_trial_says_its_time_in_and_outside_training(storage_path):
    table = results_table(storage_path)
    done = complete(table)
    assert (done["train_s"] > 0).all() and (done["overhead_s"] > 0).all()
    assert (done["train_s"] <= done["wall_s"]).all()
    # the overhead holds the trial's own time outside training and the worker's time before it
    assert (done["train_s"] + done["overhead_s"] >= done["wall_s"] - 1e-6).all()
    assert done["overhead_fraction"].between(0, 1).all()
    assert done["overhead_fraction"].tolist() == pytest.approx(
        (done["overhead_s"] / (done["overhead_s"] + done["train_s"])).tolist())
    capped = table[table["status"] == "over_cap"].iloc[0]  # never trained: all of its time is overhead
    assert capped["train_s"] == 0 and capped["overhead_fraction"] == 1
