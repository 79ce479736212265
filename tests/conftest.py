"""Shared fixtures: small simulated cohorts, generated once per test session.

Tests must not modify these datasets (copy them first).
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from bids_factory import write_tree

from bids_stroke.simulate import simulate_cohort

#: The real ISLES 2022 case shipped with the tests (see tests/data/isles22/ATTRIBUTION.md).
ISLES = Path(__file__).parent / "data" / "isles22"
ISLES_STEM = "sub-strokecase0009_ses-0001"


@pytest.fixture(scope="session")
def simulated_cohort(tmp_path_factory):
    """Four subjects on three sites (4D single-shell, trace-only, multi-shell)."""
    out = tmp_path_factory.mktemp("sim") / "cohort"
    return simulate_cohort(out, n_subjects=4, n_sites=3, seed=3, downsample=2)


@pytest.fixture(scope="session")
def simulated_cohort_session(tmp_path_factory):
    """Another seed, with a session and two sites."""
    out = tmp_path_factory.mktemp("sim") / "cohort_ses"
    return simulate_cohort(out, n_subjects=3, n_sites=2, seed=4, session="01",
                           downsample=2)


@pytest.fixture(scope="session")
def isles_ds(tmp_path_factory):
    """The real ISLES 2022 case arranged as a BIDS dataset with a lesion derivative.

    Trace (b = 800 in its sidecar) and ADC as ``rec-TRACE``/``rec-ADC`` DWI without
    bval/bvec, the expert mask as ``label-lesion_mask`` in ``derivatives/lesions``.
    """
    root = tmp_path_factory.mktemp("isles") / "bids"
    dwi_dir = root / "sub-strokecase0009" / "ses-0001" / "dwi"
    lesion_dir = root / "derivatives" / "lesions" / "sub-strokecase0009" / "ses-0001" / "dwi"
    dwi_dir.mkdir(parents=True)
    lesion_dir.mkdir(parents=True)
    write_tree(root, {
        "dataset_description.json": {"Name": "ISLES22 case", "BIDSVersion": "1.10.0"},
        "participants.tsv": "participant_id\nsub-strokecase0009\n",
        "derivatives/lesions/dataset_description.json": {
            "Name": "ISLES22 masks", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "ISLES22 experts"}]},
    })
    for src, dst in [("dwi", "rec-TRACE_dwi"), ("adc", "rec-ADC_dwi")]:
        for ext in (".nii.gz", ".json"):
            (dwi_dir / f"{ISLES_STEM}_{dst}{ext}").symlink_to(ISLES / f"{ISLES_STEM}_{src}{ext}")
    (lesion_dir / f"{ISLES_STEM}_label-lesion_mask.nii.gz").symlink_to(
        ISLES / f"{ISLES_STEM}_msk.nii.gz")
    return root


@pytest.fixture(scope="session")
def untrained_bundle(tmp_path_factory):
    """A two-variant ensemble bundle with random weights, on the real 96×96×24 grid.

    Enough to exercise ``--model`` (shapes, files, checksums, attention maps); its
    probabilities mean nothing.
    """
    from bids_stroke.model.bundle import save_bundle
    from bids_stroke.model.variants import build_variant

    out = tmp_path_factory.mktemp("bundle") / "ensemble"
    models = [build_variant(name, seed=i) for i, name in enumerate(("f8-g1.5", "f8-g1.5-bn"))]
    save_bundle(models, out, threshold=0.5, cohort={"n": 0, "sites": [], "prevalence": 0.0}, seed=0)
    return out


def _slurm_local_script() -> Path | None:
    """The shared single-node SLURM helper, if this machine has it."""
    candidates = [os.environ.get("BIDS_STROKE_SLURM_LOCAL", "")]
    candidates += [str(parent / "shared" / "tools" / "slurm" / "slurm-local.sh")
                   for parent in Path(__file__).resolve().parents]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running SLURM cluster: the environment variables its clients need.

    Uses a cluster that ``sinfo`` already reaches, else starts the single-node cluster of
    ``shared/tools/slurm/slurm-local.sh`` (root only; stopped again at the end).
    """
    if shutil.which("sinfo") and subprocess.run(["sinfo"], capture_output=True, check=False).returncode == 0:
        yield {"LOGNAME": os.environ.get("LOGNAME") or getpass.getuser()}
        return
    script = _slurm_local_script()
    if script is None or os.geteuid() != 0:
        pytest.skip("no SLURM cluster: neither a reachable one (sinfo) nor shared/tools/slurm/slurm-local.sh "
                    "run as root (set BIDS_STROKE_SLURM_LOCAL to the script)")
    started = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        pytest.skip(f"{script} start failed: {(started.stderr or started.stdout).strip().splitlines()[-1:]}")
    env_line = subprocess.run(["bash", str(script), "env"], capture_output=True, text=True, check=True).stdout
    settings = dict(re.findall(r"(SLURM_CONF)=(\S+)", env_line))
    settings["LOGNAME"] = os.environ.get("LOGNAME") or getpass.getuser()
    try:
        yield settings
    finally:
        subprocess.run(["bash", str(script), "stop"], capture_output=True, check=False)
