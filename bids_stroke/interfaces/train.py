"""Thin nipype interfaces over :mod:`bids_stroke.train` and :mod:`bids_stroke.model`.

One :class:`TrainJob` per fold × variant, so that the nipype plugin spreads the jobs;
:class:`FoldResults` runs a fold's variants on its held-out participants;
:class:`MakeBundle` writes the final ensemble.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from bids_stroke.bids.writers import remove_partial_writes, write_json, write_tsv
from bids_stroke.config import PAPER_LEARNING_RATE, SIZE_BRANCHES, TRAIN_PRECISIONS
from bids_stroke.model.spec import DECISION_THRESHOLD, SCALES
from bids_stroke.spatial.templates import DEFAULT_RESOLUTION

LOGGER = logging.getLogger("bids_stroke")

#: File beside a job's ``done.json`` with its times: ``seconds`` (the whole job),
#: ``setup_seconds`` (reading the data, building the model, until training starts),
#: ``train_seconds`` and ``validation_seconds`` (one per epoch), and the ``threads`` it was
#: given. The only file of a job that differs between two runs.
TIMING = "timing.json"


def _quiet_tensorflow() -> None:
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def use_threads(n_threads: int) -> bool:
    """Size TensorFlow's thread pools to a job's ``n_threads`` (its nipype node's ``n_procs``).

    Without it every job's TensorFlow takes every core, so jobs run side by side
    oversubscribe the machine. TensorFlow fixes its pools when it starts: in a worker
    process that already ran a job the first job's size stays (all jobs of a run ask for
    the same). Other Keras backends are left as they are.

    Returns
    -------
    bool
        Whether the size was set (False: another backend, or TensorFlow already started).
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(n_threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)  # the networks are one chain of ops
    except RuntimeError:  # "... cannot be modified after initialization"
        return False
    return True


def _job_options(inputs) -> dict:
    return {
        "fold": inputs.fold["name"],
        "variant": inputs.variant,
        "seed": int(inputs.seed),
        "epochs": int(inputs.epochs),
        "patience": int(inputs.patience),
        "batch_size": int(inputs.batch_size),
        "precision": inputs.precision,
        "size_branch": inputs.size_branch,
        "learning_rate": float(inputs.learning_rate),
        "data": inputs.data_digest,
    }


class _TrainJobInputSpec(BaseInterfaceInputSpec):
    data = File(exists=True, mandatory=True, desc="the cohort's arrays (.npz)")
    data_digest = traits.Str(mandatory=True, desc="SHA-256 of the arrays: part of the job's identity")
    fold = traits.Dict(mandatory=True, desc="name, test_index, trainval_index, sites")
    variant = traits.Str(mandatory=True)
    seed = traits.Int(mandatory=True)
    epochs = traits.Int(mandatory=True)
    patience = traits.Int(mandatory=True)
    batch_size = traits.Int(16, usedefault=True)
    precision = traits.Enum(*TRAIN_PRECISIONS[1:], usedefault=True,
                            desc="compute precision of levels 2-5 during training")
    size_branch = traits.Enum(*SIZE_BRANCHES, usedefault=True, desc="head of the variant")
    learning_rate = traits.Float(PAPER_LEARNING_RATE, usedefault=True, desc="Adam's learning rate")
    out_dir = traits.Str(mandatory=True, desc="folder of the job's model, curve, timing and done-marker")
    num_threads = traits.Int(1, usedefault=True, nohash=True,
                             desc="TensorFlow threads (set from the node's n_procs; see use_threads)")


class _TrainJobOutputSpec(TraitedSpec):
    model = File(exists=True, desc="the trained variant (.keras, best epoch)")
    curve = File(exists=True, desc="training curve (TSV)")
    done = File(exists=True, desc="done-marker (JSON): options and results of the job")
    timing = File(desc="the job's training time (JSON, seconds): kept out of the done-marker, which a "
                       "rerun reproduces byte for byte")


