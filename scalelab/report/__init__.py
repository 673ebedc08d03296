"""Static HTML reports of scaling studies, with plotly figures that work offline."""

from scalelab.report.inputs import ReportError, ReportSettings
from scalelab.report.site import write_site

__all__ = ["ReportError", "ReportSettings", "write_site"]
