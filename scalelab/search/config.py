"""Study settings: what a study trains, on which data, with which budget (a study file's contents).

A :class:`StudyConfig` is stored in the study's user attributes (``settings``), so that a worker on any
machine rebuilds the whole experiment from the storage alone. :class:`RunOptions` say how this process
runs a study (storage, study name, workers, device) and are never stored.

Study files are TOML; command-line flags override them::

    kind = "grid"                  # baseline | grid | family | sweep | compare
    study = "grid-2x"              # run options may be given at the top level too
    dataset = "cifar10-mini"

    [model]                        # the network the study starts from: a preset or spec JSON file,
    name = "efficientnet_b0_32"    # optionally scaled (depth, width) and resized (resolution, px)

    [train]                        # any field of scalelab.train.TrainConfig
    epochs = 2

    [search]                       # the kind's settings: BaselineSettings, GridSettings, ...
    target = "2x"
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from scalelab.arch.spec import NetworkSpec
from scalelab.arch.zoo import make_spec
from scalelab.errors import ScalelabError, SearchError
from scalelab.search.targets import parse_target
from scalelab.train import TrainConfig

KINDS = ("baseline", "grid", "family", "sweep", "compare")
DIMENSIONS = ("width", "depth", "resolution", "compound")
SEED_COEFFICIENTS = (1.2, 1.1, 1.15)  # the seed report's alpha, beta, gamma


@dataclass(frozen=True)
class ModelRef:
    """A preset name or spec JSON file, scaled by ``depth`` and ``width`` and resized to ``resolution`` px."""

    name: str = "efficientnet_b0_32"
    depth: float = 1.0
    width: float = 1.0
    resolution: int | None = None

    def resolve(self, num_classes: int) -> NetworkSpec:
        return make_spec(self.name, num_classes=num_classes, resolution=self.resolution, depth=self.depth,
                         width=self.width)


@dataclass(frozen=True)
class BaselineSettings:
    """MnasNet-style search (see :mod:`scalelab.search.space`). ``objective``: 'reward' (ACC x (cost/T)^w,
    single objective, pruned) or 'pareto' (maximise accuracy, minimise cost). ``cost``: 'flops'
    (multiply-adds) or 'latency' (ms, batch 1, training device). ``target``: T, a multiple of the
    skeleton's cost ('1x') or absolute ('30M' multiply-adds, '5ms'). Caps end a trial before training."""

    trials: int = 20
    objective: str = "reward"
    cost: str = "flops"
    target: str = "1x"
    w: float = -0.07
    max_flops: str | None = None
    max_memory: str | None = None
    prune: bool = True

    def __post_init__(self) -> None:
        _choice("objective", self.objective, ("reward", "pareto"))
        _choice("cost", self.cost, ("flops", "latency"))
        if self.trials < 1:
            raise SearchError(f"--trials must be at least 1, got {self.trials}")
        parse_target(self.target, "--target", "ms" if self.cost == "latency" else "")
        if self.max_flops is not None:
            parse_target(self.max_flops, "--max-flops")
        if self.max_memory is not None:
            parse_target(self.max_memory, "--max-memory")


@dataclass(frozen=True)
class GridSettings:
    """The alpha-beta-gamma grid (see :mod:`scalelab.search.grid`): ranges are [low, high] with ``step``;
    ``tolerance`` bounds |alpha*beta^2*gamma^2 - K| / K, ``measured_tolerance`` the measured ratio's."""

    target: str = "2x"
    alpha: tuple[float, float] = (1.0, 2.0)
    beta: tuple[float, float] = (1.0, 1.5)
    gamma: tuple[float, float] = (1.0, 1.5)
    step: float = 0.1
    tolerance: float = 0.05
    measured_tolerance: float = 0.10
    prune: bool = True

    def __post_init__(self) -> None:
        parse_target(self.target, "--target-flops")
        for name in ("alpha", "beta", "gamma"):
            low, high = _pair(name, getattr(self, name))
            if not 0 < low <= high:
                raise SearchError(f"{name} range must satisfy 0 < low <= high, got [{low}, {high}]")
        if not self.step > 0 or not self.tolerance >= 0 or not self.measured_tolerance >= 0:
            raise SearchError("--step must be positive and the tolerances non-negative")


@dataclass(frozen=True)
class FamilySettings:
    """Compound scaling d, w, r = alpha^phi, beta^phi, gamma^phi at each ``phis``; ``targets`` (FLOPs
    multiples such as '4x' or absolute '800M'), when given, replace ``phis`` with
    phi = ln K / ln(alpha beta^2 gamma^2), which is log2 K for coefficients fitted at 2x."""

    alpha: float = SEED_COEFFICIENTS[0]
    beta: float = SEED_COEFFICIENTS[1]
    gamma: float = SEED_COEFFICIENTS[2]
    phis: tuple[float, ...] = (1.0, 2.0, 3.0)
    targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _coefficients(self)
        if not self.phis and not self.targets:
            raise SearchError("give at least one phi (--phi-max) or FLOPs target (--target-flops)")
        for t in self.targets:
            parse_target(t, "--target-flops")


