"""Networks still rising at the end of an annealed schedule: said as not measured, and the study file that
trains the leaders again at twice the budget (written, then run)."""

import dataclasses

import optuna
import pytest

from scalelab.arch.zoo import make_spec
from scalelab.search import Status, TrialRecord, build, run_study
from scalelab.search.budget_check import CHECK_FILE, write_budget_check
from scalelab.search.config import load_study_file
from scalelab.search.record import EpochRecord, Outcome, Point, Provenance, TrialCost, study_records
from scalelab.search.storage import open_storage, storage_url
from scalelab.search.summary import _budget_check, caveats, network_results

pytestmark = pytest.mark.usefixtures("one_thread")


def _records(final, gain):
    """Complete grid records, one per network: its last-epoch accuracy and the gain of that epoch."""
    out = []
    for i, acc in enumerate(final):
        spec = dataclasses.replace(make_spec("baseline_convnet", num_classes=10, width=0.25 + i / 8, resolution=16),
                                   name=f"net{i}")
        curve = (EpochRecord(1.0, 64, 2.0, 0.2, acc - gain, 1.0), EpochRecord(2.0, 128, 1.9, 0.3, acc, 2.0))
        out.append(TrialRecord(study="s", number=i, kind="grid", dataset="cifar10-mini", spec=spec,
                               cost=TrialCost(1000, 10_000 + i), status=Status.COMPLETE,
                               provenance=Provenance("0", None, None, "cpu", 1, 0),
                               point=Point(alpha=1.0, beta=1.0 + i / 10, gamma=1.0), curve=curve,
                               outcome=Outcome(val_acc=acc, val_images=100, epochs=2.0)))
    return out


def test_a_sweeps_check_trains_its_best_compound_and_best_single_network():
    """A sweep's answer is compound against single dimensions: its check keeps the best of each side, even
    where two single-dimension networks lead; without compound networks, the two most accurate."""
    from scalelab.search.kinds import get_kind

    records = [dataclasses.replace(r, kind="sweep", point=Point(dimension=dim, multiple=2.0)) for r, dim in
               zip(_records([0.50, 0.60, 0.58, 0.55, 0.40], gain=0.05), (None, "width", "resolution", "compound", "compound"))]
    sweep = get_kind("sweep")
    assert [n.first.spec.name for n in sweep.budget_check_networks(network_results(records))] == ["net1", "net3"]
    assert [n.first.spec.name for n in sweep.budget_check_networks(network_results(records[:3]))] == ["net1", "net2"]


def test_a_rising_network_under_an_annealed_schedule_is_not_called_unconverged(tiny_grid):
    records = _records([0.40, 0.45], gain=0.05)
    annealed = caveats(records, build({**tiny_grid, "train": {**tiny_grid["train"], "schedule": "cosine"}})[0])
    assert any(line.startswith("Convergence not measured: 2 of 2 networks") and "cosine schedule" in line
               for line in annealed)
    constant = caveats(records, build({**tiny_grid, "train": {**tiny_grid["train"], "schedule": "constant"}})[0])
    assert any(line.startswith("Not converged: 2 of 2 networks") for line in constant)
    assert not any("Convergence" in line or "converged" in line
                   for line in caveats(_records([0.40, 0.45], gain=0.0), build(tiny_grid)[0]))


def test_only_a_study_with_rising_networks_writes_a_check(tiny_grid, tmp_path):
    config = build(tiny_grid)[0]
    assert _budget_check("grid-s", network_results(_records([0.40, 0.45, 0.30], gain=0.0)), config, tmp_path) is None
    line = _budget_check("grid-s", network_results(_records([0.40, 0.45, 0.30], gain=0.05)), config, tmp_path)
    assert line.startswith(f"Budget check: `scalelab run {tmp_path / CHECK_FILE}` trains net1 and net0 again")
    assert load_study_file(tmp_path / CHECK_FILE)["search"]["models"] == [
        str(tmp_path / "budget-check" / "net1.json"), str(tmp_path / "budget-check" / "net0.json")]


def test_the_check_trains_the_leaders_at_twice_the_budget_and_sets_them_against_the_study(tiny_study, tmp_path):
    nets = []
    for width in (0.25, 0.5, 0.375):
        path = tmp_path / f"w{width}.json"
        spec = make_spec("baseline_convnet", num_classes=10, width=width, resolution=16)
        path.write_text(dataclasses.replace(spec, name=f"w{width}").to_json())
        nets.append(str(path))
    settings = {**tiny_study, "kind": "compare", "seeds": 2, "search": {"models": nets},
                "train": {**tiny_study["train"], "epochs": 3, "seed": 7}}
    config, options = build(settings, {"study": "cmp"})
    run_study(config, options)
    storage = open_storage(storage_url(None, options.run_dir), create=False)
    first = study_records(optuna.load_study(study_name="cmp", storage=storage))
    leaders = sorted(network_results(first), key=lambda n: -n.mean)[:2]
    path = write_budget_check("cmp", config, leaders, tmp_path / "out")
    check, check_options = build(load_study_file(path), {"run_dir": options.run_dir, "device": "cpu",
                                                         "progress": False})
    assert check.kind == "compare" and check.search.budget_check_of == "cmp"
    assert (check.train.epochs, check.train.max_images) == (6, 128)  # both budgets doubled
    assert dataclasses.replace(check.train, epochs=3, max_images=64) == config.train  # recipe and seed kept
    assert (check.seeds, check.val_fraction, check.dataset) == (2, config.val_fraction, config.dataset)
    summary = run_study(check, check_options)
    again = study_records(optuna.load_study(study_name="cmp-x2-budget", storage=storage))
    assert sorted((r.spec.name, r.provenance.seed, r.curve[-1].images_seen) for r in again) == sorted(
        (n.first.spec.name, seed, 128) for n in leaders for seed in (7, 8))
    then = {(r.spec.name, r.provenance.seed): r.outcome.val_acc for r in first if r.finished}
    for name, gain in summary.data["budget_check"]["networks"].items():
        paired = [r.outcome.val_acc - then[name, r.provenance.seed] for r in again if r.spec.name == name]
        assert gain["gain"] == pytest.approx(sum(paired) / 2) and gain["seeds"] == 2
        lo, hi = gain["gain_interval"]
        assert lo < gain["gain"] < hi or lo == hi  # tiny networks may score the same at both budgets
    assert any(line.startswith("Against study cmp, seed by seed") for line in summary.lines)
