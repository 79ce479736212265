"""Participant and session labels (``--participant-label``, ``--session-label``).

A label is given with or without its prefix (``sub-``, ``ses-``), or through a file
listing labels (whitespace- or line-separated; ``#`` starts a comment).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import UsageError

__all__ = ["normalize_labels"]

_LABEL_RE = re.compile(r"^[a-zA-Z0-9]+$")


def _read_label_file(path: Path) -> list[str]:
    labels = []
    for line in path.read_text(encoding="utf-8").splitlines():
        labels.extend(line.split("#", 1)[0].split())
    return labels


def normalize_labels(labels, prefix="sub-") -> list[str]:
    """Return BIDS labels without their prefix, de-duplicated, in the given order.

    Parameters
    ----------
    labels : str or iterable of str or None
        Labels, with or without ``prefix``. An item naming an existing file is read as a
        list of labels (whitespace- or line-separated; ``#`` starts a comment).
    prefix : {"sub-", "ses-"}, default="sub-"
        The entity prefix to strip; also names the parameter in error messages.

    Returns
    -------
    list of str
        Empty when ``labels`` is ``None`` or empty.

    Raises
    ------
    UsageError
        A label is empty or not alphanumeric.
    """
    param = {"sub-": "participant_label", "ses-": "session_label"}.get(prefix, "label")
    if labels is None:
        return []
    if isinstance(labels, (str, Path)):
        labels = [labels]
    expanded = []
    for item in labels:
        item_str = str(item).strip()
        candidate = Path(item_str).expanduser()
        maybe_file = isinstance(item, Path) or not _LABEL_RE.match(item_str.removeprefix(prefix))
        if item_str and maybe_file and candidate.is_file():
            expanded.extend(_read_label_file(candidate))
        else:
            expanded.append(item_str)
    result: list[str] = []
    for item in expanded:
        label = item[len(prefix):] if item.startswith(prefix) else item
        if not _LABEL_RE.match(label):
            raise UsageError(
                f"'{param}' must be alphanumeric BIDS labels. Got {label!r} instead."
            )
        if label not in result:
            result.append(label)
    return result
