"""The group level: leave-one-center-out training, out-of-center results, final ensemble.

Reads only the participant-level derivatives in OUTPUT_DIR and participants.tsv. Every
fold × variant is one nipype job (:class:`~bids_stroke.interfaces.train.TrainJob`), so
``--nipype-plugin MultiProc|SLURM`` spreads them; each job keeps its model, its training
curve and a done-marker under ``OUTPUT_DIR/models/loco/`` (``models/all/`` for the final
ensemble), so a killed run resumes with the unfinished jobs only.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bids_stroke.bids.dataset import dataset_links, init_derivatives
from bids_stroke.bids.naming import FINAL_FOLD, derivative_path, parse_derivative, run_path
from bids_stroke.bids.writers import remove_partial_writes, write_tsv
from bids_stroke.config import Config, training_protocol
from bids_stroke.errors import BadInputError, BidsStrokeError
from bids_stroke.model.spec import DECISION_THRESHOLD, SCALES
from bids_stroke.spatial.templates import DEFAULT_RESOLUTION, DEFAULT_TEMPLATE
from bids_stroke.workflows.group_inputs import GroupInputs, collect_group_inputs, write_arrays

LOGGER = logging.getLogger("bids_stroke")


def _safe(name: str) -> str:
    """The alphanumeric label of a fold or variant in OUTPUT_DIR paths (``fold-<label>``)."""
    return re.sub(r"[^A-Za-z0-9]+", "", name) or "site"


def _node_tag(position: int, fold, final: bool) -> str:
    """The part of the nipype node names that names a fold: unique within the workflow.

    Sanitised site labels may collide (``site-02`` and ``site02``), and a site may be
    called like the final pseudo-fold (``all``): the fold's position keeps them apart.

    Parameters
    ----------
    position : int
        The fold's position among the LOCO folds (from 1).
    fold : bids_stroke.train.folds.Fold
        The fold.
    final : bool
        Whether ``fold`` is the final ensemble's pseudo-fold (tagged ``final``).

    Returns
    -------
    str
        ``fold<position>_<label>`` (``label`` alphanumeric), or ``final``.
    """
    return "final" if final else f"fold{position}_{_safe(fold.name)}"


def check_fold_folders(folds: list, tsv: Path) -> None:
    """Refuse folds whose output folders (``models/loco/fold-<label>``) would be the same.

    The folder label is the site label without its non-alphanumeric characters, so sites
    such as ``site-02`` and ``site02`` would overwrite each other's models and predictions.

    Parameters
    ----------
    folds : list of bids_stroke.train.folds.Fold
        The LOCO folds.
    tsv : pathlib.Path
        participants.tsv, named in the message.

    Raises
    ------
    BadInputError
        (exit 65) naming the site labels that share a folder.
    """
    by_label: dict[str, list[str]] = {}
    for fold in folds:
        by_label.setdefault(_safe(fold.name), []).append(fold.name)
    clashes = {label: names for label, names in by_label.items() if len(names) > 1}
    if clashes:
        label, names = next(iter(sorted(clashes.items())))
        raise BadInputError(
            f"{tsv}: the site labels {', '.join(repr(n) for n in names)} differ only by "
            f"characters that output folder names cannot hold (both become fold-{label}); "
            "spell each site one way, or give them labels that differ by letters or digits."
        )


def init_group_wf(
    *,
    config: Config,
    inputs: GroupInputs,
    folds: list,
    data: Path,
    digest: str,
    template,
    precision: str = "float32",
    clinical: dict | None = None,
    name: str = "group_wf",
):
    """The nipype workflow of the group level (one job per fold × variant).

    Parameters
    ----------
    config : Config
        The run's options (variants, epochs, patience, seed, threads, OUTPUT_DIR and
        work folder).
    inputs : GroupInputs
        The participants (:func:`~bids_stroke.workflows.group_inputs.collect_group_inputs`).
    folds : list of bids_stroke.train.folds.Fold
        The LOCO folds; the final-ensemble pseudo-fold is added here.
    data : pathlib.Path
        The arrays written by :func:`~bids_stroke.workflows.group_inputs.write_arrays`.
    digest : str
        Their SHA-256, part of each job's identity.
    template : TemplateFile
        The template image giving the grid of the attention maps.
    precision : {"float32", "bfloat16"}, default="float32"
        Training precision of every job (``config.train_precision`` resolved by
        :func:`bids_stroke.train.precision.resolve_precision`).
    clinical : dict, default=None
        With ``--clinical-columns``: ``columns``, ``covariates`` (one list per participant,
        None where missing) and ``outcomes``, for the final ensemble's fusion in its bundle.
    name : str, default="group_wf"
        Workflow name.

    Returns
    -------
    nipype.pipeline.engine.Workflow
        A ``TrainJob`` per fold × variant in ``models/loco/fold-<F>/<variant>/`` and
        ``models/all/<variant>/``; a ``FoldResults`` per fold; the ``MakeBundle`` of the
        final ensemble in ``models/ensemble/`` (paths of
        :func:`~bids_stroke.bids.naming.run_path`).
    """
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from bids_stroke.interfaces.train import FoldResults, MakeBundle, TrainJob
    from bids_stroke.train.folds import Fold
    from bids_stroke.train.job import derive_seed

    out = Path(config.output_dir)
    table = inputs.table
    workflow = pe.Workflow(name=name, base_dir=str(config.work_dir))
    everyone = Fold(name=FINAL_FOLD, test_index=np.zeros(0, np.int64), trainval_index=np.arange(len(table)),
                    sites=())
    omp = config.resolved_omp_nthreads()
    job_gb = job_memory_gb(Path(data).stat().st_size)
    for position, fold in enumerate([*folds, everyone], start=1):
        tag = _safe(fold.name)  # in OUTPUT_DIR paths (distinct: check_fold_folders)
        node = _node_tag(position, fold, fold is everyone)
        fold_dict = {"name": fold.name, "test_index": fold.test_index.tolist(),
                     "trainval_index": fold.trainval_index.tolist(), "sites": list(fold.sites)}
        merge = pe.Node(niu.Merge(len(config.variants)), name=f"models_{node}", run_without_submitting=True)
        for i, variant in enumerate(config.variants, start=1):
            job = pe.Node(
                TrainJob(
                    data=str(data), data_digest=digest, fold=fold_dict, variant=variant,
                    seed=derive_seed(config.random_seed, fold.name, variant), epochs=config.max_epochs,
                    patience=config.patience, precision=precision, size_branch=config.size_branch,
                    learning_rate=config.learning_rate,
                    out_dir=str(run_path(out, "final_job", variant=variant) if fold is everyone
                                else run_path(out, "loco_job", fold=tag, variant=variant)),
                ),
                name=f"train_{node}_{_safe(variant)}",
                n_procs=omp, mem_gb=job_gb,
            )
            workflow.connect(job, "model", merge, f"in{i}")
        if fold is everyone:
            bundle = pe.Node(
                MakeBundle(
                    out_dir=str(run_path(out, "ensemble")), threshold=DECISION_THRESHOLD, seed=config.random_seed,
                    cohort={"n": len(table), "sites": sorted(table["site"].unique().tolist()),
                            "prevalence": float(table["outcome"].mean())},
                    extra={"max_epochs": config.max_epochs, "patience": config.patience,
                           "learning_rate": config.learning_rate,
                           "protocol": training_protocol(config.variants, config.max_epochs,
                                                         config.patience, config.learning_rate,
                                                         config.size_branch),
                           "train_precision": precision, "size_branch": config.size_branch,
                           "poor_threshold": config.poor_threshold, "outcome_column": config.outcome_column},
                ),
                name="final_ensemble",
            )
            if clinical:
                bundle.inputs.clinical = clinical
            workflow.connect(merge, "out", bundle, "models")
        else:
            test = table.iloc[fold.test_index]
            results = pe.Node(
                FoldResults(
                    data=str(data), fold=fold_dict, template=str(template.path), space=inputs.space,
                    output_dir=str(out),
                    out_file=str(run_path(out, "fold_predictions", fold=tag)),
                    participants=[
                        {k: str(r[k]) for k in ("participant_id", "preproc", "reference", "transform", "source")}
                        for _, r in test.iterrows()
                    ],
                ),
                name=f"results_{node}",
                n_procs=omp, mem_gb=job_gb,
            )
            workflow.connect(merge, "out", results, "models")
    return workflow


def job_memory_gb(data_bytes: int) -> float:
    """Memory (GB) a training or results job is planned with, for ``data_bytes`` of arrays.

    MultiProc starts no more jobs at once than the memory allows (``--mem-gb``, else 90 %
    of the machine's): TensorFlow and a model take about 1.5 GB, and a job holds the
    arrays a few times over (the cohort, its training and validation sets, the batches).
    """
    return round(1.5 + 4 * data_bytes / 1e9, 2)


def run_group_level(config: Config) -> None:
    """Train, evaluate and write every group-level output.

    Raises
    ------
    BadInputError
        (exit 65) bad participants.tsv values, a single site, site labels sharing an
        output folder, a fold without both outcomes.
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
    check_fold_folders(folds, Path(config.bids_dir) / "participants.tsv")
    for fold in folds:
        try:
            check_fold_outcomes(fold, table["outcome"].to_numpy())
        except BadInputError as exc:
            raise BadInputError(f"{Path(config.bids_dir) / 'participants.tsv'}: {exc}") from None
    init_derivatives(config.output_dir, [config.bids_dir], dataset_links(config.bids_dir))
    for folder in ("group", "models"):  # a killed run's temporary files
        remove_partial_writes(Path(config.output_dir) / folder)
    config.save(run_path(config.output_dir, "config", run_id=config.run_id))
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
    from bids_stroke.workflows.group_fusion import add_clinical_fusion, clinical_covariates, resolve_clinical_columns

    clinical = None
    columns, clinical_note = resolve_clinical_columns(config, table, folds)
    if clinical_note:
        LOGGER.warning("%s", clinical_note)
    if columns:
        covariates = clinical_covariates(table, columns, Path(config.bids_dir) / "participants.tsv")
        clinical = {"columns": columns, "required": config.clinical_columns is not None,
                    "covariates": [[None if np.isnan(v) else float(v) for v in row] for row in covariates],
                    "outcomes": table["outcome"].astype(int).tolist()}
    workflow = init_group_wf(config=config, inputs=inputs, folds=folds, data=data, digest=digest,
                             template=template, precision=precision, clinical=clinical)
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
    models = [*config.variants, "ensemble", *baselines]
    pairs = []
    if columns:
        predictions, fusions, fusion_note = add_clinical_fusion(
            config, columns, table, covariates, folds, predictions, required=config.clinical_columns is not None)
        models += list(fusions)
        pairs = [("ensemble+clinical", "volume+clinical")] if "ensemble+clinical" in fusions else []
        clinical_note = fusion_note
    predictions["lesion_source"] = predictions["participant_id"].map(
        table.set_index("participant_id")["lesion_source"])
    loco = derivative_path(config.output_dir, None, datatype="group", desc="loco", suffix="predictions",
                           extension=".tsv")
    write_tsv(loco, predictions)
    cohort = table.set_index("participant_id").drop(columns=["preproc", "reference", "transform", "source"])
    paths = write_group_statistics(
        config.output_dir, predictions, cohort, models=models, extra_comparisons=pairs,
        baselines=baselines, n_bootstrap=config.bootstrap, seed=config.random_seed,
    )
    for path in paths.values():
        LOGGER.info("Wrote %s", path)
    card = write_card(config, table, paths, columns, clinical_note, inputs.space)
    LOGGER.info("Model card: %s", card)
    maps = write_loco_maps(config, table, predictions, inputs.space, template)
    LOGGER.info("Wrote %d group maps in %s", len(maps), loco.parent)
    from bids_stroke.report import write_group_report

    LOGGER.info("Report: %s", write_group_report(config.output_dir))
    LOGGER.info("Final ensemble: %s", run_path(config.output_dir, "ensemble"))


def write_card(config: Config, table: pd.DataFrame, paths: dict, columns: list, note: str | None, space: str) -> Path:
    """Write the final ensemble's model card from the group tables just written."""
    from bids_stroke.model.bundle import read_manifest
    from bids_stroke.report.common import software_versions
    from bids_stroke.report.model_card import build_model_card, is_simulated, write_model_card

    def read(path):
        return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)

    bundle = run_path(config.output_dir, "ensemble")
    description = Path(config.bids_dir) / "dataset_description.json"
    try:
        simulated = is_simulated(json.loads(description.read_text()))
    except (OSError, ValueError):
        simulated = False
    manifest = read_manifest(bundle)
    metrics = read(paths["metrics"])
    if "ensemble+clinical" not in set(metrics["model"]) and "clinical_fusion" in manifest.get("extra", {}):
        # a fusion never evaluated out of center is not applied to new participants
        manifest["extra"] = {k: v for k, v in manifest["extra"].items() if k != "clinical_fusion"}
        LOGGER.warning("The bundle's clinical fusion is removed: ensemble+clinical has no out-of-center evaluation.")
    card = build_model_card(
        manifest, metrics, read(paths["comparisons"]), table,
        outcome_column=config.outcome_column, poor_threshold=config.poor_threshold, clinical_columns=columns,
        clinical_note=note, simulated=simulated, software=software_versions(), space=space)
    markdown, _ = write_model_card(bundle, card, manifest)
    return markdown


def write_loco_maps(config: Config, table: pd.DataFrame, predictions: pd.DataFrame, space: str, template):
    """Group attention and lesion-probability maps from the out-of-center attention."""
    from bids_stroke.maps import write_group_maps
    from bids_stroke.spatial.templates import get_template

    rows = []
    merged = table.merge(predictions[["participant_id", "ensemble"]], on="participant_id")
    for _, row in merged.iterrows():
        source = parse_derivative(row["source"], config.output_dir)
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
                            metadata={"Variants": list(config.variants)})


def assemble_predictions(config: Config, table: pd.DataFrame, folds: list) -> pd.DataFrame:
    """The merged out-of-center predictions: one row per participant."""
    parts = []
    for fold in folds:
        path = run_path(config.output_dir, "fold_predictions", fold=_safe(fold.name))
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
