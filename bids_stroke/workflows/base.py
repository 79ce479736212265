"""Top-level orchestration of one run: checks common to both levels, then the level.

The order of the checks is the order of the exit codes a user meets: usage and output
folder (64, 73), not-yet-provided stages (1), the dataset (66, 16), the selection (18),
each participant's inputs (65, 66). Nothing is written before every check has passed.
"""

from __future__ import annotations

import functools
import logging

from bids_stroke.bids.dataset import check_output_apart, check_output_dir
from bids_stroke.bids.layout import DwiInputs, collect_data, load_layout, select_subjects
from bids_stroke.bids.naming import derivative_folder, participant_id, participant_label, run_path, session_id
from bids_stroke.bids.nifti import check_nifti, check_same_grid
from bids_stroke.bids.validation import validate_bids
from bids_stroke.config import Config
from bids_stroke.errors import BadInputError, BidsStrokeError, ExitCode
from bids_stroke.workflows.execution import run_tmp

LOGGER = logging.getLogger("bids_stroke")


class ParticipantsFailed(BidsStrokeError):
    """Some participants failed; the others were processed (exit 65 when all failures are
    unusable inputs, else 1)."""


def run(config: Config) -> None:
    """Run the analysis level that ``config`` asks for.

    Raises
    ------
    bids_stroke.errors.BidsStrokeError
        With the exit code of the first check that failed.
    """
    if config.lesion_dir:  # before check_output_dir, which would see another pipeline's outputs
        check_output_apart(config.output_dir, [config.lesion_dir])
    check_output_dir(config.bids_dir, config.output_dir)
    if config.reports_only:
        from bids_stroke.report import write_reports

        subjects = config.participant_label or None
        for report in write_reports(config.output_dir, subjects=subjects, **_report_processes(config)):
            LOGGER.info("Report: %s", report)
        return
    if config.model is not None:
        from bids_stroke.model.bundle import load_bundle

        bundle = load_bundle(config.model)  # checksums and safe loading, before any work
        LOGGER.info("Model: %s (%d variants, threshold %.3f).", bundle.path, len(bundle.names),
                    bundle.threshold)
        from bids_stroke.report.model_card import card_summary

        summary = card_summary(bundle.manifest)
        LOGGER.info("Model card: %s", summary or "none (the bundle was written without one).")
        protocol = bundle.manifest.get("extra", {}).get("protocol", {})
        if protocol.get("name") == "reduced":
            LOGGER.warning("The model was trained with a reduced protocol (%s): its predictions "
                           "are for demonstration only.", "; ".join(protocol["deviations"]))
    layout = load_layout(config.bids_dir, lesion_dir=config.lesion_dir)
    check_output_apart(config.output_dir, [deriv.root for deriv in layout.derivatives.values()])
    with run_tmp():
        if config.analysis_level == "participant":
            run_participant_level(config, layout)
        else:
            from bids_stroke.workflows.group import run_group_level

            run_group_level(config)


def _report_processes(config: Config) -> dict:
    """How reports are drawn in parallel: ``--nprocs`` workers, logging as this process does."""
    from bids_stroke.cli import setup_logging

    return {"n_procs": config.resolved_nprocs(), "initializer": functools.partial(setup_logging, config.verbose)}


def run_participant_level(config: Config, layout) -> None:
    """Validate, select, check every participant's inputs, then run their workflows.

    A participant whose inputs are unusable is reported and skipped; the others go on.
    The run ends with a summary table (printed, and written to ``logs/``) and raises
    :class:`ParticipantsFailed` when any participant failed.
    """
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
    failures: dict[tuple[str, str | None], BidsStrokeError] = {}
    checked: list[DwiInputs] = []
    for subject, session in selected:
        name = participant_label({"subject": subject, "session": session})
        inputs = None
        try:
            inputs = collect_data(layout, subject, session, bids_filters=config.bids_filters or None)
            check_inputs(inputs)
            lesion_info = check_lesion(inputs, config)
        except BidsStrokeError as exc:
            LOGGER.error("%s: %s", name, exc)
            failures[(subject, session)] = exc
            continue
        except Exception as exc:  # noqa: BLE001 - one participant's unforeseen problem stops it alone
            error = unexpected_failure("checking the inputs", exc, inputs)
            LOGGER.error("%s: %s", name, error)
            LOGGER.debug("%s", name, exc_info=exc)
            failures[(subject, session)] = error
            continue
        checked.append(inputs)
        LOGGER.info("%s: %s", name, describe_inputs(inputs))
        if lesion_info.get("LesionMaskType") == "probability":
            LOGGER.warning("%s: %s is a probability map, not a binary mask: lesion where >= %g.", name,
                           inputs.lesion_mask, lesion_info["LesionThreshold"])
        if inputs.lesion_mask is None:
            LOGGER.warning("%s: no lesion mask found: no lesion measures, and the intensity "
                           "reference is the whole brain.", name)
    if not checked:
        quarantine_failed(config, failures)
        raise next(iter(failures.values()))

    from bids_stroke.bids.writers import remove_partial_writes
    from bids_stroke.workflows.participant_run import run_participants

    for inputs in checked:  # what a killed run was writing for them
        remove_partial_writes(derivative_folder(config.output_dir, inputs.subject, inputs.session))
    run_failures = run_participants(config, checked)
    failures.update(run_failures)
    moved = quarantine_failed(config, failures)
    rows = [
        {
            "participant_id": participant_id(subject),
            "session": session_id(session) or "n/a",
            "status": "failed" if (subject, session) in failures else "done",
            "exit_code": int(failures[(subject, session)].exit_code) if (subject, session) in failures else 0,
            "reason": str(failures[(subject, session)]).splitlines()[0] if (subject, session) in failures else "",
            "outputs_moved_to": moved.get((subject, session), "n/a"),
        }
        for subject, session in selected
    ]
    report_summary(config, rows)
    from bids_stroke.report import write_participant_reports

    done = [(inputs.subject, inputs.session) for inputs in checked
            if (inputs.subject, inputs.session) not in failures]
    for report in write_participant_reports(config.output_dir, done, **_report_processes(config)):
        LOGGER.info("Report: %s", report)
    if failures:
        codes = {int(exc.exit_code) for exc in failures.values()}
        first_key = next(key for key in selected if key in failures)
        first = participant_label({"subject": first_key[0], "session": first_key[1]})
        error = ParticipantsFailed(
            f"{len(failures)} of {len(selected)} participant(s) failed (see the summary above); "
            f"first: {first}: {str(failures[first_key]).splitlines()[0]}"
        )
        # one kind of failure keeps its code (65 unusable inputs, 73 full disk, ...), else 1
        error.exit_code = ExitCode(codes.pop()) if len(codes) == 1 else ExitCode.FAILURE
        raise error


