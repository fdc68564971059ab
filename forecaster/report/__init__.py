"""The daily report: data, metrics, charts and rendering in markdown, HTML and CSV."""

from forecaster.report.writer import FORMATS, write_report, write_reports

__all__ = ["FORMATS", "write_report", "write_reports"]