@dataclass(frozen=True)
class SweepSettings:
    """Single-dimension and compound scaling at matched FLOPs multiples K: width w = sqrt K, depth d = K,
    resolution r = sqrt K, compound phi = ln K / ln(alpha beta^2 gamma^2)."""

    alpha: float = SEED_COEFFICIENTS[0]
    beta: float = SEED_COEFFICIENTS[1]
    gamma: float = SEED_COEFFICIENTS[2]
    multiples: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    dimensions: tuple[str, ...] = DIMENSIONS

    def __post_init__(self) -> None:
        _coefficients(self)
        if not self.multiples or any(not (math.isfinite(k) and k >= 1) for k in self.multiples):
            raise SearchError(f"sweep multiples must be numbers >= 1, got {list(self.multiples)}")
        for d in self.dimensions:
            _choice("dimension", d, DIMENSIONS)


@dataclass(frozen=True)
class CompareSettings:
    """Several networks (presets or spec JSON files) trained under one recipe."""

    models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.models:
            raise SearchError("name at least one model to compare, e.g. `scalelab compare resnet18_32 "
                              "efficientnet_b0_32`")


SearchSettings = BaselineSettings | GridSettings | FamilySettings | SweepSettings | CompareSettings
SETTINGS = dict(zip(KINDS, (BaselineSettings, GridSettings, FamilySettings, SweepSettings, CompareSettings)))


@dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a study's results; stored in the study, compared on resume."""

    kind: str
    search: SearchSettings
    model: ModelRef = field(default_factory=ModelRef)
    dataset: str = "cifar10-mini"
    data_dir: str | None = None
    val_fraction: float = 0.1
    evaluate_test: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)
    heartbeat_s: int = 20

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise SearchError(f"--val-fraction must be in (0, 1): trials are judged on the validation "
                              f"split, got {self.val_fraction}")
        if self.heartbeat_s < 1:
            raise SearchError(f"heartbeat_s must be a whole number of seconds >= 1, got {self.heartbeat_s}")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples become lists, as stored

    def identity(self) -> dict[str, Any]:
        """The settings a resumed study must match: all but the trial count, the heartbeat interval and
        where the data lie (``data_dir``: the same dataset may sit elsewhere on each machine)."""
        d = self.to_dict()
        d.pop("heartbeat_s")
        d.pop("data_dir")
        d["search"].pop("trials", None)
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


def build(data: dict[str, Any], overrides: dict[str, Any] | None = None) -> tuple[StudyConfig, RunOptions]:
    """Settings and run options from a study file's contents, with ``overrides`` (same shape, from flags)
    on top. Unknown keys are errors, so a typo never silently falls back to a default."""
    data = _merge(data, overrides or {})
    kind = data.pop("kind", None)
    if kind not in KINDS:
        raise SearchError(f"study kind must be one of {', '.join(KINDS)}; got {kind!r}")
    tables = {name: data.pop(name, {}) for name in ("model", "train", "search")}
    search = dict(tables["search"])
    if "coefficients" in search:
        for key, value in read_coefficients(search.pop("coefficients")).items():
            search.setdefault(key, value)
    run = _make(RunOptions, {k: data.pop(k) for k in list(data) if k in _names(RunOptions)}, "run options")
    config = _make(StudyConfig, {**data, "kind": kind, "search": _make(SETTINGS[kind], search, "[search]"),
                                 "model": _make(ModelRef, tables["model"], "[model]"),
                                 "train": _make(TrainConfig, tables["train"], "[train]")}, "study settings")
    return config, run


def config_from_dict(data: dict[str, Any]) -> StudyConfig:
    """The inverse of :meth:`StudyConfig.to_dict` (how a worker reads a stored study)."""
    return build(dict(data))[0]


def read_coefficients(path: str | Path) -> dict[str, float]:
    """alpha, beta, gamma from the JSON that `scalelab grid` saves."""
    try:
        data = json.loads(Path(path).read_text())
        return {k: float(data[k]) for k in ("alpha", "beta", "gamma")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SearchError(f"cannot read alpha, beta, gamma from {path} ({exc}); give the coefficients.json "
                          "written by `scalelab grid`, or --alpha/--beta/--gamma") from exc


def default_study_name(config: StudyConfig) -> str:
    model = Path(config.model.name).stem if config.kind != "compare" else ""
    extra = config.search.target if config.kind == "grid" else ""
    parts = [config.kind, extra, model, config.dataset]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(p for p in parts if p)).strip("-")


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def _names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _make(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise SearchError(f"{where} must be a table of settings, got {values!r}")
    unknown = sorted(set(values) - set(_names(cls)))
    if unknown:
        raise SearchError(f"unknown setting(s) {', '.join(unknown)} in {where}; valid: {', '.join(_names(cls))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return cls(**values)
    except ScalelabError:
        raise
    except (TypeError, ValueError) as exc:
        raise SearchError(f"bad value in {where}: {exc}") from exc


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise SearchError(f"unknown {name} {value!r}; choose one of {', '.join(options)}")


def _pair(name: str, value: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise SearchError(f"{name} must be a [low, high] pair of numbers, got {value!r}") from exc
    return low, high


def _coefficients(settings: FamilySettings | SweepSettings) -> None:
    for name in ("alpha", "beta", "gamma"):
        value = getattr(settings, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 1):
            raise SearchError(f"{name} must be a number >= 1, got {value!r}")
    if settings.alpha * settings.beta**2 * settings.gamma**2 <= 1:
        raise SearchError("alpha * beta^2 * gamma^2 must exceed 1 for the network to grow")
