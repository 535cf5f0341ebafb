"""`ndogo report`: a sweep's rows as results.csv, results.md, PNG plots and one index.html.

The markdown tables follow the study's layout: a row per language, a column
per method with F1 and its Δ to the fine-tuned baseline, and an average row;
F1 is the mean ± std over seeds. index.html is self-contained (the plots are
inlined), so it can be mailed or attached to an issue as one file.
"""

from __future__ import annotations

from ndogo.report.build import write_report

__all__ = ["write_report"]
