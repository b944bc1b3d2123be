"""`w2s report`: one readable report of many finished runs (HTML or Markdown).

`runs` finds the runs (run folders, sweep folders), `data` computes the numbers as
pandas tables, `figures` draws them, `document` renders HTML and Markdown, `build`
assembles and writes the report.
"""

from w2s.report.build import ReportResult, write_report

__all__ = ["ReportResult", "write_report"]
