"""The search commands as library calls: run a study to the end (creating or resuming it), or join one
as an extra worker. Each CLI command is one of these calls."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import optuna
import torch

from scalelab.device import announce_threads, pick_device
from scalelab.files import check_writable_file, confined
from scalelab.search.config import (
    RunOptions,
    StudyConfig,
    build,
    default_study_name,
    load_study_file,
)
from scalelab.search.retry import with_retry
from scalelab.search.runner import run_workers, work
from scalelab.search.storage import open_storage, storage_url
from scalelab.search.study import create_or_resume, load
from scalelab.search.summary import Summary, summarise


def run_study(config: StudyConfig, options: RunOptions | None = None) -> Summary:
    """Create the study (or resume it: finished trials are kept, never re-run), train its trials with
    ``options.workers`` processes, and summarise it."""
    options = options or RunOptions()
    device = pick_device(options.device)
    name = options.study or default_study_name(config)
    confined(options.run_dir, name, what="--study")  # its result files go under the run directory
    if options.out:
        check_writable_file(options.out, what="--out")
    url = storage_url(options.storage, options.run_dir)
    storage = open_storage(url)
    if config.fill_budget:
        config = _sized(config, storage, name, device)
    with_retry(lambda: create_or_resume(storage, name, config, device), within_s=60.0)  # a locked file waits
    announce_threads(device, options.workers, options.progress)  # after the checks: a bad input prints one line
    run_workers(url, name, options.workers, device=options.device, progress=options.progress)
    return with_retry(lambda: summarise(load(storage, name), config, options), within_s=60.0)


def _sized(config: StudyConfig, storage, name: str, device: torch.device) -> StudyConfig:
    """``config`` with as many seeds as its budget fits, never fewer than the study already has; says
    how many (a decision, so printed without --progress too)."""
    from scalelab.search.sizing import fill_budget

    existing = next((s for s in storage.get_all_studies() if s.study_name == name), None)
    study = optuna.load_study(study_name=name, storage=storage) if existing is not None else None
    stored = existing.user_attrs.get("settings", {}).get("seeds", 1) if existing is not None else 1
    config, told = fill_budget(dataclasses.replace(config, seeds=max(config.seeds, stored)), study, device)
    print(told, file=sys.stderr, flush=True)
    return config


def run_file(path: str | Path, overrides: dict[str, Any] | None = None, profile: str | None = None,
             flag_names: dict[str, str] | None = None) -> Summary:
    """Run the study a TOML file describes, in budget ``profile`` if given, with ``overrides`` (flags) on top."""
    return run_study(*build(load_study_file(path, profile), overrides, source=str(path), flag_names=flag_names))


def run_kind(kind: str, overrides: dict[str, Any], flag_names: dict[str, str] | None = None) -> Summary:
    """Run a study of ``kind`` described by flags alone (the `scalelab grid`, `sweep`, ... commands)."""
    return run_study(*build({"kind": kind}, overrides, source="command line", flag_names=flag_names))


def join_study(study: str, storage: str | None = None, *, run_dir: str = "runs", device: str = "auto",
               progress: bool = True, data_dir: str | None = None) -> int:
    """Work on an existing study (from any machine that reaches its storage) until it is done; returns
    the number of trials this worker ran."""
    url = storage_url(storage, run_dir)
    check = open_storage(url, create=False, read_only=True)
    try:
        load(check, study)  # a missing study is an error before anything starts
    finally:
        check.engine.dispose()
    announce_threads(pick_device(device), 1, progress)
    return work(url, study, device=device, progress=progress, data_dir=data_dir)


