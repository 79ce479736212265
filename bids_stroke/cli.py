"""Command line of the BIDS App: ``bids-stroke BIDS_DIR OUTPUT_DIR {participant,group}``.

The parser turns arguments into a :class:`~bids_stroke.config.Config`; :func:`main`
runs the requested level and maps every :class:`~bids_stroke.errors.BidsStrokeError` to
one line on stderr and the exit code of the BIDS execution specification.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bids_stroke import __version__
from bids_stroke.config import (
    ANALYSIS_LEVELS,
    DEFAULT_CLINICAL_COLUMNS,
    LESION_SOURCES,
    NIPYPE_PLUGINS,
    SIZE_BRANCHES,
    TRAIN_PRECISIONS,
    VARIANT_NAMES,
    WORK_DIR,
    Config,
)
from bids_stroke.errors import (
    OUTPUT_ERRNOS,
    BidsStrokeError,
    ExitCode,
    MissingInputError,
    UnknownAnalysisLevel,
    UsageError,
)

LOGGER = logging.getLogger("bids_stroke")

EXIT_CODES_HELP = """\
exit codes (BIDS execution specification):
  0   success
  1   other failure (e.g. a processing step that failed; -v shows the traceback)
  16  BIDS validation failed
  17  unknown analysis level
  18  the participant/session filters selected no data
  64  usage error (options; OUTPUT_DIR equal to or inside BIDS_DIR's subjects, or
      equal to, inside or containing an input derivatives dataset)
  65  bad input data (a file that cannot be read or used)
  66  missing input (BIDS_DIR, a dataset_description.json, a file named by an option)
  73  the output cannot be created or written (permissions, full disk, quota)
