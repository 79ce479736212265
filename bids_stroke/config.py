"""The options of one bids-stroke run.

:class:`Config` holds every setting, documented once here; the command line fills it
(:mod:`bids_stroke.cli`), the workflows read it, and :meth:`Config.save` writes it into
the outputs (``logs/config-<run id>.json``) so that every result can be traced to the
options and the seed that produced it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import uuid
from datetime import datetime, timezone
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bids_stroke import __version__

#: Analysis levels of the BIDS-App convention.
ANALYSIS_LEVELS = ("participant", "group")

#: The eight light-weight variants of the attention CNN: a 2×2×2 factorial of the initial
#: number of feature maps (F0 = 8 or 16), their growth per level (×1.5 or ×2) and a
#: bottleneck layer between levels (``-bn``) or none.
VARIANT_NAMES = (
    "f8-g1.5",
    "f8-g1.5-bn",
    "f8-g2",
    "f8-g2-bn",
    "f16-g1.5",
    "f16-g1.5-bn",
    "f16-g2",
    "f16-g2-bn",
)

#: Values of ``--lesion-source``: where the lesion mask comes from.
LESION_SOURCES = ("given-or-auto", "given", "auto")

#: Values of ``--size-branch``: what the output unit sees besides the attended features.
#: ``none``: only the three attended features (the paper's head); ``mean``: also the
#: deepest level's features averaged over the whole volume, which grow with the lesion's
#: extent (the attended features are softmax-weighted averages, blind to it).
SIZE_BRANCHES = ("none", "mean")

#: The paper's training protocol: most epochs per model and the early-stopping patience.
PAPER_MAX_EPOCHS = 150
PAPER_PATIENCE = 30
#: The paper's Adam learning rate.
PAPER_LEARNING_RATE = 1e-4

#: participants.tsv columns of the clinical models by default (used where present).
DEFAULT_CLINICAL_COLUMNS = ("age", "nihss")


def training_protocol(variants, max_epochs: int, patience: int, learning_rate: float = PAPER_LEARNING_RATE,
                      size_branch: str = "none") -> dict:
    """How a training run compares with the paper's protocol, for the bundle's manifest.

    Parameters
    ----------
    variants : sequence of str
        The variants trained.
    max_epochs, patience : int
    learning_rate : float, default=:data:`PAPER_LEARNING_RATE`
    size_branch : {"none", "mean"}, default="none"
        ``mean`` adds a head the paper does not have (:data:`SIZE_BRANCHES`).

    Returns
    -------
    dict
        ``name``: ``"paper"`` (all eight variants, at most :data:`PAPER_MAX_EPOCHS` epochs,
        patience :data:`PAPER_PATIENCE`, learning rate :data:`PAPER_LEARNING_RATE`, the
        paper's head) or ``"reduced"``; ``deviations``: one line each.

    Examples
    --------
    >>> training_protocol(["f8-g1.5"], 3, 2)["deviations"]
    ['1 of 8 variants (f8-g1.5)', 'at most 3 epochs instead of 150', 'patience 2 instead of 30']
    """
    deviations = []
    if sorted(variants) != sorted(VARIANT_NAMES):
        deviations.append(f"{len(variants)} of {len(VARIANT_NAMES)} variants ({', '.join(variants)})")
    if int(max_epochs) != PAPER_MAX_EPOCHS:
        deviations.append(f"at most {max_epochs} epochs instead of {PAPER_MAX_EPOCHS}")
    if int(patience) != PAPER_PATIENCE:
        deviations.append(f"patience {patience} instead of {PAPER_PATIENCE}")
    if float(learning_rate) != PAPER_LEARNING_RATE:
        deviations.append(f"learning rate {learning_rate:g} instead of {PAPER_LEARNING_RATE:g}")
    if size_branch != "none":
        deviations.append(f"size branch '{size_branch}' beside the attended features")
    return {"name": "reduced" if deviations else "paper", "deviations": deviations}


#: Values of ``--train-precision`` (see :mod:`bids_stroke.train.precision`): ``auto`` and
#: the compute precisions of :func:`bids_stroke.model.variants.build_variant`.
TRAIN_PRECISIONS = ("auto", "float32", "bfloat16")

#: nipype execution plugins accepted by ``--nipype-plugin``.
NIPYPE_PLUGINS = (
    "Linear",
    "MultiProc",
    "LegacyMultiProc",
    "SLURM",
    "SLURMGraph",
    "SGE",
    "SGEGraph",
    "PBS",
    "PBSGraph",
    "LSF",
    "Condor",
    "CondorDAGMan",
    "OAR",
    "Debug",
)

#: Default working folder, relative to the current folder (:class:`Config` makes it
#: absolute).
WORK_DIR = Path("work")


def new_run_id() -> str:
    """``YYYYmmdd-HHMMSS_<6 hex>``: the UTC time and a random suffix."""
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}_{uuid.uuid4().hex[:6]}"


def keras_backend() -> str:
    """The Keras backend the jobs will use (``KERAS_BACKEND``, TensorFlow by default), read
    without importing Keras."""
    return os.environ.get("KERAS_BACKEND", "tensorflow").strip().lower() or "tensorflow"


@dataclass
class Config:
    """Every option of a bids-stroke run.

    Attributes
    ----------
    bids_dir : pathlib.Path
        The input BIDS dataset (read only; nothing is ever written there).
    output_dir : pathlib.Path
        The derivatives dataset written by bids-stroke.
    analysis_level : {"participant", "group"}
        ``participant``: per-subject preprocessing (and prediction with ``model``);
        ``group``: leave-one-center-out training, statistics and group maps.
    participant_label : list of str, default=[]
        Participants to process, without ``sub-``; empty means all.
    session_label : list of str, default=[]
        Sessions to process, without ``ses-``; empty means all.
    bids_filters : dict, default={}
        pybids entity filters per input kind (``dwi``, ``trace``, ``adc``, ``lesion``,
        ``brain_mask``) from ``--bids-filter-file``.
    bids_filter_file : pathlib.Path or None, default=None
        The JSON file ``bids_filters`` was read from (``--bids-filter-file``, absolute),
        recorded with the outputs; None when there is none.
    skip_bids_validation : bool, default=False
        Do not run ``bids-validator-deno`` on BIDS_DIR.
    work_dir : pathlib.Path, default=WORK_DIR
        nipype's working folder; reused on a rerun so finished steps are not recomputed.
        The default is made absolute (under the current folder).
    nprocs : int or None, default=None
        Processes for the nipype plugin; None means every CPU available.
    omp_nthreads : int or None, default=None
        Threads per process for ANTs and the model; None means 1 at the participant
        level (ANTs' multi-threaded registration is not reproducible: its result changes
        from run to run; parallelism comes from running participants side by side), 1 at
        the group level with Keras's TensorFlow backend (the CPU: training jobs side by
        side, which trained 1.2-1.9x more images/s on two cores than one job on both) and
        min(8, nprocs) with another backend (one accelerator for one job at a time).
    mem_gb : float or None, default=None
        Memory (GB) the nipype scheduler may plan with; None means MultiProc's default,
        90 % of the machine's (only the group level's jobs say how much they need).
    nipype_plugin : str, default="MultiProc"
        nipype execution plugin (:data:`NIPYPE_PLUGINS`).
    stop_on_first_crash : bool, default=False
        Stop every participant at the first failing step, instead of letting the other
        participants go on.
    random_seed : int, default=0
        Seed of every random choice (splits, oversampling, augmentation, initial weights).
    lesion_dir : pathlib.Path or None, default=None
        A BIDS derivatives dataset holding lesion masks; None means BIDS_DIR/derivatives.
    lesion_source : {"given-or-auto", "given", "auto"}, default="given-or-auto"
        The lesion mask of the lesion-aware steps: a given mask, else the automatic one
        (:mod:`bids_stroke.preprocess.lesion_auto`); ``given``: given masks only;
        ``auto``: automatic masks only (given ones are ignored).
    lesion_label : int or None, default=None
        The lesion's value in given lesion masks that are integer label maps; None
        refuses such masks (binary masks and probability maps do not need it).
    model : pathlib.Path or None, default=None
        A trained ensemble bundle (a folder with ``manifest.json``) used for prediction.
    site_column, outcome_column, aspects_column : str
        participants.tsv columns holding the acquisition site, the mRS at 3 months and the
        ASPECTS score (``site``, ``mrs``, ``aspects`` by default).
    poor_threshold : int, default=3
        Poor outcome is mRS >= ``poor_threshold``.
    max_epochs : int, default=150
        Maximum training epochs per model.
    patience : int, default=30
        Early stopping: epochs without improvement of the validation loss.
    variants : list of str, default=all eight
        Which variants of :data:`VARIANT_NAMES` to train and ensemble.
    learning_rate : float, default=1e-4
        Adam's learning rate (:data:`PAPER_LEARNING_RATE`).
    size_branch : {"none", "mean"}, default="none"
        Head of every variant (:data:`SIZE_BRANCHES`, :func:`bids_stroke.model.variants.build_variant`).
    clinical_columns : list of str or None, default=None
        participants.tsv columns of the clinical models (:mod:`bids_stroke.stats.fusion`):
        ``lr_clinical`` (a logistic regression on them), ``volume+clinical`` (with the log
        lesion volume) and ``ensemble+clinical`` (with the ensemble's logit). None:
        :data:`DEFAULT_CLINICAL_COLUMNS` where participants.tsv has them (else the models
        are skipped, with a note); an empty list: no clinical model.
    train_precision : {"auto", "float32", "bfloat16"}, default="auto"
        Compute precision of levels 2–5 of the network during training
        (:mod:`bids_stroke.train.precision`); ``auto`` = bfloat16 where the hardware
        computes it natively.
    bootstrap : int, default=10000
        Bootstrap resamples for the 95 % confidence intervals (0 disables them).
    verbose : int, default=0
        Logging verbosity (0 = INFO, >= 1 = DEBUG).
    reports_only : bool, default=False
        Only regenerate the HTML reports and figures from the outputs already in
        OUTPUT_DIR (nothing is recomputed).
    run_id : str
        Identifier of this run (UTC time stamp and a random suffix), in the names of the
        files written to ``logs/``.
    """

    bids_dir: Path
    output_dir: Path
    analysis_level: str
    participant_label: list[str] = field(default_factory=list)
    session_label: list[str] = field(default_factory=list)
    bids_filters: dict[str, Any] = field(default_factory=dict)
    bids_filter_file: Path | None = None
    skip_bids_validation: bool = False
    work_dir: Path = field(default_factory=lambda: WORK_DIR.absolute())
    nprocs: int | None = None
    omp_nthreads: int | None = None
    mem_gb: float | None = None
    nipype_plugin: str = "MultiProc"
    stop_on_first_crash: bool = False
    random_seed: int = 0
    lesion_dir: Path | None = None
    lesion_source: str = "given-or-auto"
    lesion_label: int | None = None
    model: Path | None = None
    site_column: str = "site"
    outcome_column: str = "mrs"
    poor_threshold: int = 3
    aspects_column: str = "aspects"
    max_epochs: int = PAPER_MAX_EPOCHS
    patience: int = PAPER_PATIENCE
    learning_rate: float = PAPER_LEARNING_RATE
    variants: list[str] = field(default_factory=lambda: list(VARIANT_NAMES))
    size_branch: str = "none"
    clinical_columns: list[str] | None = None
    train_precision: str = "auto"
    bootstrap: int = 10000
    verbose: int = 0
    reports_only: bool = False
    run_id: str = field(default_factory=lambda: new_run_id())

    def resolved_nprocs(self) -> int:
        """Processes to use: ``nprocs``, else the CPUs this process may run on."""
        if self.nprocs:
            return self.nprocs
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    def resolved_omp_nthreads(self) -> int:
        """Threads per process: ``omp_nthreads``, else 1 at the participant level (one
        reproducible registration per process) and at the group level on TensorFlow (jobs
        side by side), min(8, processes) at the group level on another Keras backend."""
        if self.omp_nthreads:
            return self.omp_nthreads
        if self.analysis_level == "participant" or keras_backend() == "tensorflow":
            return 1
        return min(8, self.resolved_nprocs())

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON-ready values, with the environment that ran them."""
        options = {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in dataclasses.asdict(self).items()
        }
        return {
            "bids_stroke_version": __version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "options": options,
            "resources": {"nprocs": self.resolved_nprocs(), "omp_nthreads": self.resolved_omp_nthreads()},
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` (atomically); return ``path``."""
        from bids_stroke.bids.writers import write_json

        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Config:
        """Read a configuration written by :meth:`save`."""
        options = json.loads(Path(path).read_text())["options"]
        for key in ("bids_dir", "output_dir", "work_dir", "lesion_dir", "model", "bids_filter_file"):
            if options.get(key) is not None:
                options[key] = Path(options[key])
        return cls(**options)
