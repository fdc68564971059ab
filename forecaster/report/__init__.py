"""The daily report: data, metrics, charts and rendering in markdown, HTML and CSV."""

from forecaster.report.writer import FORMATS, write_report

__all__ = ["FORMATS", "write_report"]
