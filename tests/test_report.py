"""The static report: pages, links, escaping, offline plotly, figures and the analysis answers on them."""

import html
import re

import numpy as np
import pandas as pd
import plotly.offline
import pytest
from fixtures.report_results import load_results

from scalelab.analysis.compare import compound_vs_single, dimension_points, fit_dimensions, pareto_front
from scalelab.errors import ScalelabError
from scalelab.report import ReportError, ReportSettings, write_site

pytestmark = pytest.mark.xdist_group("report")  # its module-scoped fixtures are built once, in one process

EVIL = "<script>alert(1)</script>"
EVIL_MODEL = "</script><script>alert(2)</script>"
SETTINGS = ReportSettings(n_bootstrap=40)
FIGURES = {
    "study-sweep-b0-cifar10.html": ["fig-scaling", "fig-compound-vs-single", "fig-curves"],
    "study-grid-b0-cifar10.html": ["fig-grid", "fig-curves"],
    "study-baseline-search-cifar10.html": ["fig-pareto", "fig-curves"],
    "study-script-alert-1-script.html": ["fig-latency-ms", "fig-curves"],
}


@pytest.fixture(scope="module")
def results():
    df = load_results()
    df.loc[df["study"] == "compare-cifar10", "study"] = EVIL
    df.loc[df["model"] == "b0-width-x2", "model"] = EVIL_MODEL
    return df


