"""The group level: leave-one-center-out training, out-of-center results, final ensemble.

Reads only the participant-level derivatives in OUTPUT_DIR and participants.tsv. Every
fold × variant is one nipype job (:class:`~bids_stroke.interfaces.train.TrainJob`), so
``--nipype-plugin MultiProc|SLURM`` spreads them; each job keeps its model, its training
curve and a done-marker under ``OUTPUT_DIR/models/loco/`` (``models/all/`` for the final
ensemble), so a killed run resumes with the unfinished jobs only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bids_stroke.bids.dataset import init_derivatives

from bids_stroke.bids.naming import derivative_path

from bids_stroke.bids.writers import atomic_output, write_tsv
from bids_stroke.bids.participants import read_participants
from bids_stroke.config import Config
from bids_stroke.errors import BadInputError, BidsStrokeError
from bids_stroke.model.spec import DECISION_THRESHOLD, SCALES
from bids_stroke.spatial.templates import DEFAULT_RESOLUTION, DEFAULT_TEMPLATE

LOGGER = logging.getLogger("bids_stroke")

#: Name of the pseudo-fold that trains the final ensemble on every participant.
FINAL = "all"


@dataclass
class GroupInputs:
    """The participants the group level trains on, and their files.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per participant: participant_id, subject, session, site, mrs, outcome
        (0/1), lesion_volume_ml, side, and the paths ``preproc``, ``reference`` (an image
        on the native grid), ``transform`` (native → template), ``source`` (a file
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
    participants = read_participants(config.bids_dir, required_columns=required)
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
        preprocs = sorted((out / pid).glob(f"**/{pid}_*space-model_desc-preproc_dwi.nii.gz"))
        if not preprocs:
            excluded.append((pid, "no participant-level outputs (run the participant level first)"))
            continue
        if len(preprocs) > 1:
            LOGGER.warning("%s: %d sessions processed; the group level uses %s.", pid, len(preprocs),
                           preprocs[0].name)
        preproc = preprocs[0]
        stem = preproc.name.split("_space-model")[0]
        folder = preproc.parent
        measures = folder / f"{stem}_desc-lesion_measures.json"
        transforms = sorted(folder.glob(f"{stem}_from-dwi_to-*_mode-image_xfm.h5"))
        reference = folder / f"{stem}_desc-brain_mask.nii.gz"
        missing = [p.name for p in (measures, reference) if not p.is_file()] + ([] if transforms else ["transform"])
        if missing:
            excluded.append((pid, f"missing participant-level outputs: {', '.join(missing)}"))
            continue
        info = json.loads(measures.read_text())
        space = transforms[0].name.split("_to-")[1].split("_")[0]
        spaces.add(space)
        rows.append({
            **{k: v for k, v in row.items()},
            "participant_id": pid,
            "site": str(row[config.site_column]),
            "mrs": int(mrs[pid]),
            "outcome": int(mrs[pid] >= config.poor_threshold),
            "lesion_volume_ml": info.get("LesionVolume"),
            "side": info.get("LesionSide") or "unknown",
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


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "", name) or "site"


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


def init_group_wf(config: Config, inputs: GroupInputs, folds: list, data: Path, digest: str, template,
                  precision: str = "float32"):
    """The nipype workflow of the group level (one job per fold × variant).

    Parameters
    ----------
    config : Config
    inputs : GroupInputs
    folds : list of bids_stroke.train.folds.Fold
        The LOCO folds; the final-ensemble pseudo-fold is added here.
    data : pathlib.Path
        The arrays written by :func:`write_arrays`.
    digest : str
        Their SHA-256, part of each job's identity.
    template : TemplateFile
        The template image giving the grid of the attention maps.
    precision : {"float32", "bfloat16"}, default="float32"
        Training precision of every job (``config.train_precision`` resolved by
        :func:`bids_stroke.train.precision.resolve_precision`).
    """
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from bids_stroke.interfaces.train import FoldResults, MakeBundle, TrainJob
    from bids_stroke.train.folds import Fold
    from bids_stroke.train.loop import derive_seed

    out = Path(config.output_dir)
    table = inputs.table
    workflow = pe.Workflow(name="group_wf", base_dir=str(config.work_dir))
    everyone = Fold(name=FINAL, test_index=np.zeros(0, np.int64), trainval_index=np.arange(len(table)),
                    sites=())
    omp = config.resolved_omp_nthreads()
    for fold in [*folds, everyone]:
        tag = _safe(fold.name)
        fold_dict = {"name": fold.name, "test_index": fold.test_index.tolist(),
                     "trainval_index": fold.trainval_index.tolist(), "sites": list(fold.sites)}
        merge = pe.Node(niu.Merge(len(config.variants)), name=f"models_{tag}", run_without_submitting=True)
        for i, variant in enumerate(config.variants, start=1):
            job = pe.Node(
                TrainJob(
                    data=str(data), data_digest=digest, fold=fold_dict, variant=variant,
                    seed=derive_seed(config.random_seed, fold.name, variant), epochs=config.max_epochs,
                    patience=config.patience, precision=precision,
                    out_dir=str(out / "models" / ("all" if fold is everyone else "loco") /
                                ("" if fold is everyone else f"fold-{tag}") / variant),
                ),
                name=f"train_{tag}_{_safe(variant)}",
                n_procs=omp,
            )
            workflow.connect(job, "model", merge, f"in{i}")
        if fold is everyone:
            bundle = pe.Node(
                MakeBundle(
                    out_dir=str(out / "models" / "ensemble"), threshold=DECISION_THRESHOLD, seed=config.random_seed,
                    cohort={"n": len(table), "sites": sorted(table["site"].unique().tolist()),
                            "prevalence": float(table["outcome"].mean())},
                    extra={"max_epochs": config.max_epochs, "patience": config.patience,
                           "train_precision": precision,
                           "poor_threshold": config.poor_threshold, "outcome_column": config.outcome_column},
                ),
                name="final_ensemble",
            )
            workflow.connect(merge, "out", bundle, "models")
        else:
            test = table.iloc[fold.test_index]
            results = pe.Node(
                FoldResults(
                    data=str(data), fold=fold_dict, template=str(template.path), space=inputs.space,
                    output_dir=str(out),
                    out_file=str(out / "models" / "loco" / f"fold-{tag}" / "predictions.tsv"),
                    participants=[
                        {k: str(r[k]) for k in ("participant_id", "preproc", "reference", "transform", "source")}
                        for _, r in test.iterrows()
                    ],
                ),
                name=f"results_{tag}",
                n_procs=omp,
            )
            workflow.connect(merge, "out", results, "models")
    return workflow


def run_group_level(config: Config) -> None:
    """Train, evaluate and write every group-level output.

    Raises
    ------
    BadInputError
        (exit 65) bad participants.tsv values, a single site, a fold without both outcomes.
    BidsStrokeError
        (exit 1) a training job failed.
    """
    from bids_stroke.spatial.templates import get_template
    from bids_stroke.stats.baselines import add_loco_baselines
    from bids_stroke.stats.tables import write_group_statistics
    from bids_stroke.train.folds import check_fold_outcomes, loco_folds
    from bids_stroke.workflows.execution import crashed_jobs, run_workflow

    inputs = collect_group_inputs(config)
    table = inputs.table
    LOGGER.info("Group level: %d participants (%d poor outcome) from %d sites; %d excluded.",
                len(table), int(table["outcome"].sum()), table["site"].nunique(), len(inputs.excluded))
    try:
        folds = loco_folds(table["site"].to_numpy(str))
    except BadInputError as exc:
        raise BadInputError(f"{Path(config.bids_dir) / 'participants.tsv'}: {exc}") from None
    for fold in folds:
        check_fold_outcomes(fold, table["outcome"].to_numpy())
    init_derivatives(config.output_dir, [config.bids_dir])
    config.save(Path(config.output_dir) / "logs" / f"config-{config.run_id}.json")
    work = Path(config.work_dir) / "group"
    work.mkdir(parents=True, exist_ok=True)
    data = work / "cohort.npz"
    digest = write_arrays(table, data)
    template = get_template(DEFAULT_TEMPLATE, resolution=DEFAULT_RESOLUTION, suffix="T2w", desc="brain")
    if template.space != inputs.space:
        raise BidsStrokeError(
            f"The participant-level outputs are in {inputs.space}, but this machine has {template.space}: "
            "run the group level where the participant level ran."
        )
    n_jobs = (len(folds) + 1) * len(config.variants)
    LOGGER.info("%d folds (%s) + the final ensemble: %d training jobs of %d epochs at most.",
                len(folds), ", ".join(f.name for f in folds), n_jobs, config.max_epochs)
    from bids_stroke.train.precision import resolve_precision

    precision, reason = resolve_precision(config.train_precision)
    LOGGER.info("Training precision: %s.", reason)
    workflow = init_group_wf(config, inputs, folds, data, digest, template, precision)
    crash_dir = run_workflow(workflow, config, _GroupProgress(n_jobs, config.resolved_nprocs()))
    failures = crashed_jobs(crash_dir)
    if failures:
        for node, reason in failures.items():
            LOGGER.error("%s: %s", node, reason)
        first = next(iter(failures.items()))
        raise BidsStrokeError(f"{len(failures)} group-level job(s) failed; first: {first[0]}: {first[1]}")

    predictions = assemble_predictions(config, table, folds)
    predictions, baselines = add_loco_baselines(
        predictions, table.set_index("participant_id")[["lesion_volume_ml"] + (
            [config.aspects_column] if config.aspects_column in table else [])]
        .rename(columns={config.aspects_column: "aspects"}),
    )
    write_tsv(derivative_path(config.output_dir, None, datatype="group", desc="loco", suffix="predictions",
                              extension=".tsv"), predictions)
    cohort = table.set_index("participant_id").drop(columns=["preproc", "reference", "transform", "source"])
    paths = write_group_statistics(
        config.output_dir, predictions, cohort, models=[*config.variants, "ensemble", *baselines],
        baselines=baselines, n_bootstrap=config.bootstrap, seed=config.random_seed,
    )
    for path in paths.values():
        LOGGER.info("Wrote %s", path)
    maps = write_loco_maps(config, table, predictions, inputs.space, template)
    LOGGER.info("Wrote %d group maps in %s", len(maps), Path(config.output_dir) / "group")
    from bids_stroke.report import write_citation, write_group_report

    write_citation(config.output_dir)
    LOGGER.info("Report: %s", write_group_report(config.output_dir))
    LOGGER.info("Final ensemble: %s", Path(config.output_dir) / "models" / "ensemble")


def write_loco_maps(config: Config, table: pd.DataFrame, predictions: pd.DataFrame, space: str, template):
    """Group attention and lesion-probability maps from the out-of-center attention."""
    from bids.layout import parse_file_entities

    from bids_stroke.maps import write_group_maps
    from bids_stroke.spatial.templates import get_template

    rows = []
    merged = table.merge(predictions[["participant_id", "ensemble"]], on="participant_id")
    for _, row in merged.iterrows():
        source = parse_file_entities(row["source"])
        entry = {"participant_id": row["participant_id"], "outcome": row["outcome"],
                 "probability": row["ensemble"], "threshold": DECISION_THRESHOLD, "side": row["side"],
                 "lesion": str(derivative_path(config.output_dir, source, space=space, res=DEFAULT_RESOLUTION, label="lesion",
                                               suffix="mask", extension=".nii.gz"))}
        for scale in SCALES:
            entry[f"attention_{scale}"] = str(derivative_path(
                config.output_dir, source, space=space, res=DEFAULT_RESOLUTION, desc=f"loco{scale}", suffix="attention",
                extension=".nii.gz"))
        rows.append(entry)
    mask = get_template(DEFAULT_TEMPLATE, resolution=DEFAULT_RESOLUTION, suffix="mask", desc="brain").path
    return write_group_maps(config.output_dir, pd.DataFrame(rows), space=space, mask=mask,
                            metadata={"Variants": list(config.variants), "Source": "out-of-center attention"})


def assemble_predictions(config: Config, table: pd.DataFrame, folds: list) -> pd.DataFrame:
    """The merged out-of-center predictions: one row per participant."""
    parts = []
    for fold in folds:
        path = Path(config.output_dir) / "models" / "loco" / f"fold-{_safe(fold.name)}" / "predictions.tsv"
        parts.append(pd.read_csv(path, sep="\t", dtype={"participant_id": str, "fold": str}))
    merged = pd.concat(parts, ignore_index=True)
    merged = table[["participant_id", "site", "outcome"]].merge(merged, on="participant_id", how="left")
    columns = ["participant_id", "site", "fold", "outcome", *config.variants, "ensemble"]
    return merged[columns]


class _GroupProgress:
    """nipype status callback: a line per finished job, with an ETA for the whole level."""

    def __init__(self, n_jobs: int, nprocs: int):
        self.n_jobs, self.nprocs = n_jobs, max(1, nprocs)
        self.started: dict[str, float] = {}
        self.durations: list[float] = []
        self.t0 = time.perf_counter()

    def __call__(self, node, status: str) -> None:
        if not node.name.startswith("train_"):
            return
        if status == "start":
            self.started[node.name] = time.perf_counter()
            LOGGER.info("job %s: started", node.name[6:])
        elif status == "end":
            seconds = time.perf_counter() - self.started.pop(node.name, time.perf_counter())
            self.durations.append(seconds)
            left = self.n_jobs - len(self.durations)
            eta = np.mean(self.durations) * left / self.nprocs
            LOGGER.info("job %s: done in %.0f s (%d/%d jobs; ETA %.0f min)", node.name[6:], seconds,
                        len(self.durations), self.n_jobs, eta / 60)
        elif status == "exception":
            LOGGER.error("job %s: FAILED", node.name[6:])
