"""Analysis of scaling experiments: saturation-curve fits, form selection and extrapolation checks."""

from scalelab.analysis.fit import Fit, FitError, fit_curve
from scalelab.analysis.fit_forms import FORMS, Form
from scalelab.analysis.fit_select import (
    DEFAULT_FORMS,
    ExtrapolationCheck,
    compare_at_equal_compute,
    extrapolation_check,
    select_form,
)

__all__ = [
    "DEFAULT_FORMS",
    "FORMS",
    "ExtrapolationCheck",
    "Fit",
    "FitError",
    "Form",
    "compare_at_equal_compute",
    "extrapolation_check",
    "fit_curve",
    "select_form",
]
