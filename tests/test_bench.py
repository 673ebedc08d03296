"""`scalelab bench train` on a tiny model: the loops run in alternating rounds and report consistent figures."""

import dataclasses
import json
import sys

import numpy as np
import pytest
import torch

from scalelab import device
from scalelab.arch.scaling import Scale, apply
from scalelab.arch.zoo import get_preset
from scalelab.bench import TrainBench, bench_train, matmul_flops
from scalelab.cli import main
from scalelab.data import ImageDataset, split_validation


def _toy_splits():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(96, 32, 32, 3), dtype=np.uint8)
    y = np.arange(96, dtype=np.int64) % 3
    return split_validation(ImageDataset("toy", ("a", "b", "c"), x, y, x[:12], y[:12], "generated"), 0.1)


def test_bench_train_runs_every_loop_in_every_round():
    spec = apply(dataclasses.replace(get_preset("baseline_convnet", 3), resolution=16), Scale(1, 0.125, 1))
    result = bench_train(spec, _toy_splits(), images=16, batch_size=8, workers=0, rounds=2)
    assert len(result.scalelab_images_per_s) == len(result.reference_images_per_s) == len(result.matmul_flops) == 2
    assert min(result.scalelab_images_per_s) > 0 and min(result.reference_images_per_s) > 0
    assert result.fp32_ratio.values == tuple(a / b for a, b in zip(result.scalelab_images_per_s,
                                                                  result.reference_images_per_s))


def test_best_setting_and_matmul_share_follow_the_per_round_figures():
    b = TrainBench(model="m", batch_size=8, scalelab_images_per_s=(100.0, 50.0), scalelab_bf16_images_per_s=(300.0, 120.0),
                   reference_images_per_s=(100.0, 40.0), matmul_flops=(6e9, 3e9), flops_per_image=1_000_000)
    assert b.fp32_ratio.values == (1.0, 1.25) and b.best_setting == "bf16"
    assert b.speedup.values == (3.0, 3.0)
    assert b.matmul_share.values == pytest.approx((300 * 6e6 / 6e9, 120 * 6e6 / 3e9))
    no_bf16 = dataclasses.replace(b, scalelab_bf16_images_per_s=None)
    assert no_bf16.bf16_ratio is None and no_bf16.best_setting == "fp32" and no_bf16.speedup == no_bf16.fp32_ratio


def test_matmul_flops_is_plausible():
    assert 1e8 < matmul_flops(n=256, repeats=2) < 1e15


def _run(capsys, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["scalelab", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exit_info.value.code or 0, out, err


def test_bench_train_cli_reports_rounds_load_and_threads(capsys, monkeypatch, tmp_path):
    folder = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    from PIL import Image

    for split in ("train", "test"):
        for cls in ("a", "b"):
            (folder / split / cls).mkdir(parents=True)
            for i in range(12):
                Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / split / cls / f"{i}.png")
    spec = tmp_path / "tiny.json"
    tiny = apply(dataclasses.replace(get_preset("baseline_convnet", 2), resolution=16), Scale(1, 0.125, 1))
    spec.write_text(tiny.to_json())
    monkeypatch.setattr(device, "threads_per_worker", lambda workers: 2)  # the cores others leave free
    before = torch.get_num_threads()
    try:
        code, out, err = _run(capsys, monkeypatch, "bench", "train", str(spec), "--dataset", f"imagefolder:{folder}",
                              "--images", "8", "--batch-size", "4", "--workers", "0", "--rounds", "2",
                              "--device", "cpu", "--json")
    finally:
        torch.set_num_threads(before)
    data = json.loads(out)
    assert code == 0 and data["rounds"] == 2 and data["wide_spread"] == 0.2
    assert {"load_1min", "cores", "torch_threads"} <= set(data["machine_before"])
    assert data["machine_before"]["torch_threads"] == 2
    row = data["models"][0]
    assert len(row["fp32_ratio"]["rounds"]) == 2 and row["fp32_ratio"]["low"] <= row["fp32_ratio"]["median"]
    wide = [r for r in (row["fp32_ratio"], row["bf16_ratio"]) if r and r["wide"]]
    assert len(data["warnings"]) == len(wide) and all(line in err for line in data["warnings"])


def test_bench_train_refuses_zero_rounds_in_one_line(capsys, monkeypatch):
    code, _, err = _run(capsys, monkeypatch, "bench", "train", "--rounds", "0")
    assert code == 2 and "--rounds" in err and err.count("\n") == 1 and "Traceback" not in err


def test_cost_latency_times_both_batches_in_alternating_rounds(capsys, monkeypatch):
    code, out, err = _run(capsys, monkeypatch, "cost", "baseline_convnet", "--width", "0.125", "--resolution", "16",
                          "--latency", "--batch-size", "4", "--rounds", "2", "--device", "cpu", "--json")
    latency = json.loads(out)["latency"]
    assert code == 0 and latency["rounds"] == 2 and [b["batch_size"] for b in latency["batches"]] == [1, 4]
    one, four = (b["median_ms"]["rounds"] for b in latency["batches"])
    assert latency["batch_gain"]["rounds"] == pytest.approx([4 * a / b for a, b in zip(one, four)])
    assert {"load_1min", "cores", "torch_threads"} <= set(latency["machine_before"])
    assert all(line in err for line in latency["warnings"])
