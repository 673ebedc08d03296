"""The search, scaling and results commands, end to end through `scalelab.cli.main`, and their errors."""

import json
import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_cli import run

from scalelab.arch.spec import HeadSpec, NetworkSpec, StageSpec, StemSpec
from scalelab.search import Status, read_record
from scalelab.search.storage import open_storage
from scalelab.search.study import point_of

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.xdist_group("search_cli")]  # module fixtures built once, in one process
STUDIES = Path(__file__).parent.parent / "studies"


@pytest.fixture
def tiny(tmp_path):
    """Flags that make a study tiny, with its storage under tmp_path."""
    return ["--device", "cpu", "--no-progress", "--val-fraction", "0.04", "--epochs", "1", "--max-images", "64",
            "--batch-size", "32", "--run-dir", str(tmp_path)]


@pytest.fixture
def learning(tmp_path):
    """Flags for a study whose networks learn (one full epoch, 250 validation images: see the
    learning_settings fixture), for claims that need a best network."""
    return ["--device", "cpu", "--no-progress", "--val-fraction", "0.1", "--epochs", "1", "--batch-size", "32",
            "--run-dir", str(tmp_path)]


@pytest.fixture
def tiny_net(tmp_path):
    spec = NetworkSpec(name="tiny_mb", stem=StemSpec(8, 3, 1), resolution=16, num_classes=10, head=HeadSpec(32),
                       stages=(StageSpec("mbconv", 1, 16, 1, 3, 4.0), StageSpec("mbconv", 1, 24, 2, 3, 4.0)))
    path = tmp_path / "tiny_mb.json"
    path.write_text(spec.to_json())
    return str(path)


def _trials(tmp_path, study):
    storage = open_storage(f"sqlite:///{tmp_path / 'scalelab.db'}", create=False)
    return optuna.load_study(study_name=study, storage=storage).get_trials()


def _records(tmp_path, study):
    """The trial records of the study, each checked to be complete (every study here trains to the end)."""
    records = [read_record(t) for t in _trials(tmp_path, study)]
    assert all(r is not None and r.status is Status.COMPLETE for r in records)
    return records


def test_search_baseline(capsys, monkeypatch, tmp_path, learning, tiny_net):
    code, out, err = run(capsys, monkeypatch, "search", "baseline", *learning, "--base", tiny_net, "--trials", "2",
                         "--target-flops", "1x", "--w", "-0.1", "--study", "b", "--out", str(tmp_path / "best.json"))
    assert code == 0, err
    assert "Best: trial" in out and "MBConv" in out
    assert "multiply-adds" in out and f"Saved {tmp_path / 'best.json'}" in out
    best = NetworkSpec.from_json((tmp_path / "best.json").read_text())
    assert best.stem == StemSpec(8, 3, 1) and len(best.stages) == 2
    assert [t.state for t in _trials(tmp_path, "b")] == [TrialState.COMPLETE] * 2
    assert [(r.kind, r.at_chance) for r in _records(tmp_path, "b")] == [("baseline", False)] * 2


def test_grid_prints_and_saves_its_winner(capsys, monkeypatch, tmp_path, learning):
    # `--workers 2` end to end (its summary and storage) is tests/test_faults.py's killed-worker test
    code, out, err = run(capsys, monkeypatch, "grid", *learning, "--base", "baseline_convnet", "--base-width", "0.25",
                         "--base-resolution", "16", "--target-flops", "2x", "--alpha", "1:1", "--beta", "1:1.5",
                         "--gamma", "1:1.5", "--measured-tolerance", "0.15", "--study", "g")
    assert code == 0, err
    assert "predicted x" in out and "Best: alpha=1" in out and "1 off-target" in out
    assert "Not settled: too few seeds to measure the seed-to-seed spread" in out  # one seed each
    saved = json.loads((tmp_path / "g" / "coefficients.json").read_text())
    assert saved["alpha"] == 1.0 and saved["measured_ratio"] == pytest.approx(2, rel=0.15)
    assert saved["separation"]["separated"] is False and saved["separation"]["comparisons"] == 3
    trials = _trials(tmp_path, "g")
    assert sorted(point_of(t) for t in trials) == [0, 1, 2, 3]
    assert all(set(t.params) == {"alpha", "beta", "gamma"} and t.params["alpha"] == 1.0 for t in trials)
    assert len({tuple(t.params.values()) for t in trials}) == 4 and len(_records(tmp_path, "g")) == 4