class TrainJob(SimpleInterface):
    """Train one variant on one fold, unless its done-marker says it is already done.

    The model, the training curve, the timing and, last, the done-marker are written
    atomically in ``out_dir``: a killed run leaves either a finished job or none, and a
    rerun trains only the jobs whose marker is missing or was made with other options.
    The model (:func:`~bids_stroke.model.bundle.save_keras`), the curve and the marker
    hold no time, so a job trained again gives the same bytes; its wall time goes to
    :data:`TIMING` beside the marker.
    """

    input_spec = _TrainJobInputSpec
    output_spec = _TrainJobOutputSpec

    def _run_interface(self, runtime):
        out = Path(self.inputs.out_dir)
        model_path, curve_path, done_path = out / "model.keras", out / "training_curve.tsv", out / "done.json"
        options = _job_options(self.inputs)
        if done_path.is_file() and model_path.is_file() and curve_path.is_file():
            done = json.loads(done_path.read_text())
            if done.get("options") == options:
                self._results.update(model=str(model_path), curve=str(curve_path), done=str(done_path))
                if (out / TIMING).is_file():
                    self._results["timing"] = str(out / TIMING)
                return runtime

        use_threads(self.inputs.num_threads)
        import keras
        import pandas as pd

        from bids_stroke.train.folds import Fold

        remove_partial_writes(out)
        _quiet_tensorflow()
        from bids_stroke.train.job import train_fold_variant
        from bids_stroke.train.loop import CURVE_COLUMNS, curve_rows

        data = np.load(self.inputs.data, allow_pickle=False)
        fold = Fold(
            name=self.inputs.fold["name"],
            test_index=np.asarray(self.inputs.fold["test_index"], dtype=np.int64),
            trainval_index=np.asarray(self.inputs.fold["trainval_index"], dtype=np.int64),
            sites=tuple(self.inputs.fold.get("sites", ())),
        )
        label = f"{fold.name} {self.inputs.variant}"

        marks: dict[str, list[float]] = {"train": [], "validation": []}

        class _EpochLine(keras.callbacks.Callback):
            """One progress line per epoch; the seconds of its training and validation passes."""

            def on_train_begin(self, logs=None):
                marks["begin"] = [time.perf_counter()]

            def on_epoch_begin(self, epoch, logs=None):
                marks["epoch"] = [time.perf_counter()]

            def on_test_begin(self, logs=None):
                if "epoch" in marks:  # validation inside fit (not a final evaluation)
                    marks["test"] = [time.perf_counter()]
                    marks["train"].append(marks["test"][0] - marks["epoch"][0])

            def on_epoch_end(self, epoch, logs=None):
                now = time.perf_counter()
                if "test" in marks:
                    marks["validation"].append(now - marks.pop("test")[0])
                else:
                    marks["train"].append(now - marks["epoch"][0])
                marks.pop("epoch", None)
                logs = logs or {}
                print(f"[bids-stroke] job {label}: epoch {epoch + 1}/{options['epochs']} "
                      f"loss {logs.get('loss', float('nan')):.4f} val_loss {logs.get('val_loss', float('nan')):.4f}",
                      file=sys.stderr, flush=True)

        start = time.perf_counter()
        result = train_fold_variant(
            data["volumes"], data["outcomes"], data["sites"], data["sides"], fold, self.inputs.variant,
            epochs=options["epochs"], patience=options["patience"], seed=options["seed"],
            batch_size=options["batch_size"], model_path=model_path, callbacks=[_EpochLine()],
            precision=options["precision"], size_branch=options["size_branch"],
            learning_rate=options["learning_rate"],
        )
        curve = pd.DataFrame(curve_rows(result["history"]), columns=list(CURVE_COLUMNS))
        write_tsv(curve_path, curve)
        timing_path = write_json(out / TIMING, {
            "seconds": round(time.perf_counter() - start, 2),
            "setup_seconds": round(marks.get("begin", [start])[0] - start, 2),
            "train_seconds": [round(t, 3) for t in marks["train"]],
            "validation_seconds": [round(t, 3) for t in marks["validation"]],
            "threads": int(self.inputs.num_threads),
        })
        write_json(done_path, {
            "options": options,
            "best_epoch": int(result["best_epoch"]),
            "best_val_loss": float(result["best_val_loss"]),
            "epochs_run": int(result["epochs_run"]),
            "stopped_early": bool(result["stopped_early"]),
            "n_train": int(len(result["train_index"])),
            "n_validation": int(len(result["validation_index"])),
            "validation_index": np.asarray(result["validation_index"]).tolist(),
            "validation_probabilities": [float(p) for p in result["validation_probabilities"]],
        })
        self._results.update(model=str(model_path), curve=str(curve_path), done=str(done_path),
                             timing=str(timing_path))
        return runtime


class _FoldResultsInputSpec(BaseInterfaceInputSpec):
    data = File(exists=True, mandatory=True, desc="the cohort's arrays (.npz)")
    fold = traits.Dict(mandatory=True, desc="name, test_index, trainval_index, sites")
    models = traits.List(File(exists=True), mandatory=True, desc="the fold's trained variants")
    participants = traits.List(traits.Dict, mandatory=True,
                               desc="per test participant: participant_id, preproc, reference, transform, source "
                                    "(an output in output_dir whose entities name the participant's outputs)")
    template = File(exists=True, mandatory=True, desc="template image giving the output grid")
    space = traits.Str(mandatory=True)
    output_dir = traits.Str(mandatory=True, desc="OUTPUT_DIR")
    out_file = traits.Str(mandatory=True, desc="where the fold's predictions go (TSV; a run_path of output_dir)")
    num_threads = traits.Int(1, usedefault=True, nohash=True,
                             desc="TensorFlow threads (set from the node's n_procs; see use_threads)")


class _FoldResultsOutputSpec(TraitedSpec):
    predictions = File(exists=True, desc="held-out participants' probabilities (TSV)")


