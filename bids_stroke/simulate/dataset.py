"""The files of a simulated dataset: each subject's BIDS, lesion and truth files, and the
dataset-level files (descriptions, README, participants table, ground-truth tables).

Names come from :mod:`bids_stroke.bids.naming`, every file is written atomically by
:mod:`bids_stroke.simulate.writers`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bids_stroke import __version__
from bids_stroke.bids.dataset import BIDS_VERSION, CODE_URL
from bids_stroke.bids.naming import (
    LESION_DERIVATIVES,
    RAW_DATASET,
    TRUTH_DIR,
    bids_uri,
    derivative_path,
    participant_id,
    raw_path,
    sidecar_path,
)
from bids_stroke.errors import UsageError
from bids_stroke.simulate import acquire, writers as w
from bids_stroke.simulate.acquire import MASK_THRESHOLD
from bids_stroke.simulate.anatomy import TEMPLATE_SPACE, TISSUES
from bids_stroke.simulate.sites import SiteProfile
from bids_stroke.simulate.truth import truth_paths

if TYPE_CHECKING:
    from bids_stroke.simulate.cohort import SubjectPlan

__all__ = ["GENERATOR", "PARTICIPANT_COLUMNS", "check_out_dir",
           "write_dataset_files", "write_subject"]

GENERATOR = "bids-stroke-simulate"
#: Participants-table columns, in order.
PARTICIPANT_COLUMNS = ("participant_id", "site", "mrs", "age", "nihss", "sex")


def _sidecar(site: SiteProfile, extra=None) -> dict:
    meta = {
        "Manufacturer": site.manufacturer,
        "ManufacturersModelName": site.model,
        "MagneticFieldStrength": site.field_strength,
        "InstitutionName": f"Simulated {site.name}",
        "StationName": site.name,
        "MRAcquisitionType": "2D",
        "PulseSequenceType": "Spin-echo EPI",
        "ScanningSequence": "EP",
        "RepetitionTime": site.repetition_time,
        "EchoTime": site.echo_time,
        "FlipAngle": 90,
        "PhaseEncodingDirection": "j-",
        "TotalReadoutTime": 0.05,
        "SliceThickness": site.slice_thickness,
        "SpacingBetweenSlices": site.slice_thickness + site.slice_gap,
    }
    meta.update(extra or {})
    return meta


def _mask_sidecar(out_dir: Path, dwi: Path) -> dict:
    """The sidecar of a lesion mask of ``derivatives/lesions/``: a lesion mask, made from the
    DWI named by a BIDS URI into the raw dataset (``DatasetLinks`` of the lesion dataset)."""
    uri = bids_uri(dwi, Path(out_dir) / LESION_DERIVATIVES, {RAW_DATASET: out_dir})
    return {"Type": "Lesion", "Sources": [uri],
            "Description": f"Voxels whose simulated lesion fraction is at least {MASK_THRESHOLD}."}


def write_subject(out_dir: Path, plan: SubjectPlan, result: dict, session, anatomy) -> dict:
    """Write one subject's BIDS, derivative and truth files; return its truth row."""
    site, label = plan.site, plan.label
    aff = result["affine"]

    def dwi_path(extension, rec=None):
        return raw_path(out_dir, subject=label, session=session, reconstruction=rec,
                        datatype="dwi", suffix="dwi", extension=extension)

    if site.kind == "trace":
        b = int(site.bvals[0])
        w.write_nifti(dwi_path(".nii.gz", "TRACE"), result["images"]["trace"], aff)
        w.write_json(dwi_path(".json", "TRACE"),
                     _sidecar(site, {"DiffusionBValue": b,
                                     "ImageType": ["DERIVED", "PRIMARY", "DIFFUSION",
                                                   "TRACEW"]}))
        w.write_nifti(dwi_path(".nii.gz", "ADC"), result["images"]["adc"], aff)
        w.write_json(dwi_path(".json", "ADC"),
                     _sidecar(site, {"DiffusionBValue": b,
                                     "ImageType": ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"],
                                     "ADCUnits": "1e-6 mm^2/s"}))
    else:
        w.write_nifti(dwi_path(".nii.gz"), result["images"]["dwi"], aff)
        w.write_json(dwi_path(".json"), _sidecar(site))
        w.write_text(dwi_path(".bval"), " ".join(str(int(b)) for b in result["bvals"]) + "\n")
        w.write_text(dwi_path(".bvec"), "".join(
            " ".join(f"{v:.6f}".rstrip("0").rstrip(".") if v else "0" for v in row) + "\n"
            for row in result["bvecs"]))
    mask = derivative_path(Path(out_dir) / LESION_DERIVATIVES, subject=label, session=session,
                           label="lesion", suffix="mask", extension=".nii.gz")
    w.write_nifti(mask, result["mask"], aff)
    w.write_json(sidecar_path(mask), _mask_sidecar(
        out_dir, dwi_path(".nii.gz", "TRACE" if site.kind == "trace" else None)))

    paths = truth_paths(out_dir, label, session)
    w.write_nifti(paths["lesion"], result["lesion"], anatomy.affine, code=4)
    warp = result["warp"]
    field = np.moveaxis(warp.field, 0, -1)[:, :, :, None, :].astype(np.float32)
    w.write_nifti(paths["field"], field, warp.field_affine, code=4, intent="vector")
    w.write_json(paths["json"], {
        "participant_id": participant_id(label),
        "session": session,
        "soop_id": plan.source.soop_id,
        "subject_index": plan.index,
        "seed": list(plan.seed),
        "site": site.to_dict(),
        "template_space": TEMPLATE_SPACE,
        "scanner_to_template": warp.scanner_to_template.tolist(),
        "native_affine": aff.tolist(),
        "native_shape": list(site.shape),
        "lesion_mask_threshold": MASK_THRESHOLD,
        **result["params"],
    })
    vox_ml = abs(np.linalg.det(aff[:3, :3])) / 1000.0
    return {
        "participant_id": participant_id(label), "session": session or "n/a",
        "soop_id": plan.source.soop_id, "site": site.name,
        "seed": f"{plan.seed[0]}-{plan.seed[1]}", "subject_index": plan.index,
        "lesion_volume_template_ml": round(float(result["lesion"].sum()) / 1000.0, 3),
        "lesion_volume_native_ml": round(float(result["mask"].sum()) * vox_ml, 3),
    }