def test_scale_family_from_saved_coefficients(capsys, monkeypatch, tmp_path, tiny):
    (tmp_path / "c.json").write_text(json.dumps({"alpha": 1.0, "beta": 1.2, "gamma": 1.2}))
    code, out, err = run(capsys, monkeypatch, "scale", *tiny, "--base", "baseline_convnet", "--base-width",
                         "0.25", "--base-resolution", "16", "--coefficients", str(tmp_path / "c.json"),
                         "--target-flops", "2x,4x", "--study", "f")
    assert code == 0, err
    records = sorted(_records(tmp_path, "f"), key=lambda r: r.point.phi)
    growth = 1.2**2 * 1.2**2  # alpha beta^2 gamma^2 of the file
    phis = [r.point.phi for r in records]
    assert phis == pytest.approx([math.log(2) / math.log(growth), math.log(4) / math.log(growth)])
    assert records[1].spec.resolution == round(16 * 1.2 ** phis[1]) and records[0].kind == "family"
    assert (records[0].point.alpha, records[0].point.beta, records[0].point.gamma) == (1.0, 1.2, 1.2)
    assert sorted(t.params["phi"] for t in _trials(tmp_path, "f")) == pytest.approx(phis)
    assert "baseline_convnet-w0.25-phi" in out and "val acc" in out


def test_sweep(capsys, monkeypatch, tmp_path, tiny):
    code, out, err = run(capsys, monkeypatch, "sweep", *tiny, "--base", "baseline_convnet", "--base-width",
                         "0.25", "--base-resolution", "16", "--multiples", "1,4", "--dimensions", "width",
                         "--dimensions", "depth", "--study", "s")
    assert code == 0, err
    dims = sorted(str(r.point.dimension) for r in _records(tmp_path, "s"))
    assert dims == ["None", "depth", "width"] and "baseline_convnet-w0.25-depth4x" in out
    assert sorted((t.params["dimension"], t.params["multiple"]) for t in _trials(tmp_path, "s")) == [
        ("base", 1.0), ("depth", 4.0), ("width", 4.0)]


def test_more_seeds_on_resume_add_replicates_and_keep_the_finished_ones(capsys, monkeypatch, tmp_path, tiny):
    import numpy as np
    from scipy import stats

    sweep = ["sweep", *tiny, "--base", "baseline_convnet", "--base-width", "0.25", "--base-resolution", "16",
             "--multiples", "1,2", "--dimensions", "width", "--seed", "5", "--study", "s"]
    code, out, err = run(capsys, monkeypatch, *sweep, "--seeds", "1")
    assert code == 0, err
    first = {t.number: (t.params, t.value, t.datetime_complete, read_record(t)) for t in _trials(tmp_path, "s")}
    assert len(first) == 2 and {r.replicate for *_, r in first.values()} == {0} and "seeds)" not in out
    code, out, err = run(capsys, monkeypatch, *sweep, "--seeds", "3")
    assert code == 0, err
    trials = _trials(tmp_path, "s")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    kept = {t.number: (t.params, t.value, t.datetime_complete, read_record(t)) for t in trials if t.number in first}
    assert kept == first  # the finished replicates are neither re-run nor rewritten
    records = {(point_of(t), read_record(t).replicate): (t, read_record(t)) for t in trials}
    assert sorted(records) == [(p, r) for p in (0, 1) for r in (0, 1, 2)]  # each network, each seed, once
    for (point, replicate), (t, r) in records.items():
        assert r.provenance.seed == 5 + replicate and r.status is Status.COMPLETE
        assert t.params == records[point, 0][0].params and r.spec == records[point, 0][1].spec  # the same network
    accs = {p: np.array([records[p, k][1].outcome.val_acc for k in range(3)]) for p in (0, 1)}
    pooled = np.sqrt((accs[0].var(ddof=1) + accs[1].var(ddof=1)) / 2)  # the seed spread of both networks, 4 df
    for point in (0, 1):  # the summary: the mean over the 3 seeds with its 95% t interval
        first_trial, r = records[point, 0]
        acc = accs[point]
        half = stats.t.ppf(0.975, 4) * pooled / np.sqrt(3)
        lo, hi = max(0.0, acc.mean() - half), min(1.0, acc.mean() + half)
        line = next(line for line in out.splitlines() if f" {r.spec.name} " in line)
        assert line.split()[0] == str(first_trial.number)
        assert line.endswith(f"{acc.mean():.2%} ({100 * lo:.1f} to {100 * hi:.1f}%, 3 seeds)"), line