class FoldResults(SimpleInterface):
    """Out-of-center probabilities and attention of a fold's held-out participants.

    The fold's variants run fused on each held-out participant; the ensemble attention
    per scale is put on the participant's native grid (model-grid affine), then into
    template space with its forward transform, and written at the
    :func:`~bids_stroke.bids.naming.derivative_path` of the participant's ``source`` with
    ``space-<TPL>_res-2_desc-loco<scale>_attention.nii.gz``. The probabilities go to
    ``out_file`` (``run_path(output_dir, "fold_predictions", fold=...)``).
    """

    input_spec = _FoldResultsInputSpec
    output_spec = _FoldResultsOutputSpec

    def _run_interface(self, runtime):
        use_threads(self.inputs.num_threads)
        import keras
        import nibabel as nib
        import pandas as pd

        from bids_stroke.bids.naming import derivative_path, parse_derivative
        from bids_stroke.bids.writers import write_nifti
        from bids_stroke.model.attention import attention_image, upsample_attention
        from bids_stroke.model.ensemble import FusedEnsemble
        from bids_stroke.spatial.warps import apply_to_template

        _quiet_tensorflow()
        remove_partial_writes(Path(self.inputs.out_file).parent)
        models = [keras.saving.load_model(path, compile=False, safe_mode=True) for path in self.inputs.models]
        ensemble = FusedEnsemble(models)
        data = np.load(self.inputs.data, allow_pickle=False)
        test_index = np.asarray(self.inputs.fold["test_index"], dtype=np.int64)
        rows = []
        for index, info in zip(test_index, self.inputs.participants):
            volume = data["volumes"][index]
            out = ensemble.predict(volume)
            row = {"participant_id": info["participant_id"], "fold": self.inputs.fold["name"]}
            row.update({name: float(p) for name, p in zip(out["names"], out["probability"][0])})
            row["ensemble"] = float(out["ensemble_probability"][0])
            rows.append(row)
            model_img = nib.load(info["preproc"])
            native = nib.load(info["reference"])
            source = parse_derivative(info["source"], self.inputs.output_dir)
            for scale in SCALES:
                grid_map = upsample_attention(out["ensemble_attention"][scale][0], model_img.shape[:3])
                native_map = attention_image(grid_map, model_img.affine, native)
                warped = apply_to_template(native_map, info["transform"], self.inputs.template)
                path = derivative_path(self.inputs.output_dir, source, space=self.inputs.space, res=DEFAULT_RESOLUTION,
                                       desc=f"loco{scale}", suffix="attention", extension=".nii.gz")
                write_nifti(path, warped, {
                    "Description": (
                        f"Out-of-center attention {scale}: mean over the variants trained without "
                        f"this participant's site (fold {self.inputs.fold['name']}), in template space."
                    ),
                    "AttentionScale": scale,
                    "Fold": self.inputs.fold["name"],
                    "Variants": list(out["names"]),
                })
        table = pd.DataFrame(rows)
        write_tsv(self.inputs.out_file, table)
        self._results["predictions"] = self.inputs.out_file
        return runtime


class _MakeBundleInputSpec(BaseInterfaceInputSpec):
    models = traits.List(File(exists=True), mandatory=True, desc="the variants trained on everyone")
    out_dir = traits.Str(mandatory=True, desc="the bundle folder")
    threshold = traits.Float(DECISION_THRESHOLD, usedefault=True)
    cohort = traits.Dict(mandatory=True, desc="n, sites, prevalence")
    seed = traits.Int(mandatory=True)
    extra = traits.Dict(desc="training options for the manifest")
    clinical = traits.Dict(desc="clinical columns, covariates (per participant), outcomes and required "
                                "(False for the default columns: a fusion that cannot be fitted is left "
                                "out); adds the final ensemble's clinical fusion to the manifest")


class _MakeBundleOutputSpec(TraitedSpec):
    manifest = File(exists=True)


class MakeBundle(SimpleInterface):
    """The final ensemble as a bundle usable with ``participant --model``."""

    input_spec = _MakeBundleInputSpec
    output_spec = _MakeBundleOutputSpec

    def _run_interface(self, runtime):
        import keras

        from bids_stroke.model.bundle import save_bundle

        models = [keras.saving.load_model(path, compile=False, safe_mode=True) for path in self.inputs.models]
        remove_partial_writes(Path(self.inputs.out_dir))
        extra = dict(self.inputs.extra or {})
        if self.inputs.clinical:
            from bids_stroke.workflows.group_fusion import final_fusion

            from bids_stroke.errors import BadInputError

            clinical = self.inputs.clinical
            try:
                extra["clinical_fusion"] = final_fusion(
                    clinical["columns"],
                    np.array(clinical["covariates"], dtype=float).reshape(-1, len(clinical["columns"])),
                    np.asarray(clinical["outcomes"]), [Path(path).parent / "done.json" for path in self.inputs.models])
            except BadInputError as err:
                if clinical.get("required", True):
                    raise
                # default columns: the bundle goes without a fusion, the group level says why
                LOGGER.warning("No clinical fusion in the bundle: %s", err)
        manifest = save_bundle(models, self.inputs.out_dir, threshold=self.inputs.threshold,
                               cohort=self.inputs.cohort, seed=self.inputs.seed, extra=extra or None)
        self._results["manifest"] = str(manifest)
        return runtime
