"""A catalogue of bad inputs: each one exits with its code and one line that names the culprit.

Every case builds (or rebuilds) a small dataset, breaks one thing, runs the command line
and checks:

- the exit code;
- exactly one line on stderr starting ``bids-stroke: error:``, which names the offending
  file or option and the reason (the case's needles);
- no ``Traceback`` on stderr;
- BIDS_DIR (and any input dataset outside it) is unchanged: same paths, same SHA-256;
- at the participant level, no output of the broken participant ``sub-02`` in OUTPUT_DIR;
  where the dataset also holds a healthy participant (a 4D series of the session's
  ``simulated_cohort``), that one completes: ``done`` in the run's summary table, and its
  outputs exist.

Cost: nearly every case fails in the checks that run before any processing (a second or
two). The healthy participant is processed once (:func:`baseline`); every later case
rebuilds BIDS_DIR at the same path with the same files for it and shares the nipype work
folder, so its steps are reused (the cache is keyed by input path and content) and only
its outputs are written again. The cases therefore run one after the other.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nb
import nipype.pipeline.engine  # noqa: F401  (see below)
import numpy as np
import pandas as pd
import pytest
from bids_factory import (
    AFFINE,
    BVALS,
    SHAPE,
    lesion_array,
    make_dataset,
    nifti,
    write_tree,
)

from bids_stroke.bids.naming import find_derivatives
from bids_stroke.cli import main
from bids_stroke.errors import ExitCode

# nipype (imported above) binds its log handler to the sys.stdout of its first import: that
# is the test session's stream here, not a test's captured one that is closed afterwards.

#: The broken participant of every participant-level case.
BAD = "02"

OK = ExitCode.SUCCESS
VALIDATION = ExitCode.VALIDATION_FAILED
LEVEL = ExitCode.UNKNOWN_LEVEL
NO_DATA = ExitCode.NO_DATA_SELECTED
USAGE = ExitCode.USAGE
BAD_INPUT = ExitCode.BAD_INPUT
MISSING = ExitCode.MISSING_INPUT


# ---------------------------------------------------------------------------------------
# helpers


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 (files), link target (symbolic links) or "dir"; links not followed."""
    entries = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                entries[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                entries[rel] = "dir"
            else:
                entries[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


def _raw_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _write_raw(path: Path, data: bytes) -> None:
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def patch_header(path: Path, **fields) -> None:
    """Set NIfTI-1 header fields of ``path`` in place, bytes as given (no nibabel fix-ups)."""
    raw = _raw_bytes(path)
    header = nb.Nifti1Header.from_fileobj(io.BytesIO(raw), check=False)
    for key, value in fields.items():
        header[key] = value
    _write_raw(path, header.binaryblock + raw[len(header.binaryblock):])


def truncate(path: Path, fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def save(path: Path, data, *, affine=AFFINE, dtype=None) -> None:
    data = np.asarray(data)
    nifti(data, affine=affine, dtype=dtype or data.dtype).to_filename(path)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("bids-stroke: error:")]


def summary(out: Path) -> dict[str, dict]:
    """The participant summary table of the (single) run that wrote ``out``."""
    tables = sorted((out / "logs").glob("participant-*_summary.tsv"))
    assert len(tables) == 1, tables
    table = pd.read_csv(tables[0], sep="\t", dtype=str, keep_default_na=False)
    return {row["participant_id"]: row for row in table.to_dict("records")}


def healthy_outputs(out: Path, label: str) -> list[Path]:
    """The participant-level outputs the group level needs, of ``label`` (missing ones left out)."""
    found = []
    for entities in ({"space": "model", "desc": "preproc", "suffix": "dwi", "extension": ".nii.gz"},
                     {"desc": "lesion", "suffix": "measures", "extension": ".json"},
                     {"desc": "brain", "suffix": "mask", "extension": ".nii.gz"},
                     {"suffix": "xfm", "extension": ".h5"}):
        found += find_derivatives(out, subject=label, **entities)[:1]
    return found


def lesion_measures(out: Path, label: str) -> dict:
    (path,) = find_derivatives(out, subject=label, desc="lesion", suffix="measures", extension=".json")
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------
# the shared folders and the healthy participant


@dataclass
class Lab:
    """Module-wide folders: BIDS_DIR (rebuilt by every case, always at the same path) and
    the nipype work folder; the healthy participant's source files."""

    root: Path
    source: Path | None = None  # a simulated cohort
    healthy: str | None = None  # label of its smallest 4D series

    @property
    def bids(self) -> Path:
        return self.root / "bids"

    @property
    def work(self) -> Path:
        return self.root / "work"

    def add_healthy(self, bids: Path, lesion_root: Path) -> None:
        shutil.copytree(self.source / f"sub-{self.healthy}", bids / f"sub-{self.healthy}")
        shutil.copytree(self.source / "derivatives" / "lesions" / f"sub-{self.healthy}",
                        lesion_root / f"sub-{self.healthy}")


def _smallest_series(cohort: Path) -> str:
    series = [p for p in cohort.glob("sub-*/dwi/sub-*_dwi.nii.gz") if "_rec-" not in p.name]
    best = min(series, key=lambda p: (int(np.prod(nb.load(p).shape)), p.name))
    return best.name.split("_")[0].removeprefix("sub-")


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    return Lab(tmp_path_factory.mktemp("bad_inputs"))


@pytest.fixture(scope="module")
def baseline(lab, simulated_cohort) -> Path:
    """The healthy participant processed alone: fills the work folder; its OUTPUT_DIR."""
    lab.source, lab.healthy = simulated_cohort, _smallest_series(simulated_cohort)
    ctx = Ctx(lab, "baseline", needs_healthy=True)
    ctx.build(subjects=(), healthy=True)
    code = main([str(a) for a in ctx.argv()])
    assert code == OK
    assert summary(ctx.out)[f"sub-{lab.healthy}"]["status"] == "done"
    return ctx.out


# ---------------------------------------------------------------------------------------
# one case


@dataclass
class Ctx:
    """What a case sets up: the dataset, the command line, what the run must leave."""

    lab: Lab
    name: str
    needs_healthy: bool = False
    level: str = "participant"
    args: list = field(default_factory=list)
    bids_arg: Path | None = None  # BIDS_DIR as given (default: lab.bids)
    out: Path | None = None
    validate: bool = False
    healthy: bool = False  # the dataset holds the healthy participant, which must complete
    bad: str | None = None  # the broken participant (no output of it may remain)
    inputs: list = field(default_factory=list)  # more input folders that must stay unchanged

    def __post_init__(self):
        if self.out is None:
            self.out = self.lab.root / "out" / self.name

    @property
    def bids(self) -> Path:
        return self.lab.bids

    @property
    def lesion_root(self) -> Path:
        return self.bids / "derivatives" / "lesions"

    def build(self, subjects=(BAD,), *, healthy=False, participants=None, **kwargs) -> Path:
        """(Re)write BIDS_DIR with ``subjects`` from :func:`make_dataset` (plus the healthy one)."""
        if self.bids.exists():
            shutil.rmtree(self.bids)
        make_dataset(self.bids, subjects=list(subjects), **kwargs)
        rows = [{"participant_id": f"sub-{s}", "site": "A", "mrs": 1} for s in subjects]
        if healthy:
            assert self.needs_healthy, "declare the case with healthy=True"
            lesion_root = Path(kwargs.get("lesion_dir") or self.lesion_root)
            self.lab.add_healthy(self.bids, lesion_root)
            rows.append({"participant_id": f"sub-{self.lab.healthy}", "site": "B", "mrs": 4})
            self.healthy = True
        write_tree(self.bids, {"participants.tsv": participants if participants is not None
                               else pd.DataFrame(rows, columns=["participant_id", "site", "mrs"])})
        self.bad = subjects[0] if subjects else None
        return self.bids

    # paths of the broken participant
    def raw(self, suffix: str, subject: str = BAD) -> Path:
        return self.bids / f"sub-{subject}" / "dwi" / f"sub-{subject}_{suffix}"

    def lesion(self, suffix: str = "label-lesion_mask.nii.gz", subject: str = BAD) -> Path:
        return self.lesion_root / f"sub-{subject}" / "dwi" / f"sub-{subject}_{suffix}"

    def healthy_mask(self) -> Path:
        return self.lesion("label-lesion_mask.nii.gz", subject=self.lab.healthy)

    def group(self, participants: pd.DataFrame | str | None, outputs=()) -> None:
        """A group-level case: BIDS_DIR with ``participants`` (None: no participants.tsv),
        OUTPUT_DIR with the baseline's outputs, copied under each label of ``outputs``."""
        self.level = "group"
        self.build(subjects=())
        if participants is None:
            (self.bids / "participants.tsv").unlink()
        elif isinstance(participants, str):
            (self.bids / "participants.tsv").write_text(participants)
        else:
            write_tree(self.bids, {"participants.tsv": participants})
        self.bad = None
        if outputs:
            base = self.lab.root / "out" / "baseline"
            shutil.copytree(base, self.out)
            source = f"sub-{self.lab.healthy}"
            for label in outputs:
                if label == self.lab.healthy:
                    continue
                for path in sorted((self.out / source).rglob("*")):
                    if path.is_file():
                        rel = str(path.relative_to(self.out / source)).replace(source, f"sub-{label}")
                        target = self.out / f"sub-{label}" / rel
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(path, target)

    def argv(self) -> list:
        argv = [self.bids_arg or self.bids, self.out, self.level, "--nprocs", "2", "-w", self.lab.work]
        if not self.validate:
            argv.append("--skip-bids-validation")
        return [*argv, *self.args]


@dataclass(frozen=True)
class Case:
    setup: Callable[[Ctx], tuple]  # builds the case; returns the needles of the error line
    code: int | frozenset
    healthy: bool = False  # needs the healthy participant (and its processed baseline)
    group_outputs: bool = False  # needs the baseline's OUTPUT_DIR


CASES: dict[str, Case] = {}


def case(code, *, healthy=False, group_outputs=False):
    """Register ``setup`` as the case named after it (``code``: the exit code, or a set of them)."""

    def register(setup):
        name = setup.__name__.removeprefix("_")
        assert name not in CASES, name
        CASES[name] = Case(setup, frozenset(code) if isinstance(code, (set, tuple)) else code,
                           healthy, group_outputs)
        return setup

    return register


def _regex(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


# ---------------------------------------------------------------------------------------
# the dataset


@case(MISSING)
def _dataset_without_description(c):
    c.build()
    (c.bids / "dataset_description.json").unlink()
    return "dataset_description.json", str(c.bids)


@case(BAD_INPUT)
def _dataset_description_syntax_error(c):
    c.build()
    (c.bids / "dataset_description.json").write_text('{"Name": "fake", "BIDSVersion": "1.10.0",\n')
    return str(c.bids / "dataset_description.json"), "not valid JSON"


@case(BAD_INPUT)
def _dataset_description_json_array(c):
    c.build()
    (c.bids / "dataset_description.json").write_text('[{"Name": "fake"}]\n')
    return str(c.bids / "dataset_description.json"), "JSON object"


@case(BAD_INPUT)
def _dataset_description_not_utf8(c):
    c.build()
    (c.bids / "dataset_description.json").write_bytes(b'{"Name": "caf\xe9", "BIDSVersion": "1.10.0"}\n')
    return str(c.bids / "dataset_description.json"), _regex("utf-8")


@case(MISSING)
def _dataset_empty(c):
    c.build(subjects=(), lesion_entity=None)
    return str(c.bids), "no DWI"


@case(BAD_INPUT)
def _dataset_symlink_loop(c):
    c.build()
    link = c.raw("").parent / "back"
    link.symlink_to(c.bids / f"sub-{BAD}", target_is_directory=True)
    return f"sub-{BAD}/dwi/back", "symbolic link"


@case(BAD_INPUT)
def _lesion_dataset_symlink_loop(c):
    c.build()
    link = c.lesion("").parent / "up"
    link.symlink_to(c.lesion_root, target_is_directory=True)
    return f"derivatives/lesions/sub-{BAD}/dwi/up", "symbolic link"


@case(VALIDATION)
def _dataset_not_valid_bids(c):
    c.build(derived_bvals=True)
    shutil.copyfile(c.raw("dwi.nii.gz"), c.raw("badname.nii.gz"))
    c.validate = True
    return str(c.bids), "not a valid BIDS dataset"


# ---------------------------------------------------------------------------------------
# JSON sidecars


@case(BAD_INPUT)
def _dwi_sidecar_not_utf8(c):
    c.build()
    c.raw("dwi.json").write_bytes(b'{"EchoTime": 0.08, "InstitutionName": "H\xf4pital"}\n')
    return f"sub-{BAD}_dwi.json", _regex("utf-8")


@case(BAD_INPUT)
def _dwi_sidecar_syntax_error(c):
    c.build()
    c.raw("dwi.json").write_text('{"EchoTime": 0.08,, "RepetitionTime": 5}\n')
    return f"sub-{BAD}_dwi.json", "not valid JSON"


@case(BAD_INPUT, healthy=True)
def _dwi_sidecar_json_array(c):
    c.build(healthy=True)
    c.raw("dwi.json").write_text('[{"EchoTime": 0.08}]\n')
    return f"sub-{BAD}_dwi.json", "JSON object"


@case(BAD_INPUT, healthy=True)
def _lesion_sidecar_json_array(c):
    c.build(healthy=True)
    c.lesion("label-lesion_mask.json").write_text('["Lesion"]\n')
    return f"sub-{BAD}_label-lesion_mask.json", "JSON object"


@case(BAD_INPUT)
def _lesion_dataset_description_json_array(c):
    c.build()
    (c.lesion_root / "dataset_description.json").write_text("[]\n")
    return "derivatives/lesions/dataset_description.json", "JSON object"


@case(BAD_INPUT)
def _lesion_dataset_description_syntax_error(c):
    c.build()
    (c.lesion_root / "dataset_description.json").write_text('{"Name": "lesions" "DatasetType": "derivative"}')
    return "derivatives/lesions/dataset_description.json", "not valid JSON"


@case(BAD_INPUT)
def _inherited_sidecar_syntax_error(c):
    """A top-level dwi.json applies to everyone: the whole run stops."""
    c.build(root_metadata={"EchoTime": 0.08})
    (c.bids / "dwi.json").write_text('{"EchoTime": 0.08\n')
    return str(c.bids / "dwi.json"), "not valid JSON"


def _trace_b_value(c, value, *, healthy=False):
    c.build(kind="trace", healthy=healthy)
    sidecar = c.raw("rec-TRACE_dwi.json")
    sidecar.write_text(json.dumps({"RepetitionTime": 5.0, "EchoTime": 0.08, "DiffusionBValue": value}))
    return f"sub-{BAD}_rec-TRACE_dwi", "DiffusionBValue"


@case(BAD_INPUT, healthy=True)
def _trace_b_value_negative(c):
    return _trace_b_value(c, -1000, healthy=True)


@case(BAD_INPUT)
def _trace_b_value_boolean(c):
    return _trace_b_value(c, True)


@case(BAD_INPUT)
def _trace_b_value_string(c):
    return _trace_b_value(c, "1000")


# ---------------------------------------------------------------------------------------
# image files and headers (the broken participant's 4D series unless said otherwise)

DWI = f"sub-{BAD}_dwi.nii.gz"


@case(BAD_INPUT)
def _dwi_not_gzip(c):
    c.build()
    path = c.raw("dwi.nii.gz")
    path.write_bytes(gzip.decompress(path.read_bytes()))
    return DWI, "gzip"


@case(BAD_INPUT, healthy=True)
def _dwi_truncated(c):
    c.build(healthy=True)
    truncate(c.raw("dwi.nii.gz"))
    return DWI, "truncated"


@case(BAD_INPUT)
def _dwi_empty_file(c):
    c.build()
    c.raw("dwi.nii.gz").write_bytes(b"")
    return DWI, "the file is empty (0 bytes)"


@case(BAD_INPUT)
def _dwi_not_nifti(c):
    c.build()
    c.raw("dwi.nii.gz").write_bytes(gzip.compress(b"this is not a NIfTI file\n" * 40))
    return DWI, "NIfTI"


@case(BAD_INPUT)
def _dwi_header_claims_huge_size(c):
    c.build()
    patch_header(c.raw("dwi.nii.gz"), dim=[4, 2048, 2048, 2048, 4, 1, 1, 1])
    return DWI, _regex("truncated|too large")


@case(BAD_INPUT)
def _dwi_uncompressed_truncated(c):
    c.build()
    gz = c.raw("dwi.nii.gz")
    path = c.raw("dwi.nii")
    path.write_bytes(gzip.decompress(gz.read_bytes()))
    gz.unlink()
    truncate(path, 0.6)
    return f"sub-{BAD}_dwi.nii", "truncated"


@case(BAD_INPUT)
def _dwi_affine_zero(c):
    c.build()
    zero = np.zeros(4)
    patch_header(c.raw("dwi.nii.gz"), sform_code=1, qform_code=0, srow_x=zero, srow_y=zero, srow_z=zero)
    return DWI, "affine"


@case(BAD_INPUT)
def _dwi_affine_nan(c):
    c.build()
    patch_header(c.raw("dwi.nii.gz"), sform_code=1, qform_code=0, srow_x=[np.nan, 0, 0, -8])
    return DWI, "affine"


@case(BAD_INPUT)
def _dwi_affine_singular(c):
    c.build()
    patch_header(c.raw("dwi.nii.gz"), sform_code=1, qform_code=0, srow_x=AFFINE[0], srow_y=AFFINE[0],
                 srow_z=AFFINE[2])
    return DWI, "affine"


@case(BAD_INPUT)
def _dwi_voxel_size_zero(c):
    c.build()
    patch_header(c.raw("dwi.nii.gz"), sform_code=0, qform_code=1, pixdim=[1, 0, 2, 2, 1, 1, 1, 1])
    return DWI, "voxel size"


@case(BAD_INPUT)
def _dwi_voxel_size_nan(c):
    c.build()
    patch_header(c.raw("dwi.nii.gz"), sform_code=0, qform_code=1, pixdim=[1, 2, np.nan, 2, 1, 1, 1, 1])
    return DWI, "voxel size"


@case(BAD_INPUT)
def _dwi_5d(c):
    c.build()
    save(c.raw("dwi.nii.gz"), np.ones((*SHAPE, len(BVALS), 2), np.float32))
    return DWI, _regex(r"3D or 4D|5D|dimension")


@case(BAD_INPUT)
def _trace_2d(c):
    c.build(kind="trace")
    save(c.raw("rec-TRACE_dwi.nii.gz"), np.ones(SHAPE[:2], np.float32))
    return f"sub-{BAD}_rec-TRACE_dwi.nii.gz", _regex(r"3D|2D")


@case(BAD_INPUT)
def _lesion_truncated(c):
    c.build()
    truncate(c.lesion("label-lesion_mask.nii.gz"))
    return f"sub-{BAD}_label-lesion_mask.nii.gz", "truncated"


# ---------------------------------------------------------------------------------------
# diffusion series


@case(BAD_INPUT)
def _dwi_bval_missing(c):
    c.build()
    c.raw("dwi.bval").unlink()
    return DWI, ".bval"


@case(BAD_INPUT)
def _dwi_bvec_missing(c):
    c.build()
    c.raw("dwi.bvec").unlink()
    return DWI, ".bvec"


@case(BAD_INPUT)
def _dwi_bvec_too_few_columns(c):
    c.build()
    c.raw("dwi.bvec").write_text("0 1 0\n0 0 1\n0 0 0\n")  # 3 vectors for 4 volumes
    return f"sub-{BAD}_dwi.bvec", _regex(r"volume|column|vector")


@case(BAD_INPUT, healthy=True)
def _dwi_bval_count_differs(c):
    c.build(healthy=True)
    c.raw("dwi.bval").write_text("0 1000 1000\n")
    return f"sub-{BAD}_dwi.bval", "one b-value per volume"


@case(BAD_INPUT)
def _dwi_bval_not_numbers(c):
    c.build()
    c.raw("dwi.bval").write_text("0 1000 high 1000\n")
    return f"sub-{BAD}_dwi.bval", "number"


@case(BAD_INPUT)
def _dwi_3d_without_rec(c):
    c.build()
    save(c.raw("dwi.nii.gz"), np.ones(SHAPE, np.float32))
    return DWI, "4D"


@case(BAD_INPUT, healthy=True)
def _dwi_all_zero(c):
    """Passes the checks; its first processing step fails (and its partial outputs go)."""
    c.build(healthy=True)
    save(c.raw("dwi.nii.gz"), np.zeros((*SHAPE, len(BVALS)), np.float32))
    return DWI, _regex(r"constant|zero|vary")


@case(BAD_INPUT)
def _dwi_two_candidates(c):
    c.build()
    for suffix in ("nii.gz", "bval", "bvec", "json"):
        shutil.copyfile(c.raw(f"dwi.{suffix}"), c.raw(f"acq-b2_dwi.{suffix}"))
    return f"sub-{BAD}", "several"


@case(BAD_INPUT)
def _adc_on_another_grid(c):
    c.build(kind="trace", with_adc=True)
    save(c.raw("rec-ADC_dwi.nii.gz"), np.ones((10, 10, 4), np.float32))
    return f"sub-{BAD}_rec-ADC_dwi.nii.gz", "grid"


# ---------------------------------------------------------------------------------------
# lesion masks

MASK = f"sub-{BAD}_label-lesion_mask.nii.gz"


@case(BAD_INPUT)
def _lesion_on_another_grid(c):
    c.build()
    save(c.lesion(), lesion_array((10, 8, 4)))
    return MASK, "grid"


@case(BAD_INPUT, healthy=True)
def _lesion_nan(c):
    c.build(healthy=True)
    data = lesion_array().astype(np.float32)
    data[0, 0, 0] = np.nan
    save(c.lesion(), data)
    return MASK, "finite"


@case(BAD_INPUT)
def _lesion_4d(c):
    c.build()
    save(c.lesion(), np.stack([lesion_array()] * 2, axis=-1))
    return MASK, "3D"


@case(BAD_INPUT)
def _lesion_whole_field_of_view(c):
    c.build()
    save(c.lesion(), np.ones(SHAPE, np.uint8))
    return MASK, "whole field of view"


@case(BAD_INPUT)
def _lesion_negative(c):
    c.build()
    data = lesion_array().astype(np.int16)
    data[0, 0, 0] = -1
    save(c.lesion(), data)
    return MASK, "negative"


@case(BAD_INPUT, healthy=True)
def _lesion_label_map_without_label(c):
    c.build(healthy=True)
    data = lesion_array()
    data[0:2, 0:2, 0] = 2
    save(c.lesion(), data)
    return MASK, "--lesion-label"


@case(BAD_INPUT)
def _lesion_label_not_in_map(c):
    c.build()
    data = lesion_array()
    data[0:2, 0:2, 0] = 2
    save(c.lesion(), data)
    c.args += ["--lesion-label", "7"]
    return MASK, "7"


@case(BAD_INPUT)
def _lesion_values_neither_mask_nor_labels(c):
    c.build()
    save(c.lesion(), lesion_array().astype(np.float32) * 3.5)
    return MASK, "neither"


def _healthy_mask(c):
    """The healthy participant's mask: data (uint8 0/1) and image, to rewrite it."""
    img = nb.load(c.healthy_mask())
    return np.asarray(img.dataobj).astype(np.uint8), img


@case(OK, healthy=True)
def _lesion_label_map_with_label(c):
    """Works: the label picked is the lesion (another label elsewhere is ignored)."""
    c.build(subjects=(), healthy=True)
    data, img = _healthy_mask(c)
    far = np.zeros_like(data)
    far[:3, :3, :2] = 1
    assert not (far & data).any()
    labels = data + 2 * far
    nb.Nifti1Image(labels.astype(np.uint8), img.affine, img.header).to_filename(c.healthy_mask())
    c.args += ["--lesion-label", "1"]
    return ()


@case(OK, healthy=True)
def _lesion_probability_map(c):
    """Works, with a warning: lesion where >= 0.5, the threshold in the lesion measures."""
    c.build(subjects=(), healthy=True)
    data, img = _healthy_mask(c)
    from scipy import ndimage

    ring = ndimage.binary_dilation(data > 0) & (data == 0)
    probability = np.where(data > 0, 0.9, np.where(ring, 0.3, 0.0)).astype(np.float32)
    out = nb.Nifti1Image(probability, img.affine, img.header)
    out.set_data_dtype(np.float32)
    out.to_filename(c.healthy_mask())
    return ()


# ---------------------------------------------------------------------------------------
# the command line


@case(USAGE)
def _cli_unknown_option(c):
    c.build()
    c.args += ["--no-such-option"]
    return ("--no-such-option",)


@case(USAGE)
def _cli_nprocs_zero(c):
    c.build()
    c.args += ["--nprocs", "0"]
    return "--nprocs", "positive integer"


@case(USAGE)
def _cli_nprocs_not_a_number(c):
    c.build()
    c.args += ["--nprocs", "two"]
    return "--nprocs", "'two'"


@case(USAGE)
def _cli_lesion_label_zero(c):
    c.build()
    c.args += ["--lesion-label", "0"]
    return "--lesion-label", "positive integer"


@case(MISSING)
def _cli_participant_label_file_missing(c):
    c.build()
    c.args += ["--participant-label", str(c.lab.root / "labels.txt")]
    return ("labels.txt",)


@case(MISSING)
def _cli_bids_dir_missing(c):
    c.build()
    c.bids_arg = c.lab.root / "nowhere"
    return "BIDS_DIR", "nowhere"


@case(MISSING)
def _cli_lesion_dir_missing(c):
    c.build()
    c.args += ["--lesion-dir", str(c.lab.root / "nolesions")]
    return "--lesion-dir", "nolesions"


@case(MISSING)
def _cli_lesion_dir_without_description(c):
    c.build()
    (c.lesion_root / "dataset_description.json").unlink()
    c.args += ["--lesion-dir", str(c.lesion_root)]
    return "--lesion-dir", "dataset_description.json"


@case(MISSING)
def _cli_model_missing(c):
    c.build()
    c.args += ["--model", str(c.lab.root / "nomodel")]
    return "--model", "nomodel"


@case(MISSING)
def _cli_filter_file_missing(c):
    c.build()
    c.args += ["--bids-filter-file", str(c.lab.root / "nofilters.json")]
    return "--bids-filter-file", "nofilters.json"


@case({USAGE, BAD_INPUT})
def _cli_filter_file_syntax_error(c):
    c.build()
    path = c.lab.root / "filters.json"
    path.write_text('{"dwi": {"acquisition": "b1000"}\n')
    c.args += ["--bids-filter-file", str(path)]
    return "filters.json", "JSON"


@case(USAGE)
def _cli_filter_file_unknown_key(c):
    c.build()
    path = c.lab.root / "filters_anat.json"
    path.write_text('{"anat": {"suffix": "T1w"}}\n')
    c.args += ["--bids-filter-file", str(path)]
    return "filters_anat.json", "'anat'"


@case(USAGE)
def _cli_output_in_subject_folder(c):
    c.build()
    c.out = c.bids / f"sub-{BAD}" / "derivatives"
    return str(c.out), "sub-"


@case(USAGE)
def _cli_output_is_lesion_dataset(c):
    """A lesion dataset without GeneratedBy is an input: OUTPUT_DIR may not be it."""
    c.build(derivative_generated_by=False)
    c.out = c.lesion_root
    return str(c.lesion_root), "input dataset"


@case(USAGE)
def _cli_output_is_lesion_dir(c):
    """The dataset given with --lesion-dir (with GeneratedBy) is an input too."""
    lesions = c.lab.root / "lesions_ext"
    if lesions.exists():
        shutil.rmtree(lesions)
    c.build(lesion_dir=lesions)
    c.inputs.append(lesions)
    c.args += ["--lesion-dir", str(lesions)]
    c.out = lesions
    return str(lesions), "input"


@case(USAGE)
def _cli_work_dir_inside_bids(c):
    c.build()
    c.args += ["-w", str(c.bids / "work")]
    return "--work-dir", str(c.bids / "work")


@case(LEVEL)
def _cli_unknown_level(c):
    c.build()
    c.level = "subject"
    return "analysis_level", "'subject'"


@case(NO_DATA)
def _cli_label_selects_nothing(c):
    c.build()
    c.args += ["--participant-label", "99"]
    return "99", f"Participants with DWI: {BAD}"


@case(NO_DATA)
def _cli_session_selects_nothing(c):
    c.build(sessions=["1"])
    c.args += ["--session-label", "7"]
    return "session label(s) 7", "Sessions with DWI: 1"


# ---------------------------------------------------------------------------------------
# the model bundle of participant --model (checked before any work)

KERAS = "f8-g1.5.keras"


def _bundle(c, *, manifest=True, **overrides) -> Path:
    folder = c.lab.root / "model" / c.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    keras_file = folder / KERAS
    keras_file.write_bytes(b"PK\x03\x04 a stand-in for a Keras archive")
    if manifest:
        content = {
            "format_version": 1,
            "input_shape": [96, 96, 24, 1],
            "variants": [{"name": "f8-g1.5", "file": KERAS,
                          "sha256": hashlib.sha256(keras_file.read_bytes()).hexdigest()}],
            "threshold": 0.5,
            "cohort": {"n": 0, "sites": [], "prevalence": 0.0},
            **overrides,
        }
        (folder / "manifest.json").write_text(json.dumps(content, indent=2))
    c.build()
    c.inputs.append(folder)
    c.args += ["--model", str(folder)]
    return folder


@case(BAD_INPUT)
def _model_manifest_missing(c):
    folder = _bundle(c, manifest=False)
    return str(folder / "manifest.json"), "missing"


@case(BAD_INPUT)
def _model_manifest_not_json(c):
    folder = _bundle(c)
    (folder / "manifest.json").write_text("format_version: 1\nthreshold: 0.5\n")
    return str(folder / "manifest.json"), "JSON"


@case(BAD_INPUT)
def _model_threshold_not_a_number(c):
    folder = _bundle(c, threshold="high")
    return str(folder / "manifest.json"), "'threshold'"


@case(BAD_INPUT)
def _model_variant_checksum_mismatch(c):
    folder = _bundle(c)
    with open(folder / KERAS, "ab") as fh:
        fh.write(b"tampered")
    return KERAS, "does not match the manifest"


@case(BAD_INPUT)
def _model_variant_file_missing(c):
    folder = _bundle(c)
    (folder / KERAS).unlink()
    return KERAS, "missing"


# ---------------------------------------------------------------------------------------
# the group level: participants.tsv and the participant-level outputs


def _participants(rows, columns=("participant_id", "site", "mrs")) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


@case(BAD_INPUT)
def _group_site_column_missing(c):
    c.group(_participants([("sub-01", 1), ("sub-03", 4)], ("participant_id", "mrs")))
    return "participants.tsv", "'site'"


@case(BAD_INPUT)
def _group_outcome_column_missing(c):
    c.group(_participants([("sub-01", "A", 1), ("sub-03", "B", 4)]))
    c.args += ["--outcome-column", "mrs90"]
    return "participants.tsv", "'mrs90'"


@case(BAD_INPUT)
def _group_mrs_not_numeric(c):
    c.group(_participants([("sub-01", "A", 1), ("sub-03", "B", "poor")]))
    return "participants.tsv", "'mrs'"


@case(BAD_INPUT)
def _group_mrs_out_of_range(c):
    c.group(_participants([("sub-01", "A", 1), ("sub-03", "B", 7)]))
    return "participants.tsv", "'mrs'"


@case(BAD_INPUT)
def _group_participant_id_duplicated(c):
    c.group(_participants([("sub-01", "A", 1), ("sub-01", "B", 4)]))
    return "participants.tsv", "sub-01"


@case(BAD_INPUT)
def _group_participants_tsv_ragged(c):
    c.group("participant_id\tsite\tmrs\nsub-01\tA\t1\textra\tcells\n")
    return "participants.tsv", "tab-separated"


@case(MISSING)
def _group_participants_tsv_missing(c):
    c.group(None)
    return ("participants.tsv",)


@case(BAD_INPUT)
def _group_no_participant_outputs(c):
    c.group(_participants([("sub-01", "A", 1), ("sub-03", "B", 4)]))
    return "participants.tsv", "participant-level outputs"


@case(BAD_INPUT, group_outputs=True)
def _group_one_site_only(c):
    h = c.lab.healthy
    c.group(_participants([(f"sub-{h}", "A", 1), ("sub-905", "A", 4)]), outputs=[h, "905"])
    return "participants.tsv", "two sites"


@case(BAD_INPUT, group_outputs=True)
def _group_fold_without_poor_outcome(c):
    h = c.lab.healthy
    labels = [h, "905", "906", "907"]
    c.group(_participants([(f"sub-{s}", site, 1) for s, site in zip(labels, "AABB")]), outputs=labels)
    return "participants.tsv", "poor"


@case(BAD_INPUT, group_outputs=True)
def _group_lesion_measures_not_json(c):
    h = c.lab.healthy
    c.group(_participants([(f"sub-{h}", "A", 1), ("sub-905", "B", 4)]), outputs=[h, "905"])
    (measures,) = find_derivatives(c.out, subject="905", desc="lesion", suffix="measures", extension=".json")
    measures.write_text('{"LesionVolume": ')
    return measures.name, "JSON"


@case(USAGE)
def _group_with_model(c):
    c.group(_participants([("sub-01", "A", 1), ("sub-03", "B", 4)]))
    c.args += ["--model", str(c.bids)]
    return "--model", "participant level"


# ---------------------------------------------------------------------------------------
# the test


def _run(ctx: Ctx, capsys) -> tuple[int, str]:
    code = main([str(a) for a in ctx.argv()])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, lab, request, capsys):
    spec = CASES[name]
    if spec.healthy or spec.group_outputs:
        request.getfixturevalue("baseline")
    ctx = Ctx(lab, name, needs_healthy=spec.healthy)
    needles = spec.setup(ctx)
    inputs = [p for p in (ctx.bids, *ctx.inputs) if p.exists()]
    before = {p: snapshot(p) for p in inputs}

    code, err = _run(ctx, capsys)

    tail = "\n".join(err.strip().splitlines()[-6:])
    assert "Traceback" not in err, err[-3000:]
    expected = spec.code if isinstance(spec.code, frozenset) else {spec.code}
    assert code in expected, f"exit {code}, expected {sorted(map(int, expected))}:\n{tail}"
    lines = error_lines(err)
    if OK in expected:
        assert lines == [], tail
    else:
        assert len(lines) == 1, tail
        for needle in needles:
            if isinstance(needle, re.Pattern):
                assert needle.search(lines[0]), f"{needle.pattern!r} not in: {lines[0]}"
            else:
                assert needle in lines[0], f"{needle!r} not in: {lines[0]}"
    for path in inputs:
        assert snapshot(path) == before[path], f"{path} was modified"

    out_is_input = ctx.out.is_relative_to(ctx.bids) or any(ctx.out.is_relative_to(p) for p in ctx.inputs)
    if ctx.level == "participant" and ctx.bad is not None and not out_is_input:
        assert find_derivatives(ctx.out, subject=ctx.bad) == [], "outputs of the failed participant remain"
    if ctx.healthy:
        rows = summary(ctx.out)
        healthy = lab.healthy
        assert rows[f"sub-{healthy}"]["status"] == "done", rows
        assert len(healthy_outputs(ctx.out, healthy)) == 4, healthy_outputs(ctx.out, healthy)
        if ctx.bad is not None:
            assert rows[f"sub-{ctx.bad}"]["status"] == "failed", rows
            assert rows[f"sub-{ctx.bad}"]["exit_code"] == str(int(BAD_INPUT)), rows
        if name == "lesion_probability_map":
            assert re.search(r"probability map.*0\.5", err), tail
            measures = lesion_measures(ctx.out, healthy)
            assert measures["LesionThreshold"] == 0.5 and measures["LesionMaskType"] == "probability", measures
        if name == "lesion_label_map_with_label":
            measures = lesion_measures(ctx.out, healthy)
            assert measures["LesionMaskType"] == "labels" and measures["LesionLabel"] == 1, measures


def test_catalogue_is_large_enough():
    assert len(CASES) >= 50
    assert sum(c.healthy for c in CASES.values()) <= 10  # processing is the cost
