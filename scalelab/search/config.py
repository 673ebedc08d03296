"""Study settings: what a study trains, on which data, with which budget (a study file's contents).

A :class:`StudyConfig` is stored in the study's user attributes (``settings``), so that a worker on any
machine rebuilds the whole experiment from the storage alone. :class:`RunOptions` say how this process
runs a study (storage, study name, workers, device) and are never stored.

Study files are TOML; command-line flags override them::

    kind = "grid"                  # a study kind (scalelab.search.kinds): baseline, grid, family, ...
    study = "grid-2x"              # run options may be given at the top level too
    dataset = "cifar10-mini"

    [base]                         # the network the study starts from: a preset or spec JSON file,
    name = "efficientnet_b0_32"    # optionally scaled (depth, width) and resized (resolution_px)

    [train]                        # any field of scalelab.train.TrainConfig
    epochs = 2

    [search]                       # the kind's own settings (its ``settings`` dataclass)
    target = "2x"

Every key and value is checked (:mod:`scalelab.search.validate`) before anything is written.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab.arch.scaling import LayerRounding
from scalelab.arch.spec import NetworkSpec
from scalelab.arch.zoo import make_spec
from scalelab.errors import SearchError
from scalelab.search.budget import parse_budget
from scalelab.search.kinds import StudyKind, get_kind
from scalelab.search.halving import HalvingSettings
from scalelab.search.kinds.coefficients import read_coefficients
from scalelab.search.targets import Target
from scalelab.search.validate import make
from scalelab.train import TrainConfig


@dataclass(frozen=True)
class BaseRef:
    """The base network of a study: a preset name or spec JSON file, scaled by ``depth`` and ``width``
    and resized to ``resolution_px``. ``layer_rounding`` ("up" or "nearest") is how every scaling of
    the study, this one included, rounds layer counts (:func:`scalelab.arch.scaling.round_repeats`)."""

    name: str = "efficientnet_b0_32"
    depth: float = 1.0
    width: float = 1.0
    resolution_px: int | None = None
    layer_rounding: LayerRounding = "up"

    def resolve(self, num_classes: int) -> NetworkSpec:
        """The spec, named after its scaling when scaled (``efficientnet_b0_32-d0.5-w0.5``)."""
        spec = make_spec(self.name, num_classes=num_classes, resolution=self.resolution_px, depth=self.depth,
                         width=self.width, layers=self.layer_rounding)
        scaled = "".join(f"-{k}{v:g}" for k, v in (("d", self.depth), ("w", self.width)) if v != 1)
        return dataclasses.replace(spec, name=spec.name + scaled) if scaled else spec


@dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a study's results; stored in the study, compared on resume."""

    kind: str
    search: Any
    """The kind's settings (an instance of ``get_kind(kind).settings``)."""
    base: BaseRef = field(default_factory=BaseRef)
    dataset: str = "cifar10-mini"
    data_dir: str | None = None
    val_fraction: float = 0.1
    train_fraction: float = 1.0
    """Share of each class's training images (after the validation split) that trials train on: a small
    share lets every network train enough epochs to converge within a CPU budget."""
    evaluate_test: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)
    seeds: int = 1
    """Replicates of every network: replicate r trains with seed ``train.seed + r`` (weights and batch
    order; the validation split stays the one ``train.seed`` picks), the same seeds at every point, so
    that comparisons between networks are paired."""
    budget: str | None = None
    """The whole study's budget, as given ('60m', '200 epochs'; :mod:`scalelab.search.budget`); None: none."""
    fill_budget: bool = False
    """Raise ``seeds`` to the most whose trials all fit ``budget``, sized from this machine's trial times
    when the study is created or resumed (:mod:`scalelab.search.sizing`)."""
    settle_after: int = 0
    """With ``seeds`` above it, replicates past the first ``settle_after`` are trained only while the study's
    question is open (a kind that asks one: a grid, is its winner separated from every other network? a
    sweep, does compound scaling differ from each single dimension?); 0 trains every seed."""
    heartbeat_s: int = 20
    halving: HalvingSettings = field(default_factory=HalvingSettings)
    """Multi-fidelity (``[halving]``): successive halving over the networks of an enumerated study."""

    def judged_at(self, level: float) -> float:
        """The level each look at the study's question is judged at. With ``settle_after`` the question is
        asked after each seed from then on, so the looks share ``1 - level`` (Bonferroni): stopping at the
        first answer does not raise the chance of a false one."""
        looks = self.seeds - self.settle_after + 1 if self.settle_after else 1
        return 1 - (1 - level) / looks

    def __post_init__(self) -> None:
        if self.halving.enabled and not getattr(self.study_kind, "enumerated", False):
            raise SearchError(f"--halving applies to studies of listed networks (grid, family, sweep, compare); "
                              f"a {self.kind} study samples its networks and prunes with its own pruner")
        if self.seeds < 1:
            raise SearchError(f"--seeds must be at least 1, got {self.seeds}")
        if self.seeds > 1 and not self.study_kind.replicable:
            raise SearchError(f"a {self.kind} study trains each sampled network once, so --seeds does not apply; "
                              "train its best networks again as a compare study with --seeds N")
        if self.budget is not None:
            parse_budget(self.budget)
        if self.fill_budget and (self.budget is None or not self.study_kind.replicable):
            raise SearchError("--fill-budget sizes the seeds of a grid, family, sweep or comparison to its "
                              "--budget: give both (for example --budget 60m --fill-budget)")
        if self.settle_after:
            if not self.study_kind.settles:
                raise SearchError(f"--settle-after applies to grid and sweep studies, whose question can be "
                                  f"settled; a {self.kind} study trains every seed")
            if not 2 <= self.settle_after < self.seeds:
                raise SearchError(f"--settle-after must be at least 2 (a spread needs two seeds) and below --seeds "
                                  f"({self.seeds}), got {self.settle_after}")
        if not 0 < self.val_fraction < 1:
            raise SearchError(f"--val-fraction must be in (0, 1): trials are judged on the validation "
                              f"split, got {self.val_fraction}")
        if not 0 < self.train_fraction <= 1:
            raise SearchError(f"--train-fraction must be in (0, 1]: the share of each class's training images "
                              f"that trials train on, got {self.train_fraction}")
        if self.heartbeat_s < 1:
            raise SearchError(f"heartbeat_s must be a whole number of seconds >= 1, got {self.heartbeat_s}")

    @property
    def study_kind(self) -> StudyKind:
        return get_kind(self.kind)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as stored: tuples become lists, targets the text the user wrote."""
        return _plain(self)

    def identity(self) -> dict[str, Any]:
        """The settings a resumed study must match: all but the trial count, the number of seeds (more
        add replicates) and whether the budget sizes them, when to settle, the budget, the heartbeat
        interval, where the data lie (``data_dir``: the same dataset may sit elsewhere on each machine) and
        which study a budget check reports against."""
        d = self.to_dict()
        d.pop("heartbeat_s")
        d.pop("seeds")
        d.pop("settle_after")
        d.pop("budget")
        d.pop("fill_budget")
        d.pop("data_dir")
        d["search"].pop("trials", None)
        d["search"].pop("budget_check_of", None)
        return d


@dataclass(frozen=True)
class RunOptions:
    """How this process runs a study. ``storage``: a SQLAlchemy URL or SQLite file (default
    ``<run_dir>/scalelab.db``); ``study``: its name (default from the settings); ``out``: where the
    result file goes (default ``<run_dir>/<study>/``)."""

    study: str | None = None
    storage: str | None = None
    run_dir: str = "runs"
    workers: int = 1
    device: str = "auto"
    progress: bool = True
    out: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise SearchError(f"--workers must be at least 1, got {self.workers}")


def load_study_file(path: str | Path, profile: str | None = None) -> dict[str, Any]:
    """The contents of a TOML study file, with budget profile ``profile`` applied.

    A file may hold ``[profiles.NAME]`` tables (``smoke`` for tests, ``cpu`` for a 2-core machine,
    ``gpu`` for the paper's scale), each in the shape of the file itself; a profile's values replace the
    file's key by key, and its study is named ``<study>-<profile>`` so that profiles never share one.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise SearchError(f"study file {path} does not exist; see studies/ for examples") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SearchError(f"study file {path} is not valid TOML: {exc}") from exc
    profiles = data.pop("profiles", {})
    if profile is None:
        return data
    if profile not in profiles:
        known = ", ".join(profiles) or "none"
        raise SearchError(f"study file {path} has no profile '{profile}' (its profiles: {known})")
    data = _merge(data, profiles[profile])
    if "study" in data:
        data["study"] = f"{data['study']}-{profile}"
    return data


def build(data: dict[str, Any], overrides: dict[str, Any] | None = None, source: str = "settings",
          flag_names: dict[str, str] | None = None) -> tuple[StudyConfig, RunOptions]:
    """Settings and run options from a study file's contents (``source`` names the file in messages),
    with ``overrides`` (same shape, from flags) on top. Unknown keys and wrong types are errors, so a
    typo never silently falls back to a default. ``flag_names`` maps 'table.key' (or 'key') of an
    override to the flag the user typed, for messages (default: --key)."""
    overrides = overrides or {}
    merged = _merge(data, overrides)

    def flags(table: str | None) -> dict[str, str]:
        given = overrides.get(table, {}) if table else overrides
        if not isinstance(given, dict):
            return {}
        dotted = {key: f"{table}.{key}" if table else key for key in given}
        return {key: (flag_names or {}).get(name, f"--{key.replace('_', '-')}") for key, name in dotted.items()}

    try:
        kind = get_kind(merged.pop("kind", None))
    except SearchError as exc:
        raise SearchError(f"{source}: {exc}") from exc
    tables = {name: merged.pop(name, {}) for name in ("base", "train", "search", "halving")}
    search = tables["search"]
    if isinstance(search, dict) and "coefficients" in search:
        search = dict(search)
        for key, value in read_coefficients(search.pop("coefficients")).items():
            search.setdefault(key, value)
    run_keys = [f.name for f in dataclasses.fields(RunOptions)]
    run = make(RunOptions, {k: merged.pop(k) for k in list(merged) if k in run_keys}, source, flags(None))
    nested = {"search": make(kind.settings, search, f"{source}: [search]", flags("search")),
              "base": make(BaseRef, tables["base"], f"{source}: [base]", flags("base")),
              "train": make(TrainConfig, tables["train"], f"{source}: [train]", flags("train")),
              "halving": make(HalvingSettings, tables["halving"], f"{source}: [halving]", flags("halving"))}
    config = make(StudyConfig, {**merged, "kind": kind.name, **nested}, source, flags(None))
    return config, run


def config_from_dict(data: dict[str, Any]) -> StudyConfig:
    """The inverse of :meth:`StudyConfig.to_dict` (how a worker reads a stored study)."""
    return build(dict(data))[0]


def default_study_name(config: StudyConfig) -> str:
    parts = config.study_kind.name_parts(config)
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(p for p in parts if p)).strip("-")


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Target):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
