"""Top-level orchestration of one run: checks common to both levels, then the level.

The order of the checks is the order of the exit codes a user meets: usage and output
folder (64, 73), not-yet-provided stages (1), the dataset (66, 16), the selection (18),
each participant's inputs (65, 66). Nothing is written before every check has passed.
"""

from __future__ import annotations

import logging

from bids_stroke import __version__
from bids_stroke.bids.derivatives import check_output_dir
from bids_stroke.bids.layout import DwiInputs, collect_data, load_layout, select_subjects
from bids_stroke.bids.nifti import check_nifti, check_same_grid
from bids_stroke.bids.participants import read_participants
from bids_stroke.bids.validation import validate_bids
from bids_stroke.config import Config
from bids_stroke.errors import BidsStrokeError, NotImplementedStage

LOGGER = logging.getLogger("bids_stroke")


def run(config: Config) -> None:
    """Run the analysis level that ``config`` asks for.

    Raises
    ------
    bids_stroke.errors.BidsStrokeError
        With the exit code of the first check that failed.
    """
    check_output_dir(config.bids_dir, config.output_dir)
    if config.model is not None:
        raise NotImplementedStage(
            f"'--model' (prediction with a trained ensemble) is not implemented yet in "
            f"bids-stroke {__version__}; run without it."
        )
    layout = load_layout(config.bids_dir, lesion_dir=config.lesion_dir)
    if config.analysis_level == "participant":
        run_participant_level(config, layout)
    else:
        run_group_level(config)


def run_participant_level(config: Config, layout) -> None:
    """Validate the dataset, select participants and check each one's inputs."""
    if config.skip_bids_validation:
        LOGGER.info("BIDS validation skipped (--skip-bids-validation).")
    else:
        LOGGER.info("Validating %s with bids-validator-deno ...", config.bids_dir)
        for line in validate_bids(config.bids_dir):
            LOGGER.warning("BIDS validator: %s", line)
    selected = select_subjects(
        layout,
        participant_labels=config.participant_label or None,
        session_labels=config.session_label or None,
        bids_filters=config.bids_filters or None,
    )
    LOGGER.info("%d participant/session pair(s) selected.", len(selected))
    failures: list[tuple[str, BidsStrokeError]] = []
    checked: list[DwiInputs] = []
    for subject, session in selected:
        name = f"sub-{subject}" + (f" ses-{session}" if session else "")
        try:
            inputs = collect_data(layout, subject, session, bids_filters=config.bids_filters or None)
            check_inputs(inputs)
        except BidsStrokeError as exc:
            LOGGER.error("%s: %s", name, exc)
            failures.append((name, exc))
            continue
        checked.append(inputs)
        LOGGER.info("%s: %s", name, describe_inputs(inputs))
    if failures:
        raise failures[0][1]
    raise NotImplementedStage(
        f"participant-level preprocessing is not implemented yet in bids-stroke {__version__}: "
        f"the inputs of {len(checked)} participant/session pair(s) were found and checked; "
        "nothing was written."
    )


def run_group_level(config: Config) -> None:
    """Check participants.tsv for the group level's columns."""
    required = {
        config.site_column: "--site-column",
        config.outcome_column: "--outcome-column",
    }
    table = read_participants(config.bids_dir, required_columns=required)
    if config.aspects_column not in table.columns:
        LOGGER.info(
            "participants.tsv has no '%s' column: the ASPECTS baseline will be skipped.",
            config.aspects_column,
        )
    raise NotImplementedStage(
        f"group-level training and statistics are not implemented yet in bids-stroke {__version__}: "
        f"participants.tsv ({len(table)} rows) was checked; nothing was written."
    )


def check_inputs(inputs: DwiInputs) -> None:
    """Check that every input image of one participant reads, and the lesion mask's grid.

    Raises
    ------
    bids_stroke.errors.BadInputError
        (exit 65) naming the file that is not a readable NIfTI, or the lesion mask whose
        grid differs from the DWI's.
    """
    images = {
        kind: check_nifti(path)
        for kind, path in (
            ("dwi", inputs.dwi),
            ("trace", inputs.trace),
            ("adc", inputs.adc),
            ("lesion", inputs.lesion_mask),
            ("brain_mask", inputs.brain_mask),
        )
        if path is not None
    }
    reference = images.get("trace") or images.get("dwi")
    for kind in ("adc", "lesion", "brain_mask"):
        if kind in images:
            check_same_grid(images[kind], reference)


def describe_inputs(inputs: DwiInputs) -> str:
    """One line describing what was found for one participant."""
    parts = ["4D DWI with bval/bvec" if inputs.kind == "4d" else "trace image"]
    if inputs.adc is not None:
        parts.append("ADC")
    parts.append("lesion mask" if inputs.lesion_mask is not None else "NO lesion mask")
    if inputs.brain_mask is not None:
        parts.append("brain mask")
    return ", ".join(parts)
