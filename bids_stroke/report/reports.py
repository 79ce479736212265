"""Every report that the outputs in OUTPUT_DIR allow (``--reports-only`` and the end of each level)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from bids_stroke.bids.naming import run_path, subject_label
from bids_stroke.report.common import find_subjects
from bids_stroke.report.group import write_group_report
from bids_stroke.report.participant import write_participant_reports

__all__ = ["write_reports"]


def write_reports(output_dir: str | os.PathLike, *, subjects: Iterable[str] | None = None, n_procs: int = 1,
                  initializer=None) -> list[Path]:
    """Write every report that the outputs in OUTPUT_DIR allow, recomputing nothing.

    Parameters
    ----------
    output_dir : path-like
        OUTPUT_DIR.
    subjects : iterable of str, default=None
        Participant labels (with or without ``sub-``); None means every participant with
        outputs (:func:`~bids_stroke.report.common.find_subjects`).
    n_procs : int, default=1
        Processes drawing the participant reports
        (:func:`~bids_stroke.report.participant.write_participant_reports`).
    initializer : callable, optional
        Run first in each of those processes.

    Returns
    -------
    list of pathlib.Path
        The participant reports, then ``logs/CITATION.md`` (written with the group
        report) and ``group.html``.
    """
    out = Path(output_dir)
    labels: Sequence[str] = find_subjects(out) if subjects is None else [subject_label(s) for s in subjects]
    written = write_participant_reports(out, [(label, None) for label in labels], n_procs=n_procs,
                                        initializer=initializer)
    group = write_group_report(out)
    return [*written, run_path(out, "citation"), group]