def test_compare_then_results_and_worker(capsys, monkeypatch, tmp_path, tiny, tiny_net):
    code, out, err = run(capsys, monkeypatch, "compare", "baseline_convnet", tiny_net, *tiny, "--evaluate-test",
                         "--study", "c")
    assert code == 0, err
    assert "baseline_convnet" in out and "tiny_mb" in out
    header = next(line for line in out.splitlines() if line.startswith("trial"))
    assert header.split()[-5:] == ["epochs", "test", "acc", "val", "acc"] and "latency (ms)" in header
    rows = [line.split() for line in out.splitlines() if "tiny_mb" in line or line.strip().startswith(("0 ", "1 "))]
    assert rows and all(row[-1].endswith("%") and row[-2].endswith("%") for row in rows)  # test and val accuracy
    # 64 training images: both networks stay at chance, so the comparison says so and names neither best
    assert "Warning: all 2 networks trained are within noise of chance" in out and "--max-images (now 64)" in out
    db = str(tmp_path / "scalelab.db")
    code, out, err = run(capsys, monkeypatch, "worker", "--study", "c", "--storage", db, "--no-progress")
    assert code == 0 and "ran 0 trial(s)" in out  # nothing left: finished trials never re-run
    csv = tmp_path / "c.csv"
    code, out, err = run(capsys, monkeypatch, "results", "--study", "c", "--run-dir", str(tmp_path),
                         "--csv", str(csv))  # the storage found through --run-dir, as `run` made it
    assert code == 0, err
    assert "val_acc" in out and "curve" not in out and "tiny_mb" in out
    import pandas as pd
    table = pd.read_csv(csv)
    assert len(table) == 2 and set(table["kind"]) == {"compare"} and table["test_acc"].notna().all()
    assert set(table["status"]) == {"complete"} and table["best"].sum() == 0 and table["at_chance"].all()
    assert set(table["model"]) == {"baseline_convnet", "tiny_mb"} and (table["latency_ms"] > 0).all()
    assert json.loads(table["spec"][0])["name"] in ("baseline_convnet", "tiny_mb")
    assert sorted(t.params["model"] for t in _trials(tmp_path, "c")) == sorted(["baseline_convnet", tiny_net])


def test_run_a_study_file(capsys, monkeypatch, tmp_path):
    code, out, err = run(capsys, monkeypatch, "run", str(STUDIES / "smoke_grid.toml"), "--run-dir", str(tmp_path),
                         "--no-progress")
    assert code == 0, err
    assert "Grid for 2x the base network" in out and "4 trained to the end" in out  # the file's grid, all trained
    # its budget (64 training images a trial) leaves every network at chance: no best point, no coefficients
    assert "Warning: all 4 networks trained are within noise of chance" in out and "--max-images (now 64)" in out
    assert "Best: alpha=" not in out and not (tmp_path / "smoke-grid" / "coefficients.json").exists()


@pytest.fixture(scope="module")
def existing(tmp_path_factory, tiny_settings):
    """(folder, snapshot): a finished one-network grid study 'g' in <folder>/scalelab.db, and a function
    returning everything stored there."""
    from scalelab.search import build, run_study

    folder = tmp_path_factory.mktemp("existing")
    run_study(*build({**tiny_settings, "kind": "grid", "run_dir": str(folder), "study": "g",
                      "search": {"alpha": [1, 1], "beta": [1.4, 1.4], "gamma": [1, 1]}}))
    storage = open_storage(f"sqlite:///{folder / 'scalelab.db'}", create=False)

    def snapshot():
        return [(s.study_name, s.user_attrs, [(t.number, t.state, t.value) for t in
                                              optuna.load_study(study_name=s.study_name, storage=storage).trials])
                for s in storage.get_all_studies()]

    return folder, snapshot


GRID = ["--base", "baseline_convnet", "--base-width", "0.25", "--base-resolution", "16", "--device", "cpu",
        "--run-dir", ".", "--study", "g"]


@pytest.mark.parametrize("args, message", [
    (["grid", "--target-flops", "2y"], "cannot read --target-flops '2y'"),  # the flag typed, not its settings key
    (["grid", "--target-flops", "2y"], "'2y'; write a multiple of the base network such as 2x"),
    (["grid", "--target-flops", "50x", "--study", "new"], "no grid point has alpha*beta^2*gamma^2 within 5% of 50"),
    (["grid", "--base", "efficientnet_b9", "--study", "new"], "unknown model 'efficientnet_b9'"),
    (["grid", "--epochs", "2"], "study 'g' in sqlite:///scalelab.db was made with other settings"),
    (["grid", "--storage", "postgresql://nobody:secret@127.0.0.1:1/none"],
     "cannot open study storage postgresql://nobody:***@127.0.0.1:1/none"),
    (["scale", "--alpha", "0.5", "--study", "new"], "alpha must be a number >= 1"),
    (["search", "baseline", "--objective", "best"], "unknown objective 'best'"),
    (["run", "studies/none.toml"], "study file studies/none.toml does not exist"),
    (["worker", "--study", "missing", "--storage", "scalelab.db"], "no study 'missing' in sqlite:///scalelab.db"),
    (["results", "--study", "g", "--storage", "nowhere.db"], "no study storage at nowhere.db"),
])
def test_bad_input_is_one_line_and_leaves_studies_untouched(capsys, monkeypatch, existing, args, message):
    folder, snapshot = existing
    before = snapshot()
    monkeypatch.chdir(folder)
    shared = GRID if args[0] in ("grid", "scale") else []
    code, out, err = run(capsys, monkeypatch, args[0], *shared, *args[1:])  # the later flag wins
    lines = err.strip().splitlines()
    assert code != 0 and out == ""
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert snapshot() == before
