"""The semi-synthetic cohort: the plan, each subject's images, and the run over subjects.

The outcome reaches the images only through the real lesion: which SOOP patients are
used, their order, their site and every random parameter of a subject (pose,
deformation, diffusivity, bias field, noise) come from the cohort seed and the subject
index alone, never from the outcome or any clinical value. The files are written by
:mod:`bids_stroke.simulate.dataset`.
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

from bids_stroke.errors import UsageError
from bids_stroke.simulate import acquire, sources as src
from bids_stroke.simulate.anatomy import Anatomy, load_anatomy
from bids_stroke.simulate.dataset import check_out_dir, write_dataset_files, write_subject
from bids_stroke.simulate.sites import SiteProfile, gradient_table, native_affine, site_profiles
from bids_stroke.simulate.warp import random_warp

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
        "mask": (lfrac >= acquire.MASK_THRESHOLD).astype(np.uint8),
        "lesion": lesion,
        "warp": warp,
        "affine": affine,
        "bvals": bvals,
        "bvecs": bvecs,
        "params": {"adc_scale": adc_scale, "fov_center_jitter_mm": jitter.tolist()},
    }


def _run_one(args):
    out_dir, plan, session = args
    anatomy = load_anatomy()
    return write_subject(out_dir, plan, simulate_subject(plan, anatomy), session, anatomy)


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
    check_out_dir(out_dir, overwrite)

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
    write_dataset_files(out_dir, plans, rows, seed=seed, n_sites=n_sites,
                         session=session, downsample=downsample,
                         lesion_source="shipped SOOP subset" if shipped
                         else Path(lesions_dir).name)
    return out_dir
