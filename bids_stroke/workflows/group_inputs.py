"""What the group level reads: participants.tsv and the participant-level derivatives.

Each participant's files are found in OUTPUT_DIR by their entities
(:func:`~bids_stroke.bids.naming.find_derivatives`); the model-grid volumes of the
cohort are stacked once into the arrays every training job reads.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bids_stroke.bids.naming import (
    ANY,
    SOURCE_ENTITIES,
    derivative_path,
    find_derivatives,
    parse_derivative,
    subject_label,
)
from bids_stroke.bids.metadata import read_sidecar
from bids_stroke.bids.participants import read_participants
from bids_stroke.bids.writers import atomic_output
from bids_stroke.config import Config
from bids_stroke.errors import BadInputError

LOGGER = logging.getLogger("bids_stroke")


@dataclass
class GroupInputs:
    """The participants the group level trains on, and their files.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per participant: participant_id, subject, session, site, mrs, outcome
        (0/1), lesion_volume_ml, side, lesion_source (given, auto or none), and the paths
        ``preproc``, ``reference`` (an image on the native grid), ``transform`` (native → template), ``source`` (a file
        whose entities name the participant's outputs); plus the other participants.tsv
        columns.
    excluded : list of (str, str)
        (participant_id, reason) of the participants left out.
    space : str
        The template space of the participant-level outputs.
    """

    table: pd.DataFrame
    excluded: list
    space: str


def _mrs_values(values: pd.Series, column: str, path: Path) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = values[values.notna() & (numeric.isna() | (numeric % 1 != 0) | (numeric < 0) | (numeric > 6))]
    if len(bad):
        shown = ", ".join(f"{pid}={val!r}" for pid, val in list(bad.items())[:5])
        raise BadInputError(
            f"{path}: column '{column}' must hold mRS grades 0-6 (integers). Got {shown} instead."
        )
    return numeric


def collect_group_inputs(config: Config) -> GroupInputs:
    """Gather participants.tsv and each participant's derivatives; list who is left out.

    Raises
    ------
    BadInputError
        (exit 65) a missing column, an outcome that is not an mRS grade, no participant
        with both an outcome and the participant-level outputs.
    """
    tsv = Path(config.bids_dir) / "participants.tsv"
    required = {config.site_column: "--site-column", config.outcome_column: "--outcome-column"}
    participants = read_participants(config.bids_dir, required_columns=required,
                                     label_columns=[config.site_column])
    mrs = _mrs_values(participants[config.outcome_column], config.outcome_column, tsv)
    out = Path(config.output_dir)
    rows, excluded, spaces = [], [], set()
    for pid, row in participants.iterrows():
        if pd.isna(mrs[pid]):
            excluded.append((pid, f"no '{config.outcome_column}' value"))
            continue
        if pd.isna(row[config.site_column]):
            excluded.append((pid, f"no '{config.site_column}' value"))
            continue
        preprocs = find_derivatives(out, subject=subject_label(pid), space="model", desc="preproc",
                                    suffix="dwi", extension=".nii.gz")
        if not preprocs:
            excluded.append((pid, "no participant-level outputs (run the participant level first)"))
            continue
        if len(preprocs) > 1:
            LOGGER.warning("%s: %d sessions processed; the group level uses %s.", pid, len(preprocs),
                           preprocs[0].name)
        preproc = preprocs[0]
        measures, reference, transforms = _sibling_outputs(out, preproc)
        missing = [p.name for p in (measures, reference) if not p.is_file()] + ([] if transforms else ["transform"])
        if missing:
            excluded.append((pid, f"missing participant-level outputs: {', '.join(missing)}"))
            continue
        info = read_sidecar(measures)  # a damaged file: 65 naming it
        space = parse_derivative(transforms[0], out)["to"]
        spaces.add(space)
        rows.append({
            **{k: v for k, v in row.items()},
            "participant_id": pid,
            "site": str(row[config.site_column]),
            "mrs": int(mrs[pid]),
            "outcome": int(mrs[pid] >= config.poor_threshold),
            "lesion_volume_ml": info.get("LesionVolume"),
            "side": info.get("LesionSide") or "unknown",
            "lesion_source": info.get("LesionSource") or ("given" if info.get("LesionVolume") is not None
                                                          else "none"),
            "preproc": str(preproc),
            "reference": str(reference),
            "transform": str(transforms[0]),
            "source": str(preproc),
        })
    for pid, reason in excluded:
        LOGGER.warning("%s excluded: %s.", pid, reason)
    if not rows:
        raise BadInputError(f"{tsv}: no participant has both an outcome and participant-level outputs in {out}.")
    if len(spaces) > 1:
        raise BadInputError(f"{out}: participant-level outputs are in several template spaces ({sorted(spaces)}).")
    table = pd.DataFrame(rows).reset_index(drop=True)
    return GroupInputs(table=table, excluded=excluded, space=spaces.pop())


def _sibling_outputs(out: Path, preproc: Path) -> tuple[Path, Path, list[Path]]:
    """The lesion measures, the brain mask and the forward transforms beside ``preproc``.

    Parameters
    ----------
    out : pathlib.Path
        OUTPUT_DIR.
    preproc : pathlib.Path
        A participant's ``space-model_desc-preproc_dwi`` image in ``out``.

    Returns
    -------
    measures, reference : pathlib.Path
        Where the ``desc-lesion_measures.json`` and ``desc-brain_mask.nii.gz`` of the same
        participant (and session, acquisition, run) are, whether or not they exist.
    transforms : list of pathlib.Path
        The native → template transforms found (``from-dwi_to-<TPL>_mode-image_xfm``).
    """
    source = parse_derivative(preproc, out)
    measures = derivative_path(out, source, desc="lesion", suffix="measures", extension=".json")
    reference = derivative_path(out, source, desc="brain", suffix="mask", extension=".nii.gz")
    same_source = {key: source.get(key) for key in SOURCE_ENTITIES}
    transforms = find_derivatives(out, **same_source, **{"from": "dwi", "to": ANY, "mode": "image"},
                                  suffix="xfm", extension=".h5")
    return measures, reference, transforms


def write_arrays(table: pd.DataFrame, path: Path) -> str:
    """Stack the model-grid volumes and labels into one ``.npz``; return its SHA-256.

    Arrays: ``volumes`` (n, 96, 96, 24) float32, ``outcomes`` (n,), ``sites`` (n,),
    ``sides`` (n,), ``participant_ids`` (n,).
    """
    import nibabel as nib

    volumes = np.stack([np.asarray(nib.load(p).dataobj, dtype=np.float32) for p in table["preproc"]])
    arrays = {
        "volumes": volumes,
        "outcomes": table["outcome"].to_numpy(np.int64),
        "sites": table["site"].to_numpy(str),
        "sides": table["side"].to_numpy(str),
        "participant_ids": table["participant_id"].to_numpy(str),
    }
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    if not (path.is_file() and path.with_suffix(".sha256").is_file()
            and path.with_suffix(".sha256").read_text() == digest.hexdigest()):
        with atomic_output(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        with atomic_output(path.with_suffix(".sha256")) as tmp:
            tmp.write_text(digest.hexdigest())
    return digest.hexdigest()
