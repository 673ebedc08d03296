"""The all-chance sweep of issue 12: every network trained stays within noise of guessing, and the CLI,
`results` and the report say so, find no difference between dimensions and name no best network."""

import html
import json
import re

import pytest
from test_cli import run

from scalelab.report.tables import NO_BEST

pytestmark = pytest.mark.usefixtures("one_thread")


def _text(path):
    """A report page as plain text: scripts, styles and figures dropped, tags and entities undone."""
    page = re.sub(r"<script.*?</script>|<style.*?</style>|<svg.*?</svg>", " ", path.read_text(), flags=re.DOTALL)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_all_chance_sweep_names_no_best_network_and_no_difference(capsys, monkeypatch, tmp_path):
    # 64 training images a trial: the networks learn nothing (3-10% on 100 validation images, chance 10%)
    code, out, err = run(capsys, monkeypatch, "sweep", "--device", "cpu", "--no-progress", "--val-fraction", "0.04",
                         "--epochs", "1", "--max-images", "64", "--batch-size", "32", "--run-dir", str(tmp_path),
                         "--base", "baseline_convnet", "--base-width", "0.25", "--base-resolution", "16",
                         "--multiples", "1,2,4", "--dimensions", "width", "--dimensions", "compound", "--study", "s")
    assert code == 0, err
    assert "Study s: 5 complete" in out
    assert ("Warning: all 5 networks trained are within noise of chance (10.0% for 10 classes): no network is best "
            "and no difference between them means anything. Raise the training budget: --epochs (now 1 per "
            "trial) and --max-images (now 64).") in out
    assert "Most accurate" not in out and "Best" not in out
    # The summary states the report's verdict too: compound against width, no clear difference.
    assert re.findall(r"Compound against (\w+) at [^:]+: ([^;]+);", out) == [("width", "no clear difference")]
    assert "more accurate" not in out

    code, out, err = run(capsys, monkeypatch, "results", "--study", "s", "--run-dir", str(tmp_path), "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 5 and {r["status"] for r in rows} == {"complete"}
    assert all(r["at_chance"] is True and r["val_images"] == 100 and r["val_acc"] <= 0.19 for r in rows)
    assert not any(r["best"] for r in rows)  # no best row

    site = tmp_path / "site"
    code, out, err = run(capsys, monkeypatch, "report", "--storage", str(tmp_path / "scalelab.db"), "--out",
                         str(site), "--bootstrap", "20")
    assert code == 0, err
    index, study = _text(site / "index.html"), _text(site / "study-s.html")
    assert NO_BEST == "none: every network trained is within noise of chance"
    assert f"s scaling sweep: single dimensions and compound cifar10-mini 5 - {NO_BEST} -" in index
    assert f"best network {NO_BEST}" in study and f"No best network ({NO_BEST})" in study
    assert "at chance 5 of 5 trials are within noise of guessing" in study
    verdicts = re.findall(r"Compound against \w+ at [^:]+: ([^.]+)\.", study)
    assert verdicts == ["no clear difference at this confidence"]  # compound against width: no dimension differs
    assert not re.search(r"is more accurate\. Compound minus", study)  # no 'X beats Y' sentence anywhere
