"""Reading ``participants.tsv``."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ..errors import BadInputError, MissingInputError

__all__ = ["read_participants"]


def read_participants(bids_dir_or_tsv, *, required_columns=(), label_columns=()) -> pd.DataFrame:
    """Read a BIDS ``participants.tsv``.

    Parameters
    ----------
    bids_dir_or_tsv : str or Path
        The dataset root (its ``participants.tsv`` is read) or the TSV file itself.
    required_columns : mapping of str to str, or iterable of str, default=()
        Columns that must be present. A mapping gives, for each column, the command-line
        option that names another column (e.g. ``{"site": "--site-column"}``); the
        error message then suggests it.
    label_columns : iterable of str, default=()
        Columns of labels (e.g. the site column): read as text, stripped of surrounding
        spaces, so that ``01`` and ``1`` stay two labels (pandas would read both as the
        number 1). Absent ones are ignored here (``required_columns`` requires them).

    Returns
    -------
    pandas.DataFrame
        One row per participant, indexed by ``participant_id`` (strings with the
        ``sub-`` prefix, added where the file omits it); ``participant_id`` is the index
        only, not also a column (``.reset_index()`` makes it one). ``n/a`` cells are
        NaN; ``label_columns`` hold strings; the other columns keep the types pandas
        infers.

    Raises
    ------
    MissingInputError
        The file does not exist.
    BadInputError
        The file cannot be parsed, has no ``participant_id`` column, has a missing or
        duplicated participant id, or lacks a required column.
    """
    path = Path(bids_dir_or_tsv).expanduser()
    if path.is_dir():
        path = path / "participants.tsv"
    if not path.is_file():
        raise MissingInputError(f"{path} does not exist (needed: participant_id and "
                                "the group-level columns).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False,
                                dtype=dict.fromkeys(["participant_id", *label_columns], str),
                                index_col=False)
    except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError,
            UnicodeDecodeError) as err:
        reason = " ".join(str(err).split())
        raise BadInputError(f"{path}: not a readable tab-separated table ({reason}).") from err

    if "participant_id" not in table.columns:
        raise BadInputError(
            f"{path}: missing column 'participant_id' (columns present: "
            f"{', '.join(map(str, table.columns)) or 'none'})."
        )
    ids = table["participant_id"]
    if ids.isna().any():
        rows = [i + 2 for i in ids.index[ids.isna()]]
        raise BadInputError(f"{path}: empty participant_id on line(s) {rows}.")
    ids = ids.str.strip()
    ids = ids.where(ids.str.startswith("sub-"), "sub-" + ids)
    table["participant_id"] = ids
    duplicated = sorted(set(ids[ids.duplicated()]))
    if duplicated:
        raise BadInputError(
            f"{path}: participant_id must be unique. Got duplicates {', '.join(duplicated)}."
        )

    options = dict(required_columns) if isinstance(required_columns, Mapping) \
        else {c: None for c in required_columns}
    for column, option in options.items():
        if column not in table.columns:
            present = ", ".join(map(str, table.columns))
            hint = f" Use {option} to name another column." if option else ""
            raise BadInputError(
                f"{path}: missing column '{column}' (needed for the group level; "
                f"columns present: {present}).{hint}"
            )
    for column in label_columns:
        if column in table.columns and column != "participant_id":
            labels = table[column].str.strip()
            table[column] = labels.where(labels != "n/a")  # " n/a " is n/a too
    table = table.drop(columns="participant_id")
    table.index = pd.Index(ids.to_numpy(), name="participant_id")
    return table
