"""Searches and scaling studies on an Optuna storage: the baseline search (:mod:`.space`), the
alpha-beta-gamma grid (:mod:`.grid`), compound families, single-dimension sweeps and comparisons.

Data flow: settings (:mod:`.config`) -> plan, worked out once (:mod:`.plans`, :mod:`.points`) -> study in
the storage (:mod:`.study`, :mod:`.storage`) -> workers (:mod:`.runner`) run trials (:mod:`.trial`) ->
summary (:mod:`.summary`). :mod:`.api` has one call per command.
"""

from scalelab.search.api import join_study, run_file, run_kind, run_study
from scalelab.search.config import (
    KINDS,
    RunOptions,
    StudyConfig,
    build,
    load_study_file,
)
from scalelab.search.summary import Summary

__all__ = [
    "KINDS",
    "RunOptions",
    "StudyConfig",
    "Summary",
    "build",
    "join_study",
    "load_study_file",
    "run_file",
    "run_kind",
    "run_study",
]