_PARTICIPANTS_JSON = {
    "participant_id": {"Description": "Simulated participant label."},
    "site": {"Description": "Simulated scanner (site) profile; see truth/simulation.json."},
    "mrs": {
        "Description": "Modified Rankin Scale of the source SOOP patient AT DISCHARGE "
                       "(SOOP column gs_rankin_6isdeath), used as a proxy of the 3-month "
                       "outcome. Poor outcome: mrs >= 3.",
        "Levels": {str(k): v for k, v in enumerate([
            "No symptoms", "No significant disability", "Slight disability",
            "Moderate disability", "Moderately severe disability", "Severe disability",
            "Death"])},
    },
    "age": {"Description": "Age of the source SOOP patient (89+ recorded as 89).",
            "Units": "year"},
    "nihss": {"Description": "NIH Stroke Scale at admission of the source SOOP patient."},
    "sex": {"Description": "Sex of the source SOOP patient.",
            "Levels": {"M": "male", "F": "female"}},
}

_README = """# Semi-synthetic acute stroke DWI cohort

Generated by bids-stroke-simulate (bids-stroke {version}) with seed {seed}: {n} subjects
on {k} simulated scanner profiles.

Each subject is the ICBM152 2009a symmetric template head (nilearn), deformed, moved,
and imaged with a site's scanner profile, carrying the REAL acute lesion of one patient
of the Stroke Outcome Optimization Project (SOOP, OpenNeuro ds004889, CC0; masks as
published by neurolabusc/StrokeOutcomeOptimizationProjectDemo, BSD-2-Clause). The
participants table gives that patient's real age, sex, NIHSS and modified Rankin Scale at
discharge (used as the outcome). Nothing in the images depends on the outcome except
through the lesion.

- Sites with 4D series write `_dwi.nii.gz` with `.bval`/`.bvec`; trace-only sites write
  `_rec-TRACE_dwi.nii.gz` (b-value in the sidecar's `DiffusionBValue`) and
  `_rec-ADC_dwi.nii.gz` (1e-6 mm^2/s) without bval/bvec in the subject folders, as
  clinical exports come; the dataset-level `rec-TRACE_dwi.bval/.bvec` and
  `rec-ADC_dwi.bval/.bvec` give their b-value (and a null direction) to every such image
  by BIDS inheritance, so that the dataset validates.
- `derivatives/lesions/`: the lesion mask on each DWI grid (sidecar: `"Type": "Lesion"`, its
  DWI in `Sources` as a BIDS URI into this dataset, `bids:raw:...`).
- `truth/` (outside BIDS): template-space lesions, the native-to-template transforms and
  the simulation parameters.

Cite: Absher et al., "The stroke outcome optimization project: acute ischemic strokes
from a comprehensive stroke center", Scientific Data 2024.
"""


