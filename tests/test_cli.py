"""The command line: output, JSON and one-line errors."""

import json
import sys

import pytest

from scalelab.cli import main


def run(capsys, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["scalelab", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exit_info.value.code or 0, out, err


def test_models_show_prints_table_and_cost(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "models", "show", "efficientnet_b0", "--classes", "10")
    assert code == 0
    assert "MBConv6,k5x5" in out and "4,020,358" in out and "multiply-adds" in out


def test_cost_json_with_compound_scaling(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "cost", "efficientnet_b0_32", "-k", "10", "--phi", "1", "--json")
    data = json.loads(out)
    assert code == 0 and data["resolution_px"] == 37 and data["flops_multiply_adds"] > 33e6
    assert data["spec"]["stages"][0]["layers"] == 2


def test_cost_saves_the_scaled_spec_for_other_commands(capsys, monkeypatch, tmp_path):
    path = tmp_path / "half.json"
    code, out, _ = run(capsys, monkeypatch, "cost", "efficientnet_b0_32", "-k", "10", "--width", "0.5",
                       "--depth", "0.5", "--save", str(path))
    assert code == 0 and f"Saved the spec to {path}" in out
    code, again, _ = run(capsys, monkeypatch, "cost", str(path))
    assert code == 0 and again.split("Parameters:")[1] == out.split("Parameters:")[1].split("Saved")[0]
    code, _, err = run(capsys, monkeypatch, "cost", "baseline_convnet", "--save", str(tmp_path / "no" / "x.json"))
    assert code != 0 and "cannot write --save" in err and "does not exist" in err and err.count("\n") == 1


def test_cost_latency(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "cost", "baseline_convnet", "--latency", "--batch-size", "8",
                       "--device", "cpu")
    assert code == 0 and "batch 8" in out and "ms median" in out and "MiB" in out


def test_family_prints_measured_next_to_predicted(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "family", "efficientnet_b0_32", "--phi-max", "2", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["phi"] for r in rows] == [0, 1, 2]
    assert rows[2]["predicted_ratio"] == pytest.approx((1.2 * 1.1**2 * 1.15**2) ** 2)


def test_models_list(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "models", "list", "--json")
    names = [r["name"] for r in json.loads(out)]
    assert code == 0 and "efficientnet_b7" in names and "resnet152_32" in names


@pytest.mark.parametrize("args, message", [
    (["cost", "efficientnet_b9"], "unknown model 'efficientnet_b9'"),
    (["cost", "efficientnet_b0", "--width", "-1"], "width multiplier must be a positive number"),
    (["cost", "efficientnet_b0", "--resolution", "16"], "smaller than the network's total stride"),
    (["cost", "efficientnet_b0", "--widht", "2"], "No such option: --widht"),
    (["cost", "efficientnet_b0", "--width", "abc"], "Invalid value for '--width'"),
    (["cost", "efficientnet_b0", "--device", "tpu", "--latency"], "device"),
])
def test_bad_input_gives_one_error_line(capsys, monkeypatch, args, message):
    code, out, err = run(capsys, monkeypatch, *args)
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
