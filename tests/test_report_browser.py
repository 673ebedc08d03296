"""The report opened in headless Chromium over file://: every figure drawn, no console output, no errors.

Needs Chromium (Debian: ``apt-get install -y chromium``). Without it these tests fail, on purpose; deselect
them knowingly with ``pytest -m "not browser"``.
"""

import re
import shutil
import subprocess

import pytest
from fixtures.report_results import load_results

from scalelab.report import ReportSettings, write_site

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("report_browser")]  # module fixtures built once, in one process
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FIGURES = {
    "index.html": [],
    "study-sweep-b0-cifar10.html": ["fig-scaling", "fig-compound-vs-single", "fig-curves"],
    "study-grid-b0-cifar10.html": ["fig-grid", "fig-curves"],
    "study-baseline-search-cifar10.html": ["fig-pareto", "fig-curves"],
    "study-compare-cifar10.html": ["fig-latency-ms", "fig-curves"],
}


def chromium() -> str:
    """The browser's path; called inside each test so that a missing browser fails the test itself."""
    found = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if found is None:
        pytest.fail("Chromium is needed to check the report pages: install it (Debian/Ubuntu: "
                    "`apt-get install -y chromium`), or deselect these tests with -m 'not browser'",
                    pytrace=False)
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    write_site(load_results(), out, settings=ReportSettings(n_bootstrap=40))
    return out


@pytest.mark.parametrize("page", list(FIGURES))
def test_page_renders_without_errors(site, page, tmp_path):
    dom, console = _open(site / page, tmp_path)
    assert not console, "\n".join(console)
    assert '<div id="page-errors" hidden=""></div>' in dom, dom[dom.find("page-errors"):][:500]
    assert re.findall(r'<div id="(fig-[a-z-]+)"', dom) == FIGURES[page]
    for fig in FIGURES[page]:
        start = dom.index(f'<div id="{fig}"')
        drawn = dom[start:dom.index("<script", start)]
        assert 'class="main-svg"' in drawn and 'class="trace' in drawn, f"{fig} was not drawn"


def test_missing_plotly_is_reported_on_the_page(site, tmp_path):
    broken = tmp_path / "site"
    broken.mkdir()
    shutil.copy(site / "study-compare-cifar10.html", broken)
    dom, console = _open(broken / "study-compare-cifar10.html", tmp_path / "profile")
    assert "Uncaught ReferenceError: Plotly is not defined" in "\n".join(console)
    assert "keep plotly.min.js in the same folder as this page" in dom and 'class="main-svg"' not in dom


def _open(page, profile) -> tuple[str, list[str]]:
    """The page's DOM after 5 s of virtual time, and what it wrote to the console (errors included)."""
    run = subprocess.run(
        [chromium(), "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout, [line for line in run.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
