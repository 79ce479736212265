"""The semi-synthetic cohort: plan, per-subject simulation, and the BIDS dataset.

The outcome reaches the images only through the real lesion: which SOOP patients are
used, their order, their site and every random parameter of a subject (pose,
deformation, diffusivity, bias field, noise) come from the cohort seed and the subject
index alone, never from the outcome or any clinical value.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_stroke import __version__
from bids_stroke.bids.dataset import BIDS_VERSION, CODE_URL
from bids_stroke.errors import UsageError
from bids_stroke.simulate import acquire, sources as src, writers as w
from bids_stroke.simulate.anatomy import TEMPLATE_SPACE, TISSUES, Anatomy, load_anatomy
from bids_stroke.simulate.sites import SiteProfile, gradient_table, native_affine, site_profiles
from bids_stroke.simulate.truth import TRUTH_DIR, truth_paths
from bids_stroke.simulate.warp import random_warp

GENERATOR = "bids-stroke-simulate"
#: Lesion fraction at or above which a native voxel belongs to the native lesion mask.
MASK_THRESHOLD = 0.5
#: Participants-table columns, in order.
PARTICIPANT_COLUMNS = ("participant_id", "site", "mrs", "age", "nihss", "sex")
_LABEL = re.compile(r"^[A-Za-z0-9]+$")


@dataclass(frozen=True)
class SubjectPlan:
    """What to simulate for one subject.

    Attributes
    ----------
    index : int
        0-based position in the cohort.
    label : str
        Subject label without ``sub-``.
    source : Source
        The real lesion and clinical values.
    site : SiteProfile
    seed : tuple of 2 int
        ``(cohort seed, index)``: seeds the subject's random generator.
    """

    index: int
    label: str
    source: src.Source
    site: SiteProfile
    seed: tuple


def check_arguments(*, n_subjects, n_sites, seed, session, n_jobs, downsample) -> None:
    """Raise UsageError naming the first bad argument (no I/O)."""
    def need(ok, name, allowed, value):
        if not ok:
            raise UsageError(f"'{name}' must be {allowed}. Got {value!r} instead.")

    need(isinstance(n_subjects, int) and n_subjects >= 1, "n_subjects", "an integer >= 1",
         n_subjects)
    need(isinstance(n_sites, int) and 1 <= n_sites <= 99, "n_sites", "an integer in 1..99",
         n_sites)
    need(isinstance(seed, int) and seed >= 0, "seed", "an integer >= 0", seed)
    need(session is None or bool(_LABEL.match(str(session))), "session",
         "an alphanumeric label", session)
    need(isinstance(n_jobs, int) and n_jobs >= 1, "n_jobs", "an integer >= 1", n_jobs)
    need(isinstance(downsample, int) and 1 <= downsample <= 8, "downsample",
         "an integer in 1..8", downsample)
    need(n_sites <= n_subjects, "n_sites", f"at most n_subjects ({n_subjects})", n_sites)


def plan_cohort(sources, *, n_subjects: int, n_sites: int, seed: int,
                downsample: int = 1) -> list[SubjectPlan]:
    """Choose the patients, their order and their sites from the seed alone.

    Parameters
    ----------
    sources : list of Source
        Available patients (their outcome is not looked at).
    n_subjects, n_sites, seed : int
    downsample : int, default=1
        In-plane matrix reduction of every site (see :meth:`SiteProfile.downsampled`).

    Returns
    -------
    list of SubjectPlan
    """
    if n_subjects > len(sources):
        raise UsageError(
            f"'n_subjects' must be at most the {len(sources)} lesion masks with an mRS. "
            f"Got {n_subjects} instead; give more masks with --lesions/--participants."
        )
    rng = np.random.default_rng([seed, 0xC0])
    chosen = rng.permutation(len(sources))[:n_subjects]
    sites = [p.downsampled(downsample) for p in site_profiles(n_sites, seed)]
    site_of = rng.permutation(np.arange(n_subjects) % n_sites)
    width = max(3, len(str(n_subjects)))
    return [
        SubjectPlan(index=i, label=f"{i + 1:0{width}d}", source=sources[int(chosen[i])],
                    site=sites[int(site_of[i])], seed=(seed, i))
        for i in range(n_subjects)
    ]


def simulate_subject(plan: SubjectPlan, anatomy: Anatomy) -> dict:
    """Simulate one subject's images (no file is written).

    Parameters
    ----------
    plan : SubjectPlan
    anatomy : Anatomy

    Returns
    -------
    dict
        ``images``: name -> (array, affine) of the BIDS images (``dwi`` 4D int16, or
        ``trace`` and ``adc`` 3D int16); ``mask``: native lesion mask (uint8);
        ``lesion``: template lesion (uint8); ``warp``; ``affine``; ``bvals``; ``bvecs``;
        ``params``: the subject's random parameters.
    """
    site = plan.site
    rng = np.random.default_rng(list(plan.seed))
    warp = random_warp(rng, anatomy.shape, anatomy.affine)
    jitter = rng.uniform(-5, 5, 3)
    adc_scale = float(rng.normal(1.0, 0.03))
    idx = np.argwhere(anatomy.brain)
    center_vox = (idx.min(0) + idx.max(0)) / 2.0
    center_t = anatomy.affine[:3, :3] @ center_vox + anatomy.affine[:3, 3]
    a_inv = np.linalg.inv(warp.scanner_to_template)
    center = a_inv[:3, :3] @ center_t + a_inv[:3, 3] + jitter
    affine = native_affine(site, center)
    bvals, bvecs = gradient_table(site)

    img = nib.load(str(plan.source.mask_path))
    lesion = src.lesion_on_template(np.asarray(img.dataobj), img.affine, anatomy.brain,
                                    anatomy.affine)
    signal, lfrac = acquire.sample_native(anatomy, lesion, warp, affine, site,
                                          sorted(set(bvals.tolist())), adc_scale=adc_scale)
    bias = acquire.bias_field(site.shape, rng)
    series = acquire.acquire_series(signal, bias, site, bvals, rng)
    if site.kind == "trace":
        b = site.bvals[0]
        trace, adc = acquire.trace_and_adc(series, bvals, b, floor=0.15 * site.scale)
        images = {"trace": acquire.to_int16(trace), "adc": acquire.to_int16(adc)}
    else:
        images = {"dwi": acquire.to_int16(series)}
    return {
        "images": images,
        "mask": (lfrac >= MASK_THRESHOLD).astype(np.uint8),
        "lesion": lesion,
        "warp": warp,
        "affine": affine,
        "bvals": bvals,
        "bvecs": bvecs,
        "params": {"adc_scale": adc_scale, "fov_center_jitter_mm": jitter.tolist()},
    }


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


def write_subject(out_dir: Path, plan: SubjectPlan, result: dict, session, anatomy) -> dict:
    """Write one subject's BIDS, derivative and truth files; return its truth row."""
    site, label = plan.site, plan.label
    dwi_dir = w.subject_dir(out_dir, label, session)
    stem = w.bids_stem(label, session)
    aff = result["affine"]
    if site.kind == "trace":
        b = int(site.bvals[0])
        w.write_nifti(dwi_dir / f"{w.bids_stem(label, session, rec='TRACE')}_dwi.nii.gz",
                      result["images"]["trace"], aff)
        w.write_json(dwi_dir / f"{w.bids_stem(label, session, rec='TRACE')}_dwi.json",
                     _sidecar(site, {"DiffusionBValue": b,
                                     "ImageType": ["DERIVED", "PRIMARY", "DIFFUSION",
                                                   "TRACEW"]}))
        w.write_nifti(dwi_dir / f"{w.bids_stem(label, session, rec='ADC')}_dwi.nii.gz",
                      result["images"]["adc"], aff)
        w.write_json(dwi_dir / f"{w.bids_stem(label, session, rec='ADC')}_dwi.json",
                     _sidecar(site, {"DiffusionBValue": b,
                                     "ImageType": ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"],
                                     "ADCUnits": "1e-6 mm^2/s"}))
    else:
        w.write_nifti(dwi_dir / f"{stem}_dwi.nii.gz", result["images"]["dwi"], aff)
        w.write_json(dwi_dir / f"{stem}_dwi.json", _sidecar(site))
        w.write_text(dwi_dir / f"{stem}_dwi.bval",
                     " ".join(str(int(b)) for b in result["bvals"]) + "\n")
        w.write_text(dwi_dir / f"{stem}_dwi.bvec", "".join(
            " ".join(f"{v:.6f}".rstrip("0").rstrip(".") if v else "0" for v in row) + "\n"
            for row in result["bvecs"]))
    der = w.subject_dir(Path(out_dir) / "derivatives" / "lesions", label, session)
    w.write_nifti(der / f"{w.bids_stem(label, session, label='lesion')}_mask.nii.gz",
                  result["mask"], aff)

    paths = truth_paths(out_dir, label, session)
    w.write_nifti(paths["lesion"], result["lesion"], anatomy.affine, code=4)
    warp = result["warp"]
    field = np.moveaxis(warp.field, 0, -1)[:, :, :, None, :].astype(np.float32)
    w.write_nifti(paths["field"], field, warp.field_affine, code=4, intent="vector")
    w.write_json(paths["json"], {
        "participant_id": f"sub-{label}",
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
        "participant_id": f"sub-{label}", "session": session or "n/a",
        "soop_id": plan.source.soop_id, "site": site.name,
        "seed": f"{plan.seed[0]}-{plan.seed[1]}", "subject_index": plan.index,
        "lesion_volume_template_ml": round(float(result["lesion"].sum()) / 1000.0, 3),
        "lesion_volume_native_ml": round(float(result["mask"].sum()) * vox_ml, 3),
    }


def _run_one(args):
    out_dir, plan, session = args
    anatomy = load_anatomy()
    return write_subject(out_dir, plan, simulate_subject(plan, anatomy), session, anatomy)


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
- `derivatives/lesions/`: the lesion mask on each DWI grid.
- `truth/` (outside BIDS): template-space lesions, the native-to-template transforms and
  the simulation parameters.

Cite: Absher et al., "The stroke outcome optimization project: acute ischemic strokes
from a comprehensive stroke center", Scientific Data 2024.
"""


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
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


def simulate_cohort(out_dir, *, n_subjects: int, n_sites: int, seed: int,
                    session: str | None = None, lesions_dir=None, participants_tsv=None,
                    n_jobs: int = 1, downsample: int = 1, overwrite: bool = False) -> Path:
    """Write a semi-synthetic BIDS cohort.

    Parameters
    ----------
    out_dir : path-like
        Output folder; must be absent or empty (see ``overwrite``).
    n_subjects : int
        Number of subjects (at most the number of masks with an mRS).
    n_sites : int
        Number of scanner profiles (sites); at most ``n_subjects``.
    seed : int
        Cohort seed (>= 0). Same seed and arguments give byte-identical files.
    session : str or None, default=None
        Session label; every file goes under ``ses-<session>``.
    lesions_dir, participants_tsv : path-like or None, default=None
        Lesion masks and the participants table (columns ``participant_id``,
        ``gs_rankin_6isdeath``, optionally ``age``, ``nihss``, ``sex``). Both None: the
        40 shipped SOOP masks.
    n_jobs : int, default=1
        Subjects simulated in parallel (processes).
    downsample : int, default=1
        Divide every site's in-plane matrix by this (coarser, faster; for tests/demos).
    overwrite : bool, default=False
        Replace ``out_dir`` if it holds a previous simulated cohort.

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    UsageError, MissingInputError, BadInputError
        Before anything is written.

    Examples
    --------
    >>> simulate_cohort("/tmp/cohort", n_subjects=4, n_sites=2, seed=0)  # doctest: +SKIP
    """
    check_arguments(n_subjects=n_subjects, n_sites=n_sites, seed=seed, session=session,
                    n_jobs=n_jobs, downsample=downsample)
    if (lesions_dir is None) != (participants_tsv is None):
        raise UsageError("Give both --lesions and --participants, or neither (the "
                         "shipped SOOP masks).")
    shipped = lesions_dir is None
    if shipped:
        lesions_dir = src.shipped_dir() / "lesions"
        participants_tsv = src.shipped_dir() / "participants.tsv"
    sources = src.read_sources(lesions_dir, participants_tsv)
    plans = plan_cohort(sources, n_subjects=n_subjects, n_sites=n_sites, seed=seed,
                        downsample=downsample)
    for plan in plans:
        src.check_mask_header(plan.source.mask_path)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, overwrite)

    anatomy = load_anatomy()
    if out_dir.is_dir() and overwrite:
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(out_dir, plan, session) for plan in plans]
    if n_jobs == 1:
        rows = [write_subject(out_dir, p, simulate_subject(p, anatomy), session, anatomy)
                for p in plans]
    else:
        ctx = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(n_jobs, mp_context=ctx) as pool:
            rows = list(pool.map(_run_one, jobs))
    _write_dataset_files(out_dir, plans, rows, seed=seed, n_sites=n_sites,
                         session=session, downsample=downsample,
                         lesion_source="shipped SOOP subset" if shipped
                         else Path(lesions_dir).name)
    return out_dir


def _write_dataset_files(out_dir, plans, rows, *, seed, n_sites, session, downsample,
                         lesion_source):
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
        (f"sub-{p.label}", p.site.name, p.source.mrs, p.source.age, p.source.nihss,
         p.source.sex) for p in plans])
    w.write_json(out_dir / "participants.json", _PARTICIPANTS_JSON)
    der = out_dir / "derivatives" / "lesions"
    w.write_json(der / "dataset_description.json", {
        "Name": "Native-space lesion masks of the simulated cohort",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": generated,
        "SourceDatasets": [{"URL": "../../"}],
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
