"""BIDS validation with the schema-based validator (``bids-validator-deno``).

The validator ships with its own runtime and schema on PyPI and runs offline. With
``--format json`` it prints one JSON object::

    {"issues": {"issues": [{"code": "DWI_MISSING_BVAL", "severity": "error",
                            "location": "/sub-01/dwi/sub-01_rec-TRACE_dwi.nii.gz",
                            "subCode": ..., "issueMessage": ..., "rule": ...}, ...],
                "codeMessages": {"DWI_MISSING_BVAL": "DWI scans must have ...", ...}},
     "summary": {"subjects": [...], "sessions": [...], "totalFiles": 13, ...}}

Some issues give ``affects`` (a list of paths) instead of ``location``. The exit status
is 16 when there are errors and 0 otherwise; the report on stdout is what counts.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

from ..errors import BidsStrokeError, BidsValidationError, MissingInputError

__all__ = [
    "VALIDATOR",
    "accept_derived_dwi",
    "find_validator",
    "run_validator",
    "summarise_issues",
    "validate_bids",
]

#: Name of the validator's executable.
VALIDATOR = "bids-validator-deno"
_SKIP_HINT = "install bids-validator-deno, or skip validation with --skip-bids-validation"


def find_validator(executable=None) -> str:
    """Return the path of the validator's executable.

    Parameters
    ----------
    executable : str or Path or None, default=None
        An explicit path or name; ``None`` looks for :data:`VALIDATOR` next to the
        running Python (its virtual environment) and then on ``PATH``.

    Raises
    ------
    BidsStrokeError
        No executable is found.
    """
    if executable is not None:
        found = shutil.which(str(executable))
        if found is None:
            raise BidsStrokeError(
                f"The BIDS validator {executable} cannot be run ({_SKIP_HINT})."
            )
        return found
    beside = Path(sys.executable).parent / VALIDATOR
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(VALIDATOR)
    if found is None:
        raise BidsStrokeError(f"The BIDS validator {VALIDATOR} is not found ({_SKIP_HINT}).")
    return found


def run_validator(bids_dir, *, executable=None, timeout=600) -> dict:
    """Run the BIDS validator on ``bids_dir`` and return its JSON report.

    Parameters
    ----------
    bids_dir : str or Path
        Root of the dataset.
    executable : str or Path or None, default=None
        The validator to run (see :func:`find_validator`).
    timeout : float, default=600
        Seconds before giving up.

    Returns
    -------
    dict
        The report, see the module docstring.

    Raises
    ------
    MissingInputError
        ``bids_dir`` does not exist.
    BidsStrokeError
        The validator is missing, times out or prints no JSON report.
    """
    root = Path(bids_dir).expanduser().absolute()
    if not root.is_dir():
        raise MissingInputError(f"BIDS_DIR {root} does not exist (or is not a folder).")
    command = [find_validator(executable), "--format", "json", str(root)]
    env = {**os.environ, "NO_COLOR": "1"}
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env=env, check=False)
    except subprocess.TimeoutExpired as err:
        raise BidsStrokeError(
            f"The BIDS validator took more than {timeout} s on {root} "
            "(skip it with --skip-bids-validation)."
        ) from err
    except OSError as err:
        raise BidsStrokeError(f"The BIDS validator cannot be run: {err} ({_SKIP_HINT}).") from err
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BidsStrokeError(
            f"The BIDS validator failed on {root} (exit {proc.returncode}): {last} "
            "(skip it with --skip-bids-validation)."
        ) from None
    if not isinstance(report, dict) or "issues" not in report:
        raise BidsStrokeError(f"The BIDS validator gave no report on {root}.")
    return report


def _issue_list(report) -> list[dict]:
    issues = report.get("issues", {})
    if isinstance(issues, dict):
        issues = issues.get("issues", [])
    return [i for i in issues if isinstance(i, dict)]


def _first_sentence(text, limit=120) -> str:
    text = " ".join(str(text).split())
    end = text.find(". ")
    if end != -1:
        text = text[: end + 1]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _group_lines(issues, messages, max_lines) -> list[str]:
    groups: OrderedDict[str, list[dict]] = OrderedDict()
    for issue in issues:
        groups.setdefault(str(issue.get("code", "UNKNOWN")), []).append(issue)
    lines = []
    for code, items in groups.items():
        message = _first_sentence(
            items[0].get("note") or messages.get(code) or items[0].get("issueMessage") or code
        )
        subcodes = sorted({str(i["subCode"]) for i in items if i.get("subCode")})
        if subcodes:
            shown = ", ".join(subcodes[:3]) + (", ..." if len(subcodes) > 3 else "")
            message = f"{message} [{shown}]"
        paths = []
        for item in items:
            where = item.get("location") or item.get("affects") or []
            for path in [where] if isinstance(where, str) else where:
                if path not in paths:
                    paths.append(path)
        n = len(paths)
        if n:
            message += f" ({n} file{'s' if n != 1 else ''}, e.g. {paths[0]})"
        lines.append(f"{code}: {message}")
    if len(lines) > max_lines:
        extra = len(lines) - max_lines
        lines = lines[:max_lines] + [f"... and {extra} more"]
    return lines


#: Validator errors that bids-stroke accepts on derived DWI images (``rec-TRACE``,
#: ``rec-ADC``): clinical exports give a trace and an ADC map without ``.bval``/``.bvec``
#: (the b-value is read from the sidecar), or beside a 4D series whose ``.bval`` they
#: inherit although they hold one volume.
DERIVED_DWI_CODES = frozenset({"DWI_MISSING_BVAL", "DWI_MISSING_BVEC", "VOLUME_COUNT_MISMATCH"})
_DERIVED_DWI = re.compile(r"_rec-(TRACE|ADC)_dwi\.nii(\.gz)?$")


def accept_derived_dwi(report) -> dict:
    """Turn the validator's errors on derived DWI images into warnings.

    Only the :data:`DERIVED_DWI_CODES` issues located on ``*_rec-TRACE_dwi`` or
    ``*_rec-ADC_dwi`` images change; their message says why they are accepted.

    Parameters
    ----------
    report : dict
        From :func:`run_validator`; not modified.

    Returns
    -------
    dict
        A copy of ``report`` with those issues at severity ``"warning"``.
    """
    report = copy.deepcopy(report)
    for issue in _issue_list(report):
        where = issue.get("location") or issue.get("affects") or []
        paths = [where] if isinstance(where, str) else list(where)
        if (
            issue.get("code") in DERIVED_DWI_CODES
            and str(issue.get("severity", "")).lower() == "error"
            and paths
            and all(_DERIVED_DWI.search(str(path)) for path in paths)
        ):
            issue["severity"] = "warning"
            issue["note"] = (
                "accepted by bids-stroke: a trace or ADC image is a single volume whose "
                "b-value comes from its sidecar"
            )
    return report


def summarise_issues(report, *, max_lines=5) -> tuple[list[str], list[str]]:
    """Summarise a validator report, one line per issue code.

    Parameters
    ----------
    report : dict
        From :func:`run_validator`.
    max_lines : int, default=5
        Most lines per list; the rest is counted in a final ``"... and N more"`` line.

    Returns
    -------
    errors, warnings : list of str
        Lines ``"CODE: message [subcodes] (N files, e.g. /path)"``, in the order the
        codes first appear.
    """
    issues = _issue_list(report)
    messages = report.get("issues", {}).get("codeMessages", {}) \
        if isinstance(report.get("issues"), dict) else {}
    errors = [i for i in issues if str(i.get("severity", "error")).lower() == "error"]
    warnings = [i for i in issues if str(i.get("severity", "")).lower() == "warning"]
    return (_group_lines(errors, messages, max_lines),
            _group_lines(warnings, messages, max_lines))


def validate_bids(bids_dir, *, executable=None, timeout=600, max_lines=5) -> list[str]:
    """Validate ``bids_dir``; raise on errors, return the warning lines.

    Parameters
    ----------
    bids_dir : str or Path
        Root of the dataset.
    executable : str or Path or None, default=None
        See :func:`find_validator`.
    timeout : float, default=600
        Seconds before giving up.
    max_lines : int, default=5
        Lines of summary per severity.

    Returns
    -------
    list of str
        Summary lines of the warnings (see :func:`summarise_issues`).

    Errors on derived DWI images that bids-stroke reads without ``.bval``/``.bvec``
    are reported as warnings (:func:`accept_derived_dwi`).

    Raises
    ------
    BidsValidationError
        The dataset has errors. The message's first line is
        ``"<bids_dir> is not a valid BIDS dataset: N errors"``, followed by the summary
        lines and a hint.
    """
    report = accept_derived_dwi(run_validator(bids_dir, executable=executable, timeout=timeout))
    error_lines, warning_lines = summarise_issues(report, max_lines=max_lines)
    n_errors = sum(1 for i in _issue_list(report)
                   if str(i.get("severity", "error")).lower() == "error")
    if n_errors:
        root = Path(bids_dir).expanduser().absolute()
        head = f"{root} is not a valid BIDS dataset: {n_errors} error{'s' if n_errors != 1 else ''}"
        lines = [head] + [f"  {line}" for line in error_lines]
        lines.append("  (fix the dataset, or skip this check with --skip-bids-validation)")
        raise BidsValidationError("\n".join(lines))
    return warning_lines
