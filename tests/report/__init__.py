"""forecaster.report: the daily report (markdown, HTML, CSV), its metrics, intervals and charts."""
