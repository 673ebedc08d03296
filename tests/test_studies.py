"""Every study file in studies/ is valid in each of its budget profiles, and the smoke profiles run."""

import tomllib
from pathlib import Path

import optuna
import pytest

from scalelab.errors import SearchError
from scalelab.search import Status, build, kind_names, run_study
from scalelab.search.config import load_study_file
from scalelab.search.record import study_records
from scalelab.search.storage import open_storage, storage_url

STUDIES = sorted((Path(__file__).parent.parent / "studies").glob("*.toml"))
SEED_STUDIES = [p for p in STUDIES if p.name.startswith(("seed_", "cifar10_grid", "cifar10_sweeps"))]

pytestmark = pytest.mark.usefixtures("one_thread")


def _profiles(path: Path) -> list[str]:
    return list(tomllib.loads(path.read_text()).get("profiles", {}))


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_profile_builds(path):
    for profile in [None, *_profiles(path)]:
        config, _ = build(load_study_file(path, profile))
        assert config.kind in kind_names()


@pytest.mark.parametrize("path", SEED_STUDIES, ids=lambda p: p.stem)
def test_seed_studies_have_smoke_cpu_and_gpu_profiles(path):
    assert {"smoke", "cpu", "gpu"} <= set(_profiles(path))
    assert load_study_file(path, "cpu")["study"].endswith("-cpu")


@pytest.mark.parametrize("path", SEED_STUDIES, ids=lambda p: p.stem)
def test_smoke_profile_runs_end_to_end(path, tmp_path):
    config, options = build(load_study_file(path, "smoke"),
                            {"run_dir": str(tmp_path), "progress": False, "device": "cpu"})
    summary = run_study(config, options)
    assert "complete" in summary.text()
    storage = open_storage(storage_url(options.storage, options.run_dir), create=False)
    records = study_records(optuna.load_study(study_name=options.study, storage=storage))
    assert records and all(r.status is Status.COMPLETE and r.kind == config.kind for r in records)


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(SearchError, match="has no profile 'laptop' \\(its profiles: smoke, cpu, cpu-seeds, cpu-equal-time, gpu\\)"):
        load_study_file(STUDIES[0].parent / "seed_table2_cifar10.toml", "laptop")
