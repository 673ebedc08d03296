"""Analysis of scaling experiments: saturation-curve fits, form selection and extrapolation checks."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scalelab.analysis.fit import Fit, FitError, fit_curve
    from scalelab.analysis.fit_forms import FORMS, Form
    from scalelab.analysis.fit_select import (
        DEFAULT_FORMS,
        ExtrapolationCheck,
        compare_at_equal_compute,
        extrapolation_check,
        select_form,
    )

_HOMES = {
    "fit": ("Fit", "FitError", "fit_curve"),
    "fit_forms": ("FORMS", "Form"),
    "fit_select": ("DEFAULT_FORMS", "ExtrapolationCheck", "compare_at_equal_compute", "extrapolation_check",
                   "select_form"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_HOME_OF)


def __getattr__(name: str) -> Any:
    """Names are imported on first use, so that a command that only needs the comparison statistics
    (:mod:`.separation`, :mod:`.verdicts`) does not load the fitter's SciPy and pandas (about 0.8 s of
    every grid or comparison command's start-up)."""
    if name not in _HOME_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME_OF[name]}"), name)