def unexpected_failure(step: str, exc: BaseException, inputs: DwiInputs | None) -> BidsStrokeError:
    """One participant's unforeseen error as its failure (exit 1), naming the step and input."""
    source = f" (input {inputs.dwi or inputs.trace})" if inputs is not None else ""
    return BidsStrokeError(f"{step}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                           f"{source}; run with -v for the traceback")


def quarantine_failed(config: Config, failures: dict) -> dict[tuple[str, str | None], str]:
    """Move the outputs of every failed participant to ``logs/failed-<run_id>/``.

    Whatever an earlier run left for them, and what this run wrote before failing, would
    otherwise be read by the group level and the reports
    (:func:`~bids_stroke.bids.dataset.quarantine_outputs`).

    Returns
    -------
    dict
        ``(subject, session) -> folder`` (relative to OUTPUT_DIR) for those with outputs moved.
    """
    from bids_stroke.bids.dataset import quarantine_outputs

    folder = run_path(config.output_dir, "quarantine", run_id=config.run_id)
    moved = {}
    for subject, session in failures:
        files = quarantine_outputs(config.output_dir, subject, session, folder)
        if files:
            who = participant_label({"subject": subject, "session": session})
            LOGGER.warning("%s: failed, so its %d output file(s) were moved to %s.", who, len(files), folder)
            moved[(subject, session)] = str(folder.relative_to(config.output_dir))
    return moved


def report_summary(config: Config, rows: list[dict]) -> None:
    """Log the per-participant summary table and write it to ``logs/``."""
    import pandas as pd

    from bids_stroke.bids.writers import write_tsv

    table = pd.DataFrame(rows, columns=["participant_id", "session", "status", "exit_code", "reason",
                                        "outputs_moved_to"])
    width = max(len(r["participant_id"]) + len(r["session"]) for r in rows) + 4
    LOGGER.info("Summary:")
    for row in rows:
        where = row["participant_id"] + ("" if row["session"] == "n/a" else f" {row['session']}")
        LOGGER.info("  %-*s %-6s %s", width, where, row["status"], row["reason"])
    write_tsv(run_path(config.output_dir, "participant_summary", run_id=config.run_id), table)


def check_inputs(inputs: DwiInputs) -> None:
    """Check that every input image of one participant reads, and the lesion mask's grid.

    Raises
    ------
    bids_stroke.errors.BadInputError
        (exit 65) naming the file that is not a readable NIfTI, the mask whose grid
        differs from the DWI's, or the trace image whose b-value is unknown.
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
    reference = images["dwi"] if inputs.kind == "4d" else images["trace"]
    for kind, name in (("adc", "ADC map"), ("lesion", "lesion mask"), ("brain_mask", "brain mask")):
        if kind in images:
            check_same_grid(images[kind], reference, name=name)
    if inputs.kind == "trace" and inputs.trace_b_value is None:
        raise BadInputError(
            f"{inputs.trace}: the b-value of this trace image is unknown; give it in its JSON "
            "sidecar (\"DiffusionBValue\": 1000) or in a .bval file."
        )


def check_lesion(inputs: DwiInputs, config: Config) -> dict:
    """Check the given lesion mask's values before any work (its file is named in the error).

    Returns
    -------
    dict
        How the mask will be made binary (:func:`~bids_stroke.interfaces.lesion.read_lesion_mask`);
        empty without a given mask, or when the run uses automatic masks only.

    Raises
    ------
    bids_stroke.errors.BadInputError
        (exit 65) a label map without ``--lesion-label``, NaN, 4D, whole field of view, ...
    """
    if inputs.lesion_mask is None or config.lesion_source == "auto":
        return {}
    from bids_stroke.interfaces.lesion import read_lesion_mask

    return read_lesion_mask(inputs.lesion_mask, label=config.lesion_label)[2]


def describe_inputs(inputs: DwiInputs) -> str:
    """One line describing what was found for one participant."""
    parts = ["4D DWI with bval/bvec" if inputs.kind == "4d" else "trace image"]
    if inputs.adc is not None:
        parts.append("ADC")
    parts.append("lesion mask" if inputs.lesion_mask is not None else "NO lesion mask")
    if inputs.brain_mask is not None:
        parts.append("brain mask")
    return ", ".join(parts)
