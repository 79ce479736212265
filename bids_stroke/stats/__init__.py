"""Statistics of the group level: metrics, baselines, comparisons and the cohort table.

Everything here is a pure function over arrays or DataFrames, except
:func:`write_group_statistics`, which writes the group tables.

The functions share one input, the merged leave-one-center-out predictions table: one row
per participant with ``participant_id``, ``site``, ``fold`` (the held-out site of the fold
that predicted this participant), ``outcome`` (1 = poor, mRS >= 3; 0 = good) and one
column per model holding its out-of-center probability of a poor outcome (the eight
variants ``f8-g1.5`` ... ``f16-g2-bn``, ``ensemble``, the baselines ``lr_volume`` and
``lr_aspects``, and the clinical fusions ``ensemble+clinical`` and ``volume+clinical``). A participant is predicted poor when its probability is ``>=`` the
decision threshold (0.5 unless stated).
"""

from .baselines import (
    DEFAULT_BASELINES,
    BaselineFeature,
    LocoBaseline,
    UnivariateLogisticBaseline,
    add_loco_baselines,
    loco_baseline,
)
from .calibration import brier_scores, calibration_intercepts, calibration_slopes
from .cohort import cohort_table, compare_categorical, compare_numeric
from .comparisons import (
    McNemarResult,
    compare_to_reference,
    comparisons_table,
    mcnemar_test,
    threshold_for_specificity,
)
from .decision import decision_curve, net_benefit
from .delong import DeLongResult, delong_auc_covariance, delong_ci, delong_test
from .fusion import LocoFusion, LogisticFusion, loco_clinical_fusion, loco_volume_clinical
from .metrics import METRIC_NAMES, BootstrapResult, bootstrap_metrics, classification_metrics
from .tables import loco_metrics_table, validate_predictions, write_group_statistics

__all__ = [
    "DEFAULT_BASELINES",
    "METRIC_NAMES",
    "BaselineFeature",
    "BootstrapResult",
    "DeLongResult",
    "LocoBaseline",
    "LocoFusion",
    "LogisticFusion",
    "McNemarResult",
    "UnivariateLogisticBaseline",
    "add_loco_baselines",
    "bootstrap_metrics",
    "brier_scores",
    "calibration_intercepts",
    "calibration_slopes",
    "classification_metrics",
    "cohort_table",
    "compare_categorical",
    "compare_numeric",
    "compare_to_reference",
    "comparisons_table",
    "decision_curve",
    "delong_auc_covariance",
    "delong_ci",
    "delong_test",
    "loco_baseline",
    "loco_clinical_fusion",
    "loco_metrics_table",
    "loco_volume_clinical",
    "mcnemar_test",
    "net_benefit",
    "threshold_for_specificity",
    "validate_predictions",
    "write_group_statistics",
]