@pytest.fixture(scope="module")
def site(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, write_site(results, out, title="Scaling <b>report</b>", settings=SETTINGS)


def test_pages_written_and_linked_from_index(site):
    out, written = site
    assert [p.name for p in written] == ["index.html", *FIGURES, "plotly.min.js"]
    index = (out / "index.html").read_text()
    assert set(re.findall(r'href="([^"]+)"', index)) == set(FIGURES)
    for name in FIGURES:
        assert 'href="index.html"' in (out / name).read_text()


def test_user_strings_are_escaped_everywhere(site):
    out, _ = site
    pages = {p.name: p.read_text() for p in out.glob("*.html")}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["index.html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["study-script-alert-1-script.html"]
    assert "Scaling &lt;b&gt;report&lt;/b&gt;" in pages["index.html"]
    for name, text in pages.items():
        assert EVIL not in text and "alert(2)</script>" not in text and "<b>report" not in text, name
        # Only the page's own scripts: the error box, plotly.min.js and one per figure.
        assert text.count("<script") == text.count("</script>") == 2 + len(FIGURES.get(name, [])), name
    sweep = pages["study-sweep-b0-cifar10.html"]
    assert EVIL_MODEL not in sweep and "<script>alert(2)" not in sweep
    assert "<td>&lt;/script&gt;&lt;script&gt;alert(2)" in sweep  # Table 2
    assert "\\u0026lt;script\\u0026gt;alert(2)" in sweep  # figure JSON inside <script>


def test_plotly_shipped_once_and_no_network(site):
    out, _ = site
    assert [p.name for p in out.glob("*.js")] == ["plotly.min.js"]
    assert (out / "plotly.min.js").read_text() == plotly.offline.get_plotlyjs()
    for page in out.glob("*.html"):
        text = page.read_text()
        assert text.count('<script src="plotly.min.js"></script>') == 1, page.name
        assert "cdn.plot.ly" not in text and "https://" not in text and "http://" not in text, page.name


def test_expected_figures_with_units(site):
    out, _ = site
    for name, figures in FIGURES.items():
        text = (out / name).read_text()
        found = re.findall(r'<div id="(fig-[a-z-]+)" class="plotly-figure">', text)
        assert found == figures, name
        assert "validation accuracy (%)" in text, name
    assert "FLOPs (multiply-adds per image, log scale)" in (out / "study-baseline-search-cifar10.html").read_text()


def test_sweep_page_answers_saturation_and_compound(site):
    text = (site[0] / "study-sweep-b0-cifar10.html").read_text()
    assert "Where each dimension saturates" in text and "Table 1: architecture" in text
    for dim in ("width", "depth", "resolution"):
        answer = re.search(rf"Compound against {dim} at [^<]*", text).group(0)
        # The fixture's compound trials beat every single dimension at its largest FLOPs (0.2 points of
        # noise against 2 to 5 points of difference): a claim, with its interval above zero behind it.
        assert "compound scaling is more accurate" in answer and "95 % CI +" in answer
        assert "simultaneous over the 3 comparisons" in answer and "from 7 trials of 7 networks" in answer
    # Four FLOPs values per dimension: each is fitted with a floor (pow3). The fixture's depth curve
    # flattens inside the measured range; compound scaling keeps gaining beyond its largest trial.
    rows = {dim: re.search(rf"<tr><td>{dim}</td>.*?</tr>", text, re.S).group(0)
            for dim in ("width", "depth", "resolution", "compound")}
    assert all("pow3" in row for row in rows.values())
    assert "extrapolated" not in rows["depth"] and "extrapolated" in rows["width"]
    assert all("95% interval" in row for dim, row in rows.items() if dim != "compound")  # bootstrap spread
    # Compound keeps gaining past its largest trial: its saturation point is an extrapolation, said so,
    # with an interval left open where it reaches past 100x the largest trial.
    assert "extrapolated" in rows["compound"] and "over 100× the largest trial" in rows["compound"]


def test_saturation_is_not_claimed_from_three_flops_values(results, tmp_path):
    sweep = results[results["kind"] == "sweep"]
    # The baseline plus the two smallest trials per dimension: three FLOPs values each.
    three = sweep[sweep["dimension"].isna() | (sweep.groupby("dimension")["flops"].rank(method="first") <= 2)]
    text = write_site(three, tmp_path, settings=SETTINGS)[1].read_text()
    row = re.search(r"<tr><td>width</td>.*?</tr>", text, re.S).group(0)
    # Three FLOPs values cannot carry a curve with a ceiling: no curve, no saturation point claimed.
    assert "too few points" in row and "multiply-adds," not in row


def test_all_chance_sweep_says_no_dimension_differs(results, tmp_path):
    """The issue's sweep: 9 trials (the base and two networks per dimension), every one at exactly 10.0 %.
    No comparison claims a difference; each says why the trials cannot tell."""
    sweep = results[results["kind"] == "sweep"]
    nine = sweep[sweep["dimension"].isna() | (sweep.groupby("dimension")["flops"].rank(method="first") <= 2)]
    assert len(nine) == 9
    text = write_site(nine.assign(val_acc=0.1), tmp_path, settings=SETTINGS)[1].read_text()
    answers = re.findall(r"<li>(Compound against [^<]*)</li>", text)
    assert len(answers) == 3
    for answer in answers:
        assert "no clear difference" in answer and "more accurate" not in answer
        assert "same validation accuracy (10.0 %)" in answer and "exactly +0.0 points" in answer
        assert "95 % CI +0.0 to +0.0 points" in answer
    assert "bootstrap pairs" not in text


def test_networks_off_the_curve_are_answered_from_measured_networks(results, tmp_path):
    """Three seeds per network on a concave curve that a line in log FLOPs misses, compound 3 points under
    width and depth where it is scaled: the answers compare measured networks and say so."""
    sweep = results[results["study"] == "sweep-b0-cifar10"]
    base = sweep.loc[sweep["dimension"].isna(), "flops"].iloc[0]
    rng = np.random.default_rng(0)
    trials = pd.concat([sweep.assign(seed=s, replicate=s) for s in range(3)], ignore_index=True)
    lift = np.where(trials["dimension"] == "compound", -0.03, 0.0)
    lift = np.where(trials["dimension"] == "resolution", -0.03, lift)  # on compound's curve: no difference
    trials["val_acc"] = 0.6 + 0.25 * (1 - (trials["flops"] / base) ** -2.0) + lift + rng.normal(0, 0.002, len(trials))
    text = write_site(trials, tmp_path, settings=SETTINGS)[1].read_text()
    answers = {dim: html.unescape(re.search(rf"Compound against {dim} at [^<]*", text).group(0))
               for dim in ("width", "resolution")}
    assert "scaling width alone is more accurate" in answers["width"] and "measured networks" in answers["width"]
    assert re.search(r"compound's accuracy at [^ ]+ M multiply-adds is taken to lie between its networks at",
                     answers["width"])
    assert "no clear difference" in answers["resolution"] and "To know, train a " in answers["resolution"]


def test_grid_and_pareto_answers(site):
    grid = (site[0] / "study-grid-b0-cifar10.html").read_text()
    assert "Winner: α = 1.20, β = 1.10, γ = 1.17" in grid and "K = 2.00" in grid
    assert "Not settled: too few seeds to measure the seed-to-seed spread" in grid  # one seed each
    pareto = (site[0] / "study-baseline-search-cifar10.html").read_text()
    assert re.search(r"\d+ of 15 trials are on the front", pareto) and "w = -0.07" in pareto


def test_best_trial_is_the_kinds_own_best(site, results):
    """Pages name the trial the results table marks best: for a baseline search the highest reward, which
    in the fixture is not its most accurate trial."""
    search = results[results["kind"] == "baseline"]
    best, accurate = search[search["best"]].iloc[0], search.loc[search["val_acc"].idxmax()]
    assert (best["model"], accurate["model"]) == ("search-t14", "search-t9")
    page = (site[0] / "study-baseline-search-cifar10.html").read_text()
    assert "Table 1: architecture of the study&#x27;s best trial, search-t14 (trial 14," in page
    assert "search-t14, trial 14: " in page  # the page header's best trial
    index = (site[0] / "index.html").read_text()
    row = re.search(r'<tr><td><a href="study-baseline-search-cifar10.html">.*?</tr>', index, re.S).group(0)
    assert "search-t14" in row and "search-t9" not in row


def test_trials_that_did_not_complete_are_listed_as_stopped_and_left_out_of_figures_and_tables(results, tmp_path):
    compare = results[results["kind"] == "compare"]
    stopped = compare.iloc[[0, 1]].assign(trial=[98, 99], status=["pruned", "diverged"], val_acc=[0.999, float("nan")],
                                          model=["stopped-net", "diverged-net"], best=False,
                                          reason=["stopped by successive halving: why", "loss is nan"])
    written = write_site(pd.concat([compare, stopped]), tmp_path / "site", settings=SETTINGS)
    pages = {p.name: p.read_text() for p in written if p.suffix == ".html"}
    (page,) = (text for name, text in pages.items() if name != "index.html")
    figures_and_tables, listed = page.split("<h2>Stopped early</h2>")
    assert "stopped-net" not in figures_and_tables and "diverged-net" not in figures_and_tables
    assert "stopped by successive halving: why" in listed and "loss is nan" in listed and "2 trial(s)" in listed
    assert "stopped-net" not in pages["index.html"]
    assert "1 study, 4 finished trials." in pages["index.html"]
    with pytest.raises(ReportError, match="no finished trials"):
        write_site(compare.assign(status="pruned"), tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_too_few_points_shows_points_only(results, tmp_path):
    sweep = results[(results["study"] == "sweep-b0-cifar10") & ~results["model"].isin(["b0-depth-x4", "b0-depth-x8"])]
    write_site(sweep, tmp_path, settings=SETTINGS)
    text = (tmp_path / "study-sweep-b0-cifar10.html").read_text()
    assert "depth: points only, no curve fitted (too few different compute values" in text
    assert 'id="fig-scaling"' in text and "Compound against width" in text
    # The comparison needs no fitted curve: one depth network still answers it, from 5 trials, with an
    # interval too wide for a verdict, and says what it could have detected.
    depth = re.search(r"Compound against depth at [^<]*", text).group(0)
    assert "no clear difference" in depth and "from 5 trials of 5 networks" in depth
    assert re.search(r"could detect a difference of about \d+\.\d points", depth)


def test_analysis_glue(results):
    sweep = results[results["study"] == "sweep-b0-cifar10"]
    series = dimension_points(sweep)
    assert list(series) == ["width", "depth", "resolution", "compound"]
    assert all(s["model"].iloc[0] == "efficientnet_b0_32" and len(s) == 4 for s in series.values())
    fits = fit_dimensions(sweep, n_bootstrap=20)
    table = compound_vs_single(fits)  # the points the fits carry, not the curves
    assert list(table["dimension"]) == ["width", "depth", "resolution"]
    assert (table["lower"] <= table["diff"]).all() and (table["diff"] <= table["upper"]).all()
    assert (table["verdict"] == "compound").all()
    pd.testing.assert_frame_equal(table, compound_vs_single(sweep))
    assert np.array_equal(pareto_front([1, 2, 3, 4], [0.5, 0.7, 0.6, 0.7]), [True, True, False, False])


def test_user_errors_are_one_line(results, tmp_path):
    with pytest.raises(ReportError, match="lacks column"):
        write_site(results.drop(columns=["curve"]), tmp_path)
    with pytest.raises(ReportError, match="no finished trials"):
        write_site(results.iloc[:0], tmp_path)
    with pytest.raises(ReportError, match="fraction in"):
        write_site(results.assign(val_acc=results["val_acc"] * 100), tmp_path)
    with pytest.raises(ReportError, match="between 0 and 1"):
        ReportSettings(level=95)
    (tmp_path / "file").write_text("")
    with pytest.raises(ScalelabError, match="cannot write the report") as info:
        write_site(results[results["kind"] == "compare"], tmp_path / "file", settings=SETTINGS)
    assert "\n" not in str(info.value)


def test_colliding_study_names_get_distinct_pages(results, tmp_path):
    compare = results[results["kind"] == "compare"]
    two = pd.concat([compare.assign(study="A b"), compare.assign(study="a-b")])
    names = [p.name for p in write_site(two, tmp_path, settings=SETTINGS)]
    assert names == ["index.html", "study-a-b.html", "study-a-b-2.html", "plotly.min.js"]


def test_comparison_page_plots_accuracy_against_latency_and_training_speed(results, tmp_path):
    compare = results[results["kind"] == "compare"].copy()
    speeds = np.linspace(100.0, 400.0, len(compare))
    compare["images_per_s"] = speeds
    page = write_site(compare, tmp_path, settings=SETTINGS)[1].read_text()
    assert re.findall(r'<div id="(fig-[a-z-]+)"', page) == ["fig-latency-ms", "fig-images-per-s", "fig-curves"]
    assert re.search(r"<th[^>]*>training \(images/s\)</th>", page)
    fastest = compare.iloc[int(np.argmax(speeds))]["model"]
    assert re.search(rf"Fastest to train: {re.escape(fastest)} \(400 images/s\)", page)


@pytest.mark.parametrize("kill_at", [1, 2, 3, 4])
def test_a_kill_during_the_report_leaves_no_partial_file_and_no_dangling_link(results, tmp_path, monkeypatch,
                                                                              kill_at):
    """Each file is renamed into place complete, plotly first and the index last: stopped at the k-th
    rename, every file present is complete and the index (if there) links only complete pages."""
    import os

    compare = results[results["kind"] == "compare"]
    two = pd.concat([compare.assign(study="one"), compare.assign(study="two")])
    full = {p.name: p.read_bytes() for p in write_site(two, tmp_path / "full", settings=SETTINGS)}
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(os.path.basename(dst))
        if len(calls) == kill_at:
            raise KeyboardInterrupt  # stands for a kill between writing a file and renaming it
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        write_site(two, tmp_path / "cut", settings=SETTINGS)
    monkeypatch.undo()
    left = {p.name: p.read_bytes() for p in (tmp_path / "cut").iterdir()}
    assert calls[0] == "plotly.min.js" and len(calls) == kill_at
    assert len(left) == kill_at - 1 and all(data == full[name] for name, data in left.items())
    assert "index.html" not in left  # the index is the last rename: it never links a missing page
    assert not [p for p in (tmp_path / "cut").iterdir() if p.name.startswith(".")]  # temp files removed


@pytest.mark.parametrize("gap, verdict", [(0.10, "Settled: the best is more accurate than every other network"),
                                          (0.0, "Not settled: the best is not separated from")])
def test_a_comparison_says_whether_its_most_accurate_model_is_separated(results, tmp_path, gap, verdict):
    two = results[results["kind"] == "compare"].iloc[:2]
    noise = {0: 0.01, 1: -0.01, 2: 0.0}  # a seed's effect, shared by both models, and a little of their own
    rows = [two.iloc[m].copy() for m in (0, 1) for _ in noise]
    for i, row in enumerate(rows):
        model, seed = divmod(i, 3)
        row["trial"], row["replicate"], row["best"] = i, seed, (model == 0 and seed == 0)
        row["val_acc"] = 0.6 + (gap if model == 0 else 0.0) + noise[seed] + 0.003 * (-1) ** (i + model)
        row["test_acc"] = 0.5 + 0.1 * model + 0.01 * seed
    page = write_site(pd.DataFrame(rows), tmp_path, settings=SETTINGS)[1].read_text()
    assert verdict in page
    assert "test accuracy: mean over seeds" in page
    assert re.search(r">51\.0 %<", page) and re.search(r">61\.0 %<", page)  # not the first seed's 50% and 60%


def test_a_study_page_says_how_many_images_its_trials_trained_and_validated_on(results, tmp_path):
    compare = results[results["kind"] == "compare"].copy()
    page = write_site(compare, tmp_path / "unrecorded", settings=SETTINGS)[1].read_text()
    assert "training images per epoch" not in page  # the fixture's records predate val_images
    compare["val_images"] = 2000
    compare["curve"] = [[{"epoch": 0.5, "images_seen": 2400, "val_acc": 0.3}, {"epoch": 1.0, "images_seen": 4800,
                          "val_acc": 0.4}]] * len(compare)  # a train_fraction of 0.1 of CIFAR-10
    page = write_site(compare, tmp_path / "recorded", settings=SETTINGS)[1].read_text()
    assert "4,800 training images per epoch, 2,000 validation images" in page
