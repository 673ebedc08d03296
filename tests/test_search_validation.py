"""Typed validation of study files and flags: a wrong type or unknown key is one line naming the file,
the table and key, what was expected and what was given; nothing is written to the storage."""

import hashlib

import pytest

from scalelab.cli import main

GOOD = """kind = "grid"
study = "g"
dataset = "cifar10-mini"
val_fraction = 0.04
device = "cpu"
progress = false

[base]
name = "baseline_convnet"
width = 0.25
resolution_px = 16

[train]
epochs = 1
max_images = 32
batch_size = 16

[search]
target = "2x"
alpha = [1.0, 1.0]
beta = [1.0, 1.5]
gamma = [1.0, 1.5]
measured_tolerance = 0.15
"""

# (replace this line of GOOD, with this, expected words in the message)
CASES = [
    ("epochs = 1", "epochs = \"1\"", "[train] epochs: expected a number, got '1' (str)"),
    ("epochs = 1", "epochs = inf", "[train] epochs: expected a finite number"),
    ("epochs = 1", "epochs = nan", "[train] epochs: expected a finite number"),
    ("epochs = 1", "lr = \"1e-3\"", "[train] lr: expected a number, got '1e-3' (str)"),
    ("max_images = 32", "max_images = 2.5", "[train] max_images: expected a whole number, got 2.5 (float)"),
    ("batch_size = 16", "batch_size = true", "[train] batch_size: expected a whole number, got True (bool)"),
    ("batch_size = 16", "batch_sise = 16", "[train]: unknown setting(s) batch_sise"),
    ("measured_tolerance = 0.15", "prune = \"no\"", "[search] prune: expected true or false, got 'no' (str)"),
    ("measured_tolerance = 0.15", "step = \"0.1\"", "[search] step: expected a number"),
    ("alpha = [1.0, 1.0]", "alpha = [1.0]", "[search] alpha: expected a list of 2 values"),
    ("alpha = [1.0, 1.0]", "alpha = 1.0", "[search] alpha: expected a list, got 1.0 (float)"),
    ("alpha = [1.0, 1.0]", "alpha = [1.0, \"x\"]", "[search] alpha[1]: expected a number"),
    ("target = \"2x\"", "target = \"2y\"", "cannot read"),
    ("target = \"2x\"", "target = true", "[search] target: expected a target"),
    ("target = \"2x\"", "targte = \"2x\"", "[search]: unknown setting(s) targte"),
    ("width = 0.25", "width = \"half\"", "[base] width: expected a number, got 'half' (str)"),
    ("resolution_px = 16", "resolution = 16", "[base]: unknown setting(s) resolution"),
    ("val_fraction = 0.04", "val_fraction = \"0.04\"", "val_fraction: expected a number"),
    ("val_fraction = 0.04", "val_fractoin = 0.04", "unknown setting(s) val_fractoin"),
    ("progress = false", "progress = 0", "progress: expected true or false, got 0 (int)"),
    ("progress = false", "workers = 1.5", "workers: expected a whole number, got 1.5 (float)"),
    ("kind = \"grid\"", "kind = \"gird\"", "study kind must be one of"),
    ("epochs = 1", "epochs = [1]", "[train] epochs: expected a number, got [1] (list)"),
]


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("line, replacement, message", CASES)
def test_bad_study_file_is_one_line_and_writes_nothing(line, replacement, message, tmp_path, monkeypatch, capsys):
    assert line in GOOD
    path = tmp_path / "study.toml"
    path.write_text(GOOD.replace(line, replacement, 1))
    run_dir = tmp_path / "runs"
    run_dir.mkdir()
    (run_dir / "keep.txt").write_text("an existing file")
    before = _digest(run_dir)
    monkeypatch.setattr("sys.argv", ["scalelab", "run", str(path), "--run-dir", str(run_dir)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code != 0
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("error: ") and message in err
    if "[" in message or "setting" in message:
        assert str(path) in err  # names the file
    assert _digest(run_dir) == before  # no storage created, nothing changed


@pytest.mark.parametrize("args, message", [
    (["grid", "--alpha", "x:2"], "--alpha must be LOW:HIGH"),
    (["grid", "--target-flops", "nanx"], "must be positive"),
    (["grid", "--epochs", "inf"], "--epochs: expected a finite number"),
    (["grid", "--val-fraction", "nan"], "--val-fraction: expected a finite number"),
    (["sweep", "--multiples", "1,two"], "cannot read the list"),
    (["sweep", "--dimensions", "height"], "unknown dimension 'height'"),
    (["scale", "--alpha", "0.5"], "alpha must be a number >= 1"),
])
def test_bad_flags_are_one_line_naming_the_flag(args, message, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "runs"
    monkeypatch.setattr("sys.argv", ["scalelab", *args, "--run-dir", str(run_dir), "--device", "cpu"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code != 0 and len(err.splitlines()) == 1 and message in err, err
    assert not run_dir.exists()
