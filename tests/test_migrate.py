"""Storages written by scalelab 0.1 (string-keyed trial attributes): refused with a hint until converted
once by `scalelab migrate`, then read as trial records by `results` and `report`."""

import shutil
from pathlib import Path

import pytest

from scalelab.analysis.results import results_table
from scalelab.cli import main
from scalelab.errors import SearchError
from scalelab.search.migrate import migrate_storage
from scalelab.search.storage import storage_url

OLD = Path(__file__).parent / "fixtures" / "scalelab-0.1.sqlite"  # the repository's seed runs, before records


@pytest.fixture
def old(tmp_path):
    path = tmp_path / "old.sqlite"
    shutil.copy(OLD, path)
    return path


def test_old_storage_is_refused_with_the_command_that_converts_it(old):
    with pytest.raises(SearchError, match="scalelab migrate"):
        results_table(str(old))


def test_migrate_converts_once_and_keeps_every_trial(old, tmp_path, monkeypatch, capsys):
    converted = migrate_storage(storage_url(str(old)))
    assert sorted(converted) == ["cifar10-grid-2x-cpu", "cifar10-sweeps-cpu", "seed-3class-sweeps-cpu",
                                 "seed-table2-cifar10-cpu", "seed-v1-vs-v2-cifar10-cpu"]
    assert migrate_storage(storage_url(str(old))) == []  # already converted
    table = results_table(str(old))
    assert len(table) == 34 and set(table["status"]) == {"complete"}
    # the split's size follows from the settings (10% of CIFAR-10's 5,000 images per class), as every
    # accuracy confirms (a whole number of images): the seed runs are marked well above chance
    sizes = table.groupby("study")["val_images"].unique().map(list).to_dict()
    assert sizes == {"cifar10-grid-2x-cpu": [5000], "cifar10-sweeps-cpu": [5000], "seed-3class-sweeps-cpu": [1500],
                     "seed-table2-cifar10-cpu": [5000], "seed-v1-vs-v2-cifar10-cpu": [5000]}
    assert ((table["val_acc"] * table["val_images"]).sub((table["val_acc"] * table["val_images"]).round()).abs()
            < 1e-6).all()
    assert not table["at_chance"].astype(bool).any() and table["at_chance"].notna().all()
    grid = table[table["study"] == "cifar10-grid-2x-cpu"]
    assert len(grid) == 5 and grid["measured_ratio"].notna().all() and (grid["multiple"] == 2).all()
    best = grid[grid["best"]]
    assert list(best[["alpha", "beta", "gamma"]].iloc[0]) == [1.0, 1.1, 1.3]  # the README's winner
    sweep = table[table["study"] == "seed-3class-sweeps-cpu"]
    assert sweep["dimension"].isna().sum() == 1 and sweep["curve"].map(len).min() >= 1
    monkeypatch.setattr("sys.argv", ["scalelab", "report", "--storage", str(old), "--out", str(tmp_path / "r"),
                                     "--bootstrap", "20"])
    main()
    assert len(list((tmp_path / "r").glob("study-*.html"))) == 5


def test_migrated_split_size_only_where_the_settings_and_every_accuracy_agree():
    from scalelab.search.migrate import _val_images

    assert _val_images({"dataset": "cifar10", "val_fraction": 0.1}, [0.4538, None]) == 5000
    assert _val_images({"dataset": "cifar10-mini", "val_fraction": 0.04}, [0.1, 0.23]) == 100  # bundled: counted
    assert _val_images({"dataset": "cifar10", "val_fraction": 0.1}, [0.4538, 0.12345]) is None  # not n/5000
    assert _val_images({"dataset": "imagefolder:photos", "val_fraction": 0.1}, [0.5]) is None  # unknown size
