"""A table of bad inputs: each one is a single `error: ...` line on stderr, a non-zero exit, no traceback, and
leaves the cache, the storages and every other input file byte-identical (issue 15).

The commands run in-process (``scalelab.cli.main``), so the whole table takes seconds. To add a case, append
a :class:`Case` to ``CASES`` (or to a list of your own added to it): ``args`` is the command line as a shell
would split it, with ``{w}`` standing for the folder of prepared inputs (see :func:`world`), and ``error`` a
regular expression the one error line must contain. ``files`` writes extra inputs (a study file, say) into
that case's own folder ``{case}`` first; ``env`` sets environment variables for the case.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import pytest
from PIL import Image

from scalelab.arch.zoo import get_preset
from scalelab.cli import main

pytestmark = pytest.mark.xdist_group("bad_inputs")  # its module-scoped fixtures are built once, in one process

NAN_SPEC_DROPOUT = '"dropout": NaN'


@dataclass(frozen=True)
class Case:
    args: str
    error: str
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in self.env.items())
        text = f"{env} {self.args}" if env else self.args
        return re.sub(r"[^A-Za-z0-9_.:@=+-]+", " ", text.replace("{w}/", "")).strip()[:90]


PETS = "--dataset imagefolder:{w}/data/pets"

TRAIN = [
    # non-finite and meaningless numbers, refused before any data is loaded
    Case("train baseline_convnet --lr nan", r"lr must be a finite number, got nan"),
    Case("train baseline_convnet --lr -1", r"lr must be positive, got -1.0"),
    Case("train baseline_convnet --lr 0", r"lr must be positive"),
    Case("train baseline_convnet --lr inf", r"lr must be a finite number"),
    Case("train baseline_convnet --seed -1", r"seed must be an integer from 0"),
    Case("train baseline_convnet --seed 99999999999999999999", r"seed must be an integer from 0"),
    Case("train baseline_convnet --epochs inf", r"no finite training budget"),
    Case("train baseline_convnet --epochs 0", r"budget epochs must be positive"),
    Case("train baseline_convnet --epochs nan", r"budget epochs must be positive, got nan"),
    Case("train baseline_convnet --epochs -2", r"budget epochs must be positive"),
    Case("train baseline_convnet --max-seconds nan", r"budget max_seconds must be positive, got nan"),
    Case("train baseline_convnet --max-seconds 0", r"budget max_seconds must be positive"),
    Case("train baseline_convnet --epochs inf --max-seconds inf", r"max_seconds must be a finite number"),
    Case("train baseline_convnet --max-images 0", r"budget max_images must be positive"),
    Case("train baseline_convnet --weight-decay -1", r"weight_decay must be >= 0"),
    Case("train baseline_convnet --weight-decay nan", r"weight_decay must be a finite number"),
    Case("train baseline_convnet --warmup 1", r"warmup must be in \[0, 1\)"),
    Case("train baseline_convnet --warmup -0.1", r"warmup must be in"),
    Case("train baseline_convnet --label-smoothing nan", r"label_smoothing must be a finite number"),
    Case("train baseline_convnet --label-smoothing 1", r"label_smoothing must be in"),
    Case("train baseline_convnet --dropout 1.5", r"dropout must be in \[0, 1\)"),
    Case("train baseline_convnet --drop-path -0.1", r"drop_path must be in"),
    Case("train baseline_convnet --optimizer rmsprop", r"unknown optimizer 'rmsprop'"),
    Case("train baseline_convnet --augment mixup", r"unknown augmentation 'mixup'"),
    Case("train baseline_convnet --batch-size 0", r"Invalid value for '--batch-size'"),
    Case("train baseline_convnet --resolution 0", r"Invalid value for '--resolution'"),
    Case("train baseline_convnet --lr abc", r"Invalid value for '--lr'"),
    Case("train baseline_convnet --epochs", r"Option '--epochs' requires an argument"),
    Case("train baseline_convnet --no-such-flag", r"No such option: --no-such-flag"),
    Case("train", r"Missing argument 'model'"),
    # output files checked before any work
    Case("train baseline_convnet --out {w}/missing/result.json", r"cannot write --out .*folder .* does not exist"),
    Case("train baseline_convnet --out {w}/data", r"cannot write --out .*: it is a folder"),
    Case("train baseline_convnet --out {w}/afile/result.json", r"cannot write --out .*afile' is a file, not a folder"),
    # the validation split
    Case(f"train baseline_convnet {PETS} --val-fraction 0", r"val_fraction must be in \(0, 1\), got 0.0"),
    Case(f"train baseline_convnet {PETS} --val-fraction 1", r"val_fraction must be in \(0, 1\)"),
    Case(f"train baseline_convnet {PETS} --val-fraction nan", r"val_fraction must be in \(0, 1\), got nan"),
    Case(f"train baseline_convnet {PETS} --val-fraction 0.05",
         r"val_fraction 0.05 gives class 'cat' no validation image \(6 training images\); use at least 0.09"),
    Case(f"train baseline_convnet {PETS} --val-fraction 0.95", r"leaves no training image of class 'cat'"),
    Case(f"train baseline_convnet {PETS} --train-fraction 0", r"train_fraction must be in \(0, 1\], got 0.0"),
    Case(f"train baseline_convnet {PETS} --train-fraction 0.01",
         r"train_fraction 0.01 leaves class 'cat' no training image \(5 after the validation split\)"),
    # recipe techniques
    Case(f"train baseline_convnet {PETS} --tta-shift 1", r"tta_shift averages shifted views .* set tta too"),
    Case(f"train baseline_convnet {PETS} --tta --tta-shift 5", r"tta_shift must be from 0 to 4 pixels, got 5"),
    Case(f"train baseline_convnet {PETS} --recipe frontier --tta-shift -1", r"tta_shift must be from 0 to 4"),
    # devices, data and models
    Case(f"train baseline_convnet {PETS} --device tpu", r"unknown device 'tpu'"),
    Case("train baseline_convnet --dataset nosuch", r"unknown dataset 'nosuch'"),
    Case("train baseline_convnet --dataset imagefolder:{w}/missing", r"is not an image folder: no train/ inside"),
    Case("train baseline_convnet --dataset imagefolder:", r"names no folder"),
    Case(f"train nosuch_model {PETS}", r"unknown model 'nosuch_model'"),
    Case(f"train efficientnet_b9 {PETS}", r"unknown model 'efficientnet_b9'; did you mean"),
    Case(f"train {{w}}/specs/missing.json {PETS}", r"spec file .*missing.json' does not exist"),
    Case(f"train {{w}}/specs/folder.json {PETS}", r"spec file .*folder.json' is a folder"),
    Case(f"train {{w}}/specs/notjson.json {PETS}", r"notjson.json': network spec is not valid JSON"),
    Case(f"train {{w}}/specs/binary.json {PETS}", r"binary.json' is not text"),
    Case(f"train {{w}}/specs/str_layers.json {PETS}", r"stage 1 layers must be an integer, got 'two' \(str\)"),
    Case(f"train {{w}}/specs/float_layers.json {PETS}", r"stage 1 layers must be an integer, got 2.5"),
    Case(f"train {{w}}/specs/nan_dropout.json {PETS}", r"head.dropout must be a finite number, got nan"),
    Case(f"train {{w}}/specs/deep.json {PETS}", r"is too large for this machine: .* parameters, about .* GiB for "
                                                r"training at batch 128"),
    Case(f"train {{w}}/specs/wide.json {PETS}", r"is too large for this machine"),
    Case(f"train baseline_convnet {PETS} --batch-size 100000000", r"too large for this machine: .* at batch 100000000"),
    Case(f"train baseline_convnet@100000 {PETS}", r"too large for this machine"),
]

COST = [
    Case("cost baseline_convnet --width 0", r"width multiplier must be a positive number"),
    Case("cost baseline_convnet --width nan", r"width multiplier must be a positive number, got nan"),
    Case("cost baseline_convnet --depth inf", r"depth multiplier must be a positive number, got inf"),
    Case("cost baseline_convnet --depth -1", r"depth multiplier must be a positive number"),
    Case("cost baseline_convnet --phi nan", r"phi must be a finite number"),
    Case("cost baseline_convnet --phi 10000", r"--phi 10000.0 scales the network beyond any size"),
    Case("cost baseline_convnet --phi 1 --alpha -1", r"alpha must be a positive number"),
    Case("cost baseline_convnet --alpha 1.2", r"--alpha/--beta/--gamma need --phi"),
    Case("cost baseline_convnet --phi 1 --width 2", r"give either --phi .* or --depth/--width"),
    Case("cost baseline_convnet --phi 60", r"too large for this machine"),
    Case("cost baseline_convnet --resolution 100000", r"too large for this machine: .* for building it"),
    Case("cost baseline_convnet --width 1000000", r"too large for this machine"),
    Case("cost baseline_convnet --latency --batch-size 100000000",
         r"too large for this machine: .* at batch 100000000"),
    Case("cost baseline_convnet --latency --device tpu", r"unknown device 'tpu'"),
    Case("cost baseline_convnet --save {w}/missing/spec.json", r"cannot write --save .*does not exist"),
    Case("cost baseline_convnet --save {w}/specs", r"cannot write --save .*: it is a folder"),
    Case("cost baseline_convnet --classes 1", r"Invalid value for '--classes'"),
    Case("cost baseline_convnet@abc", r"the part after '@' must be an input size in pixels"),
    Case("cost baseline_convnet@4", r"the part after '@' must be an input size"),
    Case("cost resnet18@2", r"the part after '@' must be an input size"),
    Case("cost {w}/specs/missing_stem.json", r"not a valid network spec \(missing key 'stem'\)"),
    Case("cost {w}/specs/extra_key.json", r"unexpected keyword argument 'extra'"),
    Case("cost {w}/specs/list.json", r"network spec JSON must be an object"),
    Case("cost {w}/specs/empty.json", r"network spec is not valid JSON"),
    Case("cost {w}/specs/str_resolution.json", r"resolution must be an integer, got '32' \(str\)"),
    Case("cost {w}/specs/bool_layers.json", r"layers must be an integer, got True \(bool\)"),
    Case("cost {w}/specs/no_stages.json", r"needs at least one stage"),
    Case("cost {w}/specs/bad_block.json", r"unknown block 'transformer'"),
    Case("cost {w}/specs/even_kernel.json", r"kernel must be odd and positive"),
    Case("cost {w}/specs/null_head.json", r"not a valid network spec"),
    Case("cost {w}/specs/str_hidden.json", r"head.hidden must be a list of integers"),
    Case("cost {w}/specs/deep.json", r"too large for this machine"),
]

FAMILY_MODELS_BENCH = [
    Case("family baseline_convnet --alpha nan", r"alpha must be a positive number, got nan"),
    Case("family baseline_convnet --alpha 0", r"alpha must be a positive number"),
    Case("family baseline_convnet --beta inf", r"beta must be a positive number, got inf"),
    Case("family baseline_convnet --gamma 100", r"too large for this machine"),
    Case("family baseline_convnet --phi-max 0", r"Invalid value for '--phi-max'"),
    Case("family baseline_convnet --phi-max 13", r"Invalid value for '--phi-max'"),
    Case("family nosuch_model", r"unknown model 'nosuch_model'"),
    Case("family {w}/specs/str_layers.json", r"layers must be an integer"),
    Case("models show nosuch_model", r"unknown model 'nosuch_model'"),
    Case("models show baseline_convnet --classes 0", r"Invalid value for '--classes'"),
    Case("models show {w}/specs/notjson.json", r"not valid JSON"),
    Case("models nosuch", r"No such command 'nosuch'"),
    Case("bench train --images 0", r"Invalid value for '--images'"),
    Case("bench train --batch-size 0", r"Invalid value for '--batch-size'"),
    Case("bench train --workers -1", r"Invalid value for '--workers'"),
    Case(f"bench train nosuch_model {PETS}", r"unknown model 'nosuch_model'"),
    Case(f"bench train baseline_convnet nosuch_model {PETS}", r"unknown model 'nosuch_model'"),
    Case(f"bench train {{w}}/specs/deep.json {PETS}", r"too large for this machine"),
    Case(f"bench train {PETS} --device tpu", r"unknown device 'tpu'"),
    Case("bench train --dataset nosuch", r"unknown dataset 'nosuch'"),
    Case("bench comparisons --curve stepp", r"Invalid value for --curve: 'stepp' is not one of saturating, steep"),
]

STORAGE = [
    Case("results --storage postgresql://:@:x/", r"cannot read storage URL 'postgresql://:@:x/'"),
    Case("report --storage postgresql://:@:x/ --out {case}/r", r"cannot read storage URL"),
    Case("results --storage nosuchdb://host/x", r"names no database SQLAlchemy knows"),
    Case("results --storage {w}/storages/none.db", r"no study storage at .*none.db"),
    Case("results --storage {w}/storages/zero.db", r"zero.db is an empty file \(0 bytes\), not a SQLite database"),
    Case("report --storage {w}/storages/zero.db --out {case}/r", r"is an empty file \(0 bytes\)"),
    Case("results --storage {w}/storages/text.db", r"text.db is not a valid SQLite database \(no SQLite header\)"),
    Case("results --storage {w}/storages/damaged.db",
         r"damaged.db is not a valid SQLite database \(database disk image is malformed\)"),
    Case("report --storage {w}/storages/damaged.db --out {case}/r", r"is not a valid SQLite database"),
    Case("results --storage {w}/storages/foreign.db", r"not a study storage: it has no Optuna tables"),
    Case("results --storage {w}/storages", r"is a folder; give the SQLite file inside it"),
    Case("results --run-dir {w}/afile", r"afile is a file, not a folder"),
    Case("report --run-dir {w}/afile --out {case}/r", r"afile is a file, not a folder"),
    Case("results --run-dir {w}/no-runs-here", r"no study storage at"),
    Case("results", r"zero.db is an empty file", env={"SCALELAB_STORAGE": "{w}/storages/zero.db"}),
    Case("results", r"cannot read storage URL", env={"SCALELAB_STORAGE": "postgresql://:@:x/"}),
    Case("results --storage {w}/storages/valid.db --csv {w}/missing/t.csv", r"does not exist"),
    Case("bench halving --storage {w}/storages/valid.db --study x --rate 1", r"halving rate must be a whole number >= 2"),
    Case("bench halving --storage {w}/storages/none.db --study x", r"no study storage at .*none.db"),
]

RUNS = "--run-dir {case}/runs --device cpu"
GOOD_STUDY = """kind = "grid"
dataset = "cifar10-mini"
[base]
name = "baseline_convnet"
[train]
epochs = 1
"""
STUDY = [
    # study commands: refused before any storage is opened or study created
    Case(f"grid {RUNS} --target-flops 2y", r"cannot read --target-flops '2y'"),
    Case(f"grid {RUNS} --target-flops 5ms", r"the grid's target is FLOPs"),
    Case(f"grid {RUNS} --alpha 2:1", r"alpha range must satisfy 0 < low <= high"),
    Case(f"grid {RUNS} --layer-rounding down", r"--layer-rounding: expected one of 'up', 'nearest', got 'down' \(str\)"),
    Case(f"grid {RUNS} --alpha x:2", r"--alpha must be LOW:HIGH"),
    Case(f"grid {RUNS} --step 0", r"--step must be positive"),
    Case(f"grid {RUNS} --tolerance -1", r"tolerances non-negative"),
    Case(f"grid {RUNS} --epochs inf", r"--epochs: expected a finite number"),
    Case(f"grid {RUNS} --epochs nan", r"--epochs: expected a finite number"),
    Case(f"grid {RUNS} --val-fraction 0", r"--val-fraction must be in \(0, 1\)"),
    Case(f"grid {RUNS} --val-fraction 1.5", r"--val-fraction must be in \(0, 1\)"),
    Case(f"grid {RUNS} --train-fraction 1.5", r"--train-fraction must be in \(0, 1\]"),
    Case(f"grid {RUNS} --seed -1", r"seed must be an integer from 0"),
    Case("run {case}/s1.toml", r"\[train\] lr: expected a finite number, got nan", files={"s1.toml": GOOD_STUDY + "lr = nan\n"}),
    Case("run {case}/s2.toml", r"lr must be positive", files={"s2.toml": GOOD_STUDY + "lr = -1\n"}),
    Case(f"grid {RUNS} --study ../../x", r"--study '../../x' would be written outside"),
    Case(f"grid {RUNS} --study /tmp/elsewhere", r"--study '/tmp/elsewhere'"),
    Case(f"grid {RUNS} --out {{w}}/missing/c.json", r"cannot write --out .*does not exist"),
    Case(f"grid {RUNS} --storage postgresql://:@:x/", r"cannot read storage URL"),
    Case(f"grid {RUNS} --storage {{w}}/storages/zero.db", r"zero.db is an empty file"),
    Case("grid --run-dir {w}/afile --device cpu", r"afile is a file, not a folder"),
    Case(f"grid {RUNS} --device tpu", r"unknown device 'tpu'"),
    Case(f"grid {RUNS} --seeds 0", r"--seeds must be at least 1|Invalid value for '--seeds'"),
    Case(f"sweep {RUNS} --multiples 0.5", r"sweep multiples must be numbers >= 1"),
    Case(f"sweep {RUNS} --multiples 1,two", r"cannot read the list"),
    Case(f"sweep {RUNS} --dimensions height", r"unknown dimension 'height'"),
    Case(f"sweep {RUNS} --add compound", r"cannot read the added network 'compound': write DIMENSION:K"),
    Case(f"sweep {RUNS} --add height:3", r"cannot read the added network 'height:3'"),
    Case(f"sweep {RUNS} --alpha 0.5", r"alpha must be a number >= 1"),
    Case(f"scale {RUNS} --alpha 1 --beta 1 --gamma 1", r"must exceed 1 for the network to grow"),
    Case(f"scale {RUNS} --coefficients {{w}}/missing.json", r"cannot read alpha, beta, gamma from"),
    Case(f"search baseline {RUNS} --seeds 2", r"--seeds does not apply"),
    Case(f"grid {RUNS} --seeds 3 --settle-after 1", r"--settle-after must be at least 2"),
    Case(f"grid {RUNS} --budget 0m", r"--budget must be a positive time \(60m, 1.5h, 900s\) or trial-epochs"),
    Case(f"sweep {RUNS} --budget '2 hours'", r"--budget must be a positive time"),
    Case(f"grid {RUNS} --settle-after 2", r"and below --seeds \(1\), got 2"),
    Case(f"compare baseline_convnet fast_convnet {RUNS} --seeds 3 --settle-after 2",
         r"--settle-after applies to grid and sweep studies"),
    Case(f"grid {RUNS} --fill-budget", r"--fill-budget sizes the seeds of a grid, family, sweep or comparison to"),
    Case(f"search baseline {RUNS} --budget 60m --fill-budget", r"--fill-budget sizes the seeds"),
    Case(f"search baseline {RUNS} --cost speed", r"unknown cost 'speed'"),
    Case(f"search baseline {RUNS} --objective best", r"unknown objective 'best'"),
    Case(f"search baseline {RUNS} --target-flops 5ms", r"is a latency; use --cost latency"),
    Case(f"search baseline {RUNS} --max-flops 5ms", r"--max-flops takes multiply-adds"),
    Case(f"search baseline {RUNS} --target-flops 1x --target-latency 1x", r"not both"),
    Case(f"search baseline {RUNS} --w nan", r"--w: expected a finite number"),
    Case("run {w}/missing.toml", r"study file .*missing.toml does not exist"),
    Case("run {case}/s3.toml", r"not valid TOML", files={"s3.toml": "kind = grid\n"}),
    Case("run {case}/s4.toml --profile nope", r"has no profile 'nope'", files={"s4.toml": GOOD_STUDY}),
    Case("run {case}/s6.toml --no-prune", r"--no-prune does not apply to .*s6.toml: \[search\], whose settings",
         files={"s6.toml": GOOD_STUDY.replace('"grid"', '"sweep"')}),
    Case("run {case}/s6.toml --trials 3", r"--trials does not apply to .*s6.toml: \[search\]",
         files={"s6.toml": GOOD_STUDY.replace('"grid"', '"sweep"')}),
    Case("run {case}/s5.toml", r"\[train\] lr: expected a number, got '1e-3' \(str\)",
         files={"s5.toml": GOOD_STUDY + 'lr = "1e-3"\n'}),
    Case("run {case}/s6.toml", r"\[train\]: unknown setting\(s\) lrate", files={"s6.toml": GOOD_STUDY + "lrate = 1\n"}),
    Case("run {case}/s7.toml", r"\[search\] prune: expected true or false, got 'no'",
         files={"s7.toml": GOOD_STUDY + '[search]\nprune = "no"\n'}),
    Case("run {case}/s8.toml", r"\[base\] width: expected a number, got 'half'",
         files={"s8.toml": GOOD_STUDY.replace('name = "baseline_convnet"', 'name = "baseline_convnet"\nwidth = "half"')}),
    Case("run {case}/s8b.toml", r"\[base\] layer_rounding: expected one of 'up', 'nearest', got 'down'",
         files={"s8b.toml": GOOD_STUDY.replace('name = "baseline_convnet"',
                                               'name = "baseline_convnet"\nlayer_rounding = "down"')}),
    Case("run {case}/s8c.toml", r"\[halving\]: halving rate must be a whole number >= 2, got 1",
         files={"s8c.toml": GOOD_STUDY + "[halving]\nenabled = true\nrate = 1\n"}),
    Case("run {case}/s8d.toml", r"\[halving\]: unknown setting\(s\) eta",
         files={"s8d.toml": GOOD_STUDY + "[halving]\neta = 3\n"}),
    Case("run {case}/s8e.toml", r"\[halving\]: synchronous halving needs halving itself on: add --halving",
         files={"s8e.toml": GOOD_STUDY + "[halving]\nsynchronous = true\n"}),
    Case("run {case}/s9.toml", r"study kind must be one of", files={"s9.toml": GOOD_STUDY.replace('"grid"', '"gird"')}),
    Case("run {case}/s10.toml", r"seeds: expected a whole number, got 2.5",
         files={"s10.toml": GOOD_STUDY.replace('dataset =', 'seeds = 2.5\ndataset =')}),
    Case("plan {w}/missing.toml", r"study file .*missing.toml does not exist"),
    Case("plan {case}/s8f.toml --halving-sync", r"synchronous halving needs halving itself on: add --halving",
         files={"s8f.toml": GOOD_STUDY}),
    Case("worker --study none --storage {w}/storages/valid.db", r"no study 'none'"),
    Case("migrate --storage {w}/storages/zero.db", r"zero.db is an empty file"),
]

CASES: list[Case] = [*TRAIN, *COST, *FAMILY_MODELS_BENCH, *STORAGE, *STUDY]


# --- the prepared inputs ------------------------------------------------------------------------------------


def _spec_files(folder: Path) -> None:
    folder.mkdir()
    d = get_preset("baseline_convnet", 10).to_dict()
    stage = dict(d["stages"][0])

    def spec(name: str, **changes: object) -> None:
        (folder / name).write_text(json.dumps({**d, **changes}))

    def stage1(name: str, **changes: object) -> None:
        spec(name, stages=[{**stage, **changes}, *d["stages"][1:]])

    stage1("deep.json", layers=10**9)
    stage1("wide.json", out_channels=10**7)
    stage1("str_layers.json", layers="two")
    stage1("float_layers.json", layers=2.5)
    stage1("bool_layers.json", layers=True)
    stage1("bad_block.json", block="transformer")
    stage1("even_kernel.json", kernel=4)
    spec("extra_key.json", extra=1)
    spec("str_resolution.json", resolution="32")
    spec("no_stages.json", stages=[])
    spec("null_head.json", head=None)
    spec("str_hidden.json", head={**d["head"], "hidden": ["a"]})
    (folder / "nan_dropout.json").write_text(json.dumps({**d, "head": {**d["head"], "dropout": float("nan")}}))
    (folder / "missing_stem.json").write_text(json.dumps({k: v for k, v in d.items() if k != "stem"}))
    (folder / "notjson.json").write_text("{not json")
    (folder / "list.json").write_text("[1, 2]")
    (folder / "empty.json").write_text("")
    (folder / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (folder / "folder.json").mkdir()


def _storages(folder: Path) -> None:
    from scalelab.search.storage import open_storage

    folder.mkdir()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("valid.db", "damaged.db"):
        storage = open_storage(f"sqlite:///{folder / name}")
        optuna.create_study(storage=storage, study_name="s").optimize(lambda t: t.suggest_float("x", 0, 1),
                                                                       n_trials=2)
        storage.engine.dispose()
    damaged = bytearray((folder / "damaged.db").read_bytes())
    damaged[4096:8192] = b"\xff" * 4096
    (folder / "damaged.db").write_bytes(bytes(damaged))
    (folder / "zero.db").write_bytes(b"")
    (folder / "text.db").write_text("not a database\n" * 20)
    with sqlite3.connect(folder / "foreign.db") as con:
        con.execute("CREATE TABLE notes (text)")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Inputs every case may name as ``{w}/...``: ``data/pets`` (a 2-class image folder, already decoded
    into the cache ``cache/``), ``specs/`` (bad and huge spec files), ``storages/`` (empty, non-SQLite,
    damaged, foreign and valid SQLite files) and ``afile`` (a file where a folder is expected)."""
    from scalelab.data.imagefolder import load_image_folder

    w = tmp_path_factory.mktemp("world")
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 2)):
        for cls in ("cat", "dog"):
            (w / "data" / "pets" / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
                    w / "data" / "pets" / split / cls / f"{i}.png")
    os.environ["SCALELAB_CACHE"], before = str(w / "cache"), os.environ.get("SCALELAB_CACHE")
    try:
        load_image_folder(w / "data" / "pets")  # the cache and its checksum, as a real run leaves them
    finally:
        if before is None:
            del os.environ["SCALELAB_CACHE"]
        else:
            os.environ["SCALELAB_CACHE"] = before
    _spec_files(w / "specs")
    _storages(w / "storages")
    (w / "afile").write_text("a file where a folder is expected\n")
    (w / "cwd").mkdir()
    assert len(list((w / "cache" / "imagefolder").iterdir())) == 2  # the array and its checksum
    return w


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``root`` (hidden ones too: a left-over temporary file counts)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*")) if "cases" not in p.relative_to(root).parts}