after a crash, run the same command with the same --work-dir: it resumes.
"""


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors exit with 64 (EX_USAGE), not 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.USAGE), f"{self.prog}: error: {message}\n")


def _flags(name: str, *short: str) -> list[str]:
    """``--a-b`` plus its underscore spelling ``--a_b`` (and any short flags)."""
    flags = [*short, f"--{name}"]
    if "-" in name:
        flags.append(f"--{name.replace('-', '_')}")
    return flags


def _number(kind: type, allowed: str, accept) -> callable:
    """An argparse converter to ``kind`` that accepts values where ``accept(value)``."""

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {allowed}. Got {text!r} instead.")
        return value

    convert.kind = kind  # what the value becomes (read by bids_stroke.descriptor)
    return convert


def _default(name: str):
    """The default of the :class:`Config` field ``name`` (a fresh one for a factory)."""
    field = next(f for f in dataclasses.fields(Config) if f.name == name)
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


_positive_int = _number(int, "a positive integer", lambda v: v >= 1)
_non_negative_int = _number(int, "an integer >= 0", lambda v: v >= 0)
_positive_float = _number(float, "a positive number", lambda v: v > 0)
_mrs_threshold = _number(int, "an mRS grade from 1 to 6", lambda v: 1 <= v <= 6)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with every option documented."""
    parser = _Parser(
        prog="bids-stroke",
        description=(
            "Predict poor 3-month functional outcome (mRS >= 3) after ischaemic stroke "
            "from day-1 diffusion MRI with an ensemble of attention 3D CNNs, and show "
            "where in the brain the prediction came from (Moulton et al., J Cereb Blood "
            "Flow Metab 2022). Run 'participant' first, then 'group'."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bids_dir", type=Path, help="the input BIDS dataset (never written to)")
    parser.add_argument(
        "output_dir",
        type=Path,
        help="the output derivatives dataset (e.g. BIDS_DIR/derivatives/bids-stroke)",
    )
    parser.add_argument(
        "analysis_level",
        metavar="{participant,group}",
        help="participant: preprocessing (and prediction with --model), per subject; "
        "group: leave-one-center-out training, statistics and group maps",
    )
    parser.add_argument("--version", action="version", version=__version__, help="print the version and exit")

    sel = parser.add_argument_group("selecting data")
    sel.add_argument(
        *_flags("participant-label"),
        nargs="+",
        default=_default("participant_label"),
        metavar="LABEL",
        help="participants to process, with or without 'sub-', or files listing them "
        "(one per line); default: all",
    )
    sel.add_argument(
        *_flags("session-label"),
        nargs="+",
        default=_default("session_label"),
        metavar="LABEL",
        help="sessions to process, with or without 'ses-', or files listing them; default: all",
    )
    sel.add_argument(
        *_flags("bids-filter-file"),
        type=Path,
        default=_default("bids_filter_file"),
        metavar="FILE",
        help="JSON file of pybids entity filters per input kind (keys: dwi, trace, adc, "
        "lesion, brain_mask), e.g. {\"dwi\": {\"acquisition\": \"axial\"}}",
    )
    sel.add_argument(
        *_flags("lesion-dir"),
        type=Path,
        default=_default("lesion_dir"),
        metavar="PATH",
        help="a BIDS derivatives dataset holding the lesion masks "
        "(*_label-lesion_mask, *_desc-lesion_mask or *_label-lesion_roi); "
        "default: the datasets under BIDS_DIR/derivatives",
    )
    sel.add_argument(
        *_flags("lesion-source"),
        choices=LESION_SOURCES,
        default=_default("lesion_source"),
        help="the lesion mask the lesion-aware steps use: given-or-auto = a given mask, else the "
        "automatic one from the trace and ADC (computed whenever an ADC exists, also beside a "
        "given mask for their Dice); given = given masks only; auto = automatic masks only "
        "(default: %(default)s)",
    )
    sel.add_argument(
        *_flags("lesion-label"),
        type=_positive_int,
        default=_default("lesion_label"),
        metavar="N",
        help="the lesion's value in given lesion masks that are integer label maps (values 0, 1, 2, "
        "...); without it such masks are refused. Binary masks are used as they are; probability "
        "maps (values in [0, 1]) are lesion where >= 0.5, with a warning, the threshold recorded "
        "in the lesion measures",
    )
    sel.add_argument(
        *_flags("skip-bids-validation"),
        action="store_true",
        default=_default("skip_bids_validation"),
        help="do not check BIDS_DIR with bids-validator-deno",
    )

    perf = parser.add_argument_group("performance and execution")
    perf.add_argument(
        *_flags("work-dir", "-w"),
        type=Path,
        default=WORK_DIR,
        metavar="PATH",
        help="working folder for intermediate results, reused on a rerun (default: ./%(default)s)",
    )
    perf.add_argument(
        *_flags("nprocs"),
        *(["--n-cpus", "--n_cpus"]),
        type=_positive_int,
        default=_default("nprocs"),
        metavar="N",
        help="processes to run in parallel (default: every CPU available)",
    )
    perf.add_argument(
        *_flags("omp-nthreads"),
        type=_positive_int,
        default=_default("omp_nthreads"),
        metavar="N",
        help="threads per process for ANTs and the model (default: 1 at the participant level, "
        "where participants run side by side and each registration is reproducible; 1 at the group "
        "level with TensorFlow, where training jobs run side by side; min(8, --nprocs) with another "
        "Keras backend, KERAS_BACKEND=jax on a GPU). More threads make one registration faster, but ANTs' multi-threaded "
        "result changes from run to run; the count is recorded in logs/ and the transforms' sidecars",
    )
    perf.add_argument(
        *_flags("mem-gb"),
        type=_positive_float,
        default=_default("mem_gb"),
        metavar="GB",
        help="memory the scheduler may plan with, in GB (default: 90%% of the machine's; the group "
        "level plans each job with 1.5 GB + 4 x the cohort's arrays)",
    )
    perf.add_argument(
        *_flags("nipype-plugin"),
        choices=NIPYPE_PLUGINS,
        default=_default("nipype_plugin"),
        metavar="PLUGIN",
        help="nipype execution plugin: " + ", ".join(NIPYPE_PLUGINS) + " (default: %(default)s); "
        "SLURM, SGE, PBS, ... submit one job per step to a cluster",
    )
    perf.add_argument(
        *_flags("stop-on-first-crash"),
        action="store_true",
        default=_default("stop_on_first_crash"),
        help="stop at the first failing step (default: a failing participant stops alone, "
        "the others go on)",
    )
    perf.add_argument(
        *_flags("random-seed"),
        type=_non_negative_int,
        default=_default("random_seed"),
        metavar="SEED",
        help="seed of every random choice, recorded in the outputs (default: %(default)s)",
    )

    model = parser.add_argument_group("prediction (participant level)")
    model.add_argument(
        *_flags("model"),
        type=Path,
        default=_default("model"),
        metavar="PATH",
        help="a trained ensemble (a folder with manifest.json, e.g. OUTPUT_DIR/models/ensemble "
        "of a group run): adds predictions and attention maps",
    )

    group = parser.add_argument_group("group level")
    group.add_argument(*_flags("site-column"), default=_default("site_column"), metavar="COLUMN",
                       help="participants.tsv column naming the acquisition site (default: %(default)s)")
    group.add_argument(*_flags("outcome-column"), default=_default("outcome_column"), metavar="COLUMN",
                       help="participants.tsv column holding the 3-month mRS (default: %(default)s)")
    group.add_argument(*_flags("poor-threshold"), type=_mrs_threshold, default=_default("poor_threshold"),
                       metavar="MRS", help="poor outcome is mRS >= this grade (default: %(default)s)")
    group.add_argument(*_flags("aspects-column"), default=_default("aspects_column"), metavar="COLUMN",
                       help="participants.tsv column holding ASPECTS; the ASPECTS baseline is "
                       "skipped, with a note, when it is absent (default: %(default)s)")
    group.add_argument(*_flags("max-epochs"), type=_positive_int, default=_default("max_epochs"), metavar="N",
                       help="maximum training epochs per model (default: %(default)s)")
    group.add_argument(*_flags("patience"), type=_positive_int, default=_default("patience"), metavar="N",
                       help="early stopping after N epochs without a better validation loss "
                       "(default: %(default)s)")
    group.add_argument(*_flags("learning-rate"), type=_positive_float, default=_default("learning_rate"),
                       metavar="RATE", help="Adam's learning rate; the paper's is 1e-4, which few "
                       "epochs on a small cohort leave under-trained (default: %(default)g)")
    group.add_argument(*_flags("variants"), nargs="+", choices=VARIANT_NAMES, default=_default("variants"),
                       metavar="NAME",
                       help="variants to train and ensemble: " + ", ".join(VARIANT_NAMES) + " (default: all)")
    group.add_argument(*_flags("size-branch"), choices=SIZE_BRANCHES, default=_default("size_branch"),
                       help="what each variant's output unit sees besides the three attended "
                       "features. none: nothing (the paper's head); mean: also the deepest "
                       "features averaged over the whole volume, which carry the lesion's "
                       "extent that softmax-weighted attention averages cannot (an opt-in "
                       "deviation from the paper; default: %(default)s)")
    group.add_argument(*_flags("clinical-columns"), nargs="+", default=_default("clinical_columns"),
                       metavar="COLUMN",
                       help="numeric participants.tsv columns of the clinical models, each trained "
                       "and evaluated leave-one-center-out and compared with the ensemble by DeLong: "
                       "lr_clinical (a logistic regression on these columns), volume+clinical (log "
                       "lesion volume and these columns) and ensemble+clinical (the ensemble's logit "
                       "and these columns, fitted on each fold's training sites only; the bundle "
                       "keeps it for participant --model). 'none': no clinical model (default: "
                       + " ".join(DEFAULT_CLINICAL_COLUMNS) + " where participants.tsv has them, "
                       "else the clinical models are skipped with a note)")
    group.add_argument(*_flags("train-precision"), choices=TRAIN_PRECISIONS, default=_default("train_precision"),
                       help="compute precision of network levels 2-5 during training; the weights "
                       "and the saved models stay float32. auto: bfloat16 on CPUs with AMX and "
                       "on GPUs of compute capability >= 8.0, else float32; bfloat16 on other "
                       "hardware is refused (default: %(default)s)")
    group.add_argument(*_flags("bootstrap"), type=_non_negative_int, default=_default("bootstrap"), metavar="N",
                       help="bootstrap resamples for 95%% confidence intervals; 0 disables them "
                       "(default: %(default)s)")

    other = parser.add_argument_group("other")
    other.add_argument(*_flags("reports-only"), action="store_true", default=_default("reports_only"),
                       help="only regenerate the HTML reports and figures from existing outputs")
    other.add_argument("-v", "--verbose", action="count", default=_default("verbose"),
                       help="more log output (-vv: even more)")
    return parser


def _clinical_columns(values: Sequence[str] | None) -> list[str] | None:
    """``--clinical-columns``: None (the default columns where present), [] for 'none', else the columns.

    Raises
    ------
    UsageError
        'none' given together with column names.
    """
    if values is None:
        return None
    columns = list(dict.fromkeys(values))
    if "none" in columns:
        if len(columns) > 1:
            raise UsageError(f"--clinical-columns: 'none' cannot be combined with columns. Got {' '.join(values)}.")
        return []
    return columns


def config_from_args(opts: argparse.Namespace) -> Config:
    """Check the parsed arguments and turn them into a :class:`Config`.

    Raises
    ------
    UnknownAnalysisLevel, MissingInputError, UsageError
    """
    from bids_stroke.bids.filters import load_bids_filters
    from bids_stroke.bids.labels import normalize_labels

    if opts.analysis_level not in ANALYSIS_LEVELS:
        raise UnknownAnalysisLevel(
            f"'analysis_level' must be one of {', '.join(ANALYSIS_LEVELS)}. "
            f"Got {opts.analysis_level!r} instead."
        )
    bids_dir = opts.bids_dir.absolute()
    if not bids_dir.is_dir():
        raise MissingInputError(f"BIDS_DIR {bids_dir} does not exist or is not a folder.")
    for option, path in (("--lesion-dir", opts.lesion_dir), ("--model", opts.model),
                         ("--bids-filter-file", opts.bids_filter_file)):
        if path is not None and not path.exists():
            raise MissingInputError(f"{option} {path.absolute()} does not exist.")
    if opts.model is not None and opts.analysis_level == "group":
        raise UsageError("'--model' applies to the participant level only. Got it with 'group'.")
    work_dir = opts.work_dir.absolute()
    if work_dir.resolve().is_relative_to(bids_dir.resolve()):
        derivatives = bids_dir / "derivatives"
        if not work_dir.resolve().is_relative_to(derivatives.resolve()):
            raise UsageError(
                f"'--work-dir' must not lie inside BIDS_DIR (outside its derivatives). Got {work_dir} instead."
            )
    return Config(
        bids_dir=bids_dir,
        output_dir=opts.output_dir.absolute(),
        analysis_level=opts.analysis_level,
        participant_label=normalize_labels(opts.participant_label, prefix="sub-"),
        session_label=normalize_labels(opts.session_label, prefix="ses-"),
        bids_filters=load_bids_filters(opts.bids_filter_file) if opts.bids_filter_file else {},
        bids_filter_file=opts.bids_filter_file.absolute() if opts.bids_filter_file else None,
        skip_bids_validation=opts.skip_bids_validation,
        work_dir=work_dir,
        nprocs=opts.nprocs,
        omp_nthreads=opts.omp_nthreads,
        mem_gb=opts.mem_gb,
        nipype_plugin=opts.nipype_plugin,
        stop_on_first_crash=opts.stop_on_first_crash,
        random_seed=opts.random_seed,
        lesion_dir=opts.lesion_dir.absolute() if opts.lesion_dir else None,
        lesion_source=opts.lesion_source,
        lesion_label=opts.lesion_label,
        model=opts.model.absolute() if opts.model else None,
        site_column=opts.site_column,
        outcome_column=opts.outcome_column,
        poor_threshold=opts.poor_threshold,
        aspects_column=opts.aspects_column,
        max_epochs=opts.max_epochs,
        patience=opts.patience,
        learning_rate=opts.learning_rate,
        variants=list(dict.fromkeys(opts.variants)),
        size_branch=opts.size_branch,
        clinical_columns=_clinical_columns(opts.clinical_columns),
        train_precision=opts.train_precision,
        bootstrap=opts.bootstrap,
        verbose=opts.verbose,
        reports_only=opts.reports_only,
    )


def setup_logging(verbose: int) -> None:
    """bids-stroke's log lines on stderr: INFO, or DEBUG with ``verbose``."""
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s [bids-stroke] %(message)s", "%y%m%d-%H:%M:%S"))
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level)
    LOGGER.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Parameters
    ----------
    argv : sequence of str, default=None
        Arguments without the program name; None means ``sys.argv[1:]``.
    """
    os.environ.setdefault("NIPYPE_NO_ET", "1")  # nipype: no version check over the network
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow: no C++ start-up notes
    # TensorFlow's oneDNN kernels train the 3D convolutions about 10x faster than its
    # portable Eigen ones on x86 CPUs; on by default on Linux x86, made explicit here.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    parser = build_parser()
    try:
        opts = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0)
    setup_logging(opts.verbose)
    try:
        config = config_from_args(opts)
        from bids_stroke.workflows.base import run

        run(config)
    except BidsStrokeError as exc:
        print(f"bids-stroke: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("bids-stroke: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in OUTPUT_ERRNOS:
            return _unexpected(exc)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"bids-stroke: error: {where}cannot write: {exc.strerror}.", file=sys.stderr)
        return int(ExitCode.CANNOT_CREATE_OUTPUT)
    except Exception as exc:  # noqa: BLE001 - the last guard: one line, never a traceback
        return _unexpected(exc)
    return int(ExitCode.SUCCESS)


def _unexpected(exc: BaseException) -> int:
    """An error bids-stroke did not foresee: one line (the traceback with -v), exit 1."""
    LOGGER.debug("Unexpected error", exc_info=exc)
    message = str(exc).splitlines()[0] if str(exc) else ""
    print(f"bids-stroke: error: unexpected {type(exc).__name__}: {message} (run with -v for the traceback; "
          "please report it)", file=sys.stderr)
    return int(ExitCode.FAILURE)


__all__ = ["build_parser", "config_from_args", "main"]
