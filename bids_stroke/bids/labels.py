"""Participant and session labels (``--participant-label``, ``--session-label``).

A label is given with or without its prefix (``sub-``, ``ses-``), or through a file
listing labels (whitespace- or line-separated; ``#`` starts a comment).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import BadInputError, MissingInputError, UsageError

__all__ = ["normalize_labels"]

_LABEL_RE = re.compile(r"^[a-zA-Z0-9]+$")

#: Endings of a value that names a label file rather than a label.
_LABEL_FILE_SUFFIXES = (".txt", ".tsv", ".csv", ".lst")


def _names_a_file(item: str) -> bool:
    """Whether ``item`` looks like a path (a folder separator, or a label-file ending)."""
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return any(sep in item for sep in separators) or item.lower().endswith(_LABEL_FILE_SUFFIXES)


def _read_label_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise BadInputError(f"{path}: a label file must be UTF-8 text ({err}).") from err
    labels = []
    for line in text.splitlines():
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
    MissingInputError
        An item looks like a label file (it holds ``/`` or ends with ``.txt``, ``.tsv``
        ...) but no such file exists.
    BadInputError
        A label file is not UTF-8 text.
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
        elif _names_a_file(item_str):
            raise MissingInputError(
                f"'{param}': the label file {candidate.absolute()} does not exist (or is not a file)."
            )
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