@pytest.fixture(scope="module")
def pristine(world):
    return _snapshot(world)


def run_case(case: Case, world: Path, folder: Path, monkeypatch, capsys) -> tuple[int, str, str]:
    """Run one case in-process; returns (exit code, stdout, stderr)."""
    for name, text in case.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.format(w=world, case=folder))
    monkeypatch.setenv("SCALELAB_CACHE", str(world / "cache"))
    for name in ("SCALELAB_STORAGE", "SCALELAB_DATA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value.format(w=world, case=folder))
    monkeypatch.chdir(world / "cwd")  # so that a default runs/ or reports/ lands nowhere that matters
    argv = [part.format(w=world, case=folder) for part in shlex.split(case.args)]
    monkeypatch.setattr(sys, "argv", ["scalelab", *argv])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case, world, pristine, monkeypatch, capsys):
    folder = world / "cases" / re.sub(r"[^A-Za-z0-9]+", "-", case.id)
    folder.mkdir(parents=True, exist_ok=True)
    code, out, err = run_case(case, world, folder, monkeypatch, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in out + err, err
    assert code != 0, (out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(case.error, lines[0]), lines[0]
    assert _snapshot(world) == pristine  # cache, storages, specs, data: byte-identical, nothing added
    assert not list((world / "cwd").iterdir())  # no default runs/ or reports/ made on the way to the error


def test_the_table_is_large_and_its_ids_distinct():
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)