def check_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Raise UsageError unless ``out_dir`` is absent, empty, or a cohort to overwrite."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"Output {out_dir} exists and is not a folder.")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise UsageError(
                f"Output folder {out_dir} is not empty. Choose a new folder, or pass "
                "--overwrite to replace a previous simulated cohort."
            )
        if not (out_dir / TRUTH_DIR / "simulation.json").is_file():
            raise UsageError(
                f"Output folder {out_dir} is not a simulated cohort (no "
                f"{TRUTH_DIR}/simulation.json): --overwrite only replaces those."
            )



def write_dataset_files(out_dir, plans, rows, *, seed, n_sites, session, downsample,
                         lesion_source):
    """Write the dataset-level files once every subject is written (``rows``: their truth)."""
    generated = [{"Name": GENERATOR, "Version": __version__, "CodeURL": CODE_URL}]
    w.write_json(out_dir / "dataset_description.json", {
        "Name": "bids-stroke semi-synthetic acute stroke DWI cohort",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "raw",
        "License": "CC0",
        "Authors": ["bids-stroke developers", "SOOP investigators (lesions, outcomes)"],
        "HowToAcknowledge": "Cite Absher et al., Scientific Data 2024 (SOOP) and "
                            "bids-stroke.",
        "ReferencesAndLinks": [
            "https://openneuro.org/datasets/ds004889",
            "https://github.com/neurolabusc/StrokeOutcomeOptimizationProjectDemo",
            "Absher et al., The stroke outcome optimization project: acute ischemic "
            "strokes from a comprehensive stroke center. Scientific Data 2024.",
            "Moulton et al., Interpretable deep learning for the prognosis of long-term "
            "functional outcome post-stroke using acute diffusion weighted imaging. "
            "JCBFM 2022.",
        ],
        "GeneratedBy": generated,
        "SourceDatasets": [{"URL": "https://openneuro.org/datasets/ds004889"}],
    })
    w.write_text(out_dir / "README", _README.format(
        version=__version__, seed=seed, n=len(plans), k=n_sites))
    w.write_text(out_dir / ".bidsignore", f"{TRUTH_DIR}\n")
    trace_b = sorted({int(p.site.bvals[0]) for p in plans if p.site.kind == "trace"})
    if len(trace_b) > 1:  # the profiles guarantee one b-value for every trace-only site
        raise ValueError(f"trace-only sites must share one b-value. Got {trace_b} instead.")
    for rec in ("TRACE", "ADC") if trace_b else ():
        # dataset-level files that every trace/ADC image inherits (BIDS inheritance principle)
        w.write_text(out_dir / f"rec-{rec}_dwi.bval", f"{trace_b[0]}\n")
        w.write_text(out_dir / f"rec-{rec}_dwi.bvec", "0\n0\n0\n")
    w.write_tsv(out_dir / "participants.tsv", PARTICIPANT_COLUMNS, [
        (participant_id(p.label), p.site.name, p.source.mrs, p.source.age, p.source.nihss,
         p.source.sex) for p in plans])
    w.write_json(out_dir / "participants.json", _PARTICIPANTS_JSON)
    der = out_dir / LESION_DERIVATIVES
    w.write_json(der / "dataset_description.json", {
        "Name": "Native-space lesion masks of the simulated cohort",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": generated,
        "SourceDatasets": [{"URL": "../../"}],
        "DatasetLinks": {RAW_DATASET: "../../"},
    })
    w.write_text(der / "README", "Lesion masks on each DWI grid: voxels whose simulated "
                 f"lesion fraction is at least {MASK_THRESHOLD}.\n")
    truth = out_dir / TRUTH_DIR
    header = list(rows[0].keys())
    w.write_tsv(truth / "subjects.tsv", header, [[r[h] for h in header] for r in rows])
    w.write_json(truth / "simulation.json", {
        "generator": GENERATOR, "version": __version__, "seed": seed,
        "n_subjects": len(plans), "n_sites": n_sites, "session": session,
        "downsample": downsample, "lesion_source": lesion_source,
        "template_space": TEMPLATE_SPACE,
        "lesion_mask_threshold": MASK_THRESHOLD,
        "slice_samples": acquire.N_SLICE_SAMPLES,
        "tissues": {k: {"s0": t.s0, "adc_mm2_per_s": t.adc} for k, t in TISSUES.items()},
        "sites": [s.to_dict() for s in sorted({p.site for p in plans},
                                              key=lambda s: s.name)],
    })
