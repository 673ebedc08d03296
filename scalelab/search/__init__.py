"""Searches and scaling studies on an Optuna storage. One module per study kind (:mod:`.kinds`): the
baseline search, the alpha-beta-gamma grid, compound families, single-dimension sweeps and comparisons.

Data flow: settings (:mod:`.config`, checked by :mod:`.validate`) -> the kind's plan, worked out once
(:mod:`.kinds`) -> study in the storage (:mod:`.study`, :mod:`.storage`) -> workers (:mod:`.runner`) run
trials (:mod:`.trial`), each ending in one :class:`~.record.TrialRecord` (:mod:`.record`) -> summary
(:mod:`.summary`). :mod:`.api` has one call per command.
"""

from scalelab.search.api import join_study, run_file, run_kind, run_study
from scalelab.search.config import BaseRef, RunOptions, StudyConfig, build, load_study_file
from scalelab.search.kinds import get_kind, kind_names
from scalelab.search.record import Status, TrialRecord, read_record
from scalelab.search.summary import Summary

__all__ = [
    "BaseRef",
    "RunOptions",
    "Status",
    "StudyConfig",
    "Summary",
    "TrialRecord",
    "build",
    "get_kind",
    "join_study",
    "kind_names",
    "load_study_file",
    "read_record",
    "run_file",
    "run_kind",
    "run_study",
]
