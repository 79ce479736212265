"""Reports: figures and the participant and group HTML reports."""

from bids_stroke.report.html import (
    find_subjects,
    write_citation,
    write_group_report,
    write_participant_report,
    write_reports,
)

__all__ = [
    "find_subjects",
    "write_citation",
    "write_group_report",
    "write_participant_report",
    "write_reports",
]
