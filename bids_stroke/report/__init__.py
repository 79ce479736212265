"""Reports: the participant and group HTML pages, their figures, and ``logs/CITATION.md``.

Reports are built only from files that already exist in OUTPUT_DIR, so that they can be
regenerated at any time (``--reports-only``) without recomputing anything: figures are
redrawn from the saved images and tables, and the HTML is rendered from jinja2 templates
shipped in ``bids_stroke/data/report_templates/``. What is missing (no ``--model`` at the
participant level, group level not run, ...) is said in the report instead of failing.

Each report is self-contained within OUTPUT_DIR: it refers to its figures and tables by
paths relative to OUTPUT_DIR's root (where the ``.html`` files are), and loads no script,
font or style sheet from elsewhere. The same outputs give byte-identical reports (no time
stamps; PNGs without metadata).

Layout
------
- ``OUTPUT_DIR/sub-<L>.html``, figures in ``OUTPUT_DIR/sub-<L>/figures/``
  (:mod:`~bids_stroke.report.participant`);
- ``OUTPUT_DIR/group.html``, figures in ``OUTPUT_DIR/group/`` (:mod:`~bids_stroke.report.group`);
- ``OUTPUT_DIR/logs/CITATION.md`` (:mod:`~bids_stroke.report.citation`), written with the
  group report.

Figures are drawn by :mod:`~bids_stroke.report.figures` (montages, QC slices) and
:mod:`~bids_stroke.report.plots` (probabilities, ROC, calibration).
"""

from bids_stroke.report.citation import citation_markdown, write_citation
from bids_stroke.report.common import find_subjects, software_versions
from bids_stroke.report.group import write_group_report
from bids_stroke.report.participant import write_participant_report, write_participant_reports
from bids_stroke.report.reports import write_reports

__all__ = [
    "citation_markdown",
    "find_subjects",
    "software_versions",
    "write_citation",
    "write_group_report",
    "write_participant_report",
    "write_participant_reports",
    "write_reports",
]
