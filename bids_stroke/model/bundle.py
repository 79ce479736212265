"""The trained ensemble bundle: ``manifest.json`` plus one ``.keras`` file per variant.

A bundle is a folder::

    manifest.json
    f8-g1.5.keras
    f8-g1.5-bn.keras
    ...

``manifest.json`` holds the format version (:data:`FORMAT_VERSION`), the bids-stroke
version, the Keras backend used, the input shape, each variant (name, file,
hyper-parameters, parameter count), the decision threshold, a summary of the training
cohort (``n``, ``sites``, ``prevalence`` of poor outcome), the random seed and the
SHA-256 of every variant file. :func:`save_bundle` writes every file atomically, the
manifest last, and every ``.keras`` file byte-reproducibly (:func:`save_keras`: the same
model always gives the same bytes, so the hashes of a resumed run equal those of an
uninterrupted one). :func:`load_bundle` checks the manifest and every checksum before loading
anything, and loads the variants in Keras safe mode (no arbitrary code runs); a bundle
that does not match its manifest is refused with
:class:`~bids_stroke.errors.BadInputError` (exit 65).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras

from bids_stroke import __version__
from bids_stroke.bids.writers import atomic_output, write_json
from bids_stroke.errors import BadInputError, MissingInputError

from . import layers  # noqa: F401  (registers the custom layers for loading)
from .ensemble import FusedEnsemble
from .spec import MANIFEST
from .variants import VARIANTS

__all__ = ["FORMAT_VERSION", "MANIFEST", "ZIP_DATE_TIME", "Bundle", "clinical_fusion", "load_bundle", "read_manifest",
           "save_bundle", "save_keras", "sha256"]

#: Version of the bundle layout; :func:`load_bundle` refuses any other.
FORMAT_VERSION = 1

#: Time stamp of every entry of a ``.keras`` file written by :func:`save_keras` (the
#: earliest a zip file can hold), in place of the time of the save.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)

#: Entry of a ``.keras`` file that Keras writes with the time of the save (``date_saved``).
_KERAS_METADATA = "metadata.json"


_COHORT_KEYS = ("n", "sites", "prevalence")


def sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_keras(model: keras.Model, path: str | os.PathLike) -> Path:
    """Save a model as a byte-reproducible ``.keras`` file, atomically; return ``path``.

    Keras writes the time of the save into the file (the zip entries' time stamps and
    ``date_saved`` in its ``metadata.json``); here the entries keep Keras's order and get
    :data:`ZIP_DATE_TIME`, and ``metadata.json`` keeps only ``keras_version``, so the same
    model (architecture and weights) always gives the same bytes. The file loads with
    :func:`keras.saving.load_model` as any other.

    Parameters
    ----------
    model : keras.Model
    path : path-like
        Destination ending in ``.keras``; written through
        :func:`~bids_stroke.bids.writers.atomic_output`.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        When ``path`` does not end in ``.keras``.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"'model_path' must end with .keras. Got {str(path)!r} instead.")
    with atomic_output(path) as tmp:
        model.save(tmp)
        tmp.write_bytes(_reproducible_keras_zip(tmp.read_bytes()))
    return path


def _reproducible_keras_zip(data: bytes) -> bytes:
    """The bytes of a ``.keras`` zip rewritten without the time of the save."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == _KERAS_METADATA:
                content = _without_save_date(content)
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE_TIME)
            entry.compress_type = info.compress_type
            entry.external_attr = 0o644 << 16
            target.writestr(entry, content)
    return out.getvalue()


def _without_save_date(metadata: bytes) -> bytes:
    """Keras's ``metadata.json`` without its ``date_saved``."""
    fields = json.loads(metadata)
    fields.pop("date_saved", None)
    return json.dumps(fields, sort_keys=True).encode()


@dataclass(frozen=True)
class Bundle:
    """A loaded ensemble.

    Attributes
    ----------
    path : pathlib.Path
        The bundle folder.
    manifest : dict
        The content of ``manifest.json``.
    models : tuple of keras.Model
        The variants, in manifest order.
    """

    path: Path
    manifest: dict
    models: tuple = field(repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        """The variants' names."""
        return tuple(model.name for model in self.models)

    @property
    def threshold(self) -> float:
        """Decision threshold on the ensemble probability (poor outcome if >=)."""
        return float(self.manifest["threshold"])

    @functools.cached_property
    def ensemble(self) -> FusedEnsemble:
        """The variants fused into one compiled call (built on first use)."""
        return FusedEnsemble(self.models)


def save_bundle(
    models: Sequence[keras.Model],
    out_dir: str | os.PathLike,
    *,
    threshold: float,
    cohort: Mapping,
    seed: int,
    extra: Mapping | None = None,
) -> Path:
    """Write a trained ensemble as a bundle folder.

    Parameters
    ----------
    models : sequence of keras.Model
        Trained variants, named after :data:`bids_stroke.config.VARIANT_NAMES`, with one
        input shape.
    out_dir : path-like
        The bundle folder (created; existing files of the same names are replaced).
    threshold : float
        Decision threshold in [0, 1] on the ensemble probability.
    cohort : mapping
        Training cohort summary: ``n`` (int), ``sites`` (list of site labels, or their
        number), ``prevalence`` (fraction of poor outcome in [0, 1]).
    seed : int
        The random seed of the training.
    extra : mapping, default=None
        More JSON-ready fields for the manifest (e.g. training options).

    Returns
    -------
    pathlib.Path
        The path of ``manifest.json``.
    """
    models = list(models)
    if not models:
        raise ValueError("'models' must hold at least one variant. Got none instead.")
    names = [model.name for model in models]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or len(set(names)) != len(names):
        raise ValueError(
            f"'models' must be distinct variants of {', '.join(VARIANTS)}. Got {names} instead."
        )
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"'threshold' must be in [0, 1]. Got {threshold} instead.")
    missing = [key for key in _COHORT_KEYS if key not in cohort]
    if missing:
        raise ValueError(f"'cohort' must have the keys {list(_COHORT_KEYS)}. Missing {missing}.")
    shapes = {tuple(model.input_shape[1:]) for model in models}
    if len(shapes) != 1:
        raise ValueError(f"'models' must share one input shape. Got {sorted(shapes)} instead.")

    out = Path(out_dir)
    variants = []
    for model in models:
        file = f"{model.name}.keras"
        save_keras(model, out / file)
        variants.append(
            {
                "name": model.name,
                "file": file,
                "hyperparameters": VARIANTS[model.name].to_dict(),
                "parameters": int(model.count_params()),
                "sha256": sha256(out / file),
            }
        )
    manifest = {
        "format_version": FORMAT_VERSION,
        "bids_stroke_version": __version__,
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "input_shape": list(shapes.pop()),
        "variants": variants,
        "threshold": float(threshold),
        "cohort": {key: cohort[key] for key in cohort},
        "seed": int(seed),
    }
    if extra:
        manifest["extra"] = dict(extra)
    return write_json(out / MANIFEST, manifest, sort_keys=False)


def read_manifest(folder: str | os.PathLike) -> dict:
    """The checked ``manifest.json`` of a bundle folder (no model is loaded).

    Raises
    ------
    BadInputError
        (exit 65) the manifest is missing, unreadable, of another format version, lacks a
        required field, or a field the loader uses has the wrong type or value:
        ``threshold`` (a finite number in [0, 1]), ``input_shape`` (positive integers),
        ``extra`` (an object) and its ``clinical_fusion`` (:func:`clinical_fusion`).
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise BadInputError(f"{path}: missing; a model bundle is a folder with {MANIFEST} and .keras files.")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadInputError(f"{path}: not readable JSON ({exc}).") from exc
    if not isinstance(manifest, dict):
        raise BadInputError(f"{path}: must hold a JSON object.")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise BadInputError(
            f"{path}: 'format_version' must be {FORMAT_VERSION}. Got {version!r} instead; "
            f"use a bids-stroke version that reads this bundle or retrain it."
        )
    variants = manifest.get("variants")
    if not isinstance(variants, list) or not variants:
        raise BadInputError(f"{path}: 'variants' must be a non-empty list.")
    for entry in variants:
        if not isinstance(entry, dict) or not {"name", "file", "sha256"} <= set(entry):
            raise BadInputError(f"{path}: every variant needs 'name', 'file' and 'sha256'. Got {entry!r}.")
        if Path(str(entry["file"])).name != entry["file"] or not str(entry["file"]).endswith(".keras"):
            raise BadInputError(f"{path}: variant file {entry['file']!r} must be a .keras file name in the bundle.")
    if "threshold" not in manifest or "input_shape" not in manifest:
        raise BadInputError(f"{path}: 'threshold' and 'input_shape' are required.")
    _check_numbers(manifest, path)
    clinical_fusion(manifest, source=path)
    return manifest


def _is_number(value) -> bool:
    """Whether a JSON value is a finite number (not a boolean)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_numbers(manifest: Mapping, path: Path) -> None:
    """Refuse a manifest whose threshold, input shape, ``extra`` or training protocol (shown
    by ``participant --model``) the loader cannot use."""
    threshold = manifest["threshold"]
    if not (_is_number(threshold) and 0.0 <= threshold <= 1.0):
        raise BadInputError(f"{path}: 'threshold' must be a number in [0, 1]. Got {threshold!r} instead.")
    shape = manifest["input_shape"]
    if not (isinstance(shape, list) and shape
            and all(_is_number(n) and isinstance(n, int) and n > 0 for n in shape)):
        raise BadInputError(f"{path}: 'input_shape' must be a list of positive integers. Got {shape!r} instead.")
    if not isinstance(manifest.get("extra", {}), dict):
        raise BadInputError(f"{path}: 'extra' must be a JSON object. Got {manifest['extra']!r} instead.")
    protocol = manifest.get("extra", {}).get("protocol", {})
    if not (isinstance(protocol, dict) and isinstance(protocol.get("deviations", []), list)):
        raise BadInputError(f"{path}: 'extra.protocol' must be a JSON object whose 'deviations' is a list. "
                            f"Got {protocol!r} instead.")


def clinical_fusion(manifest: Mapping, source: str | os.PathLike = MANIFEST) -> dict | None:
    """The bundle's clinical fusion (``--clinical-columns`` at the group level), or None.

    Stored as ``extra.clinical_fusion`` of the manifest: ``columns`` (participants.tsv
    columns), ``feature_names``, ``coef`` (one per feature: the ensemble's logit, then each
    column), ``intercept``, and optionally ``mean`` and ``scale`` (one per feature) and
    ``C``; read by :meth:`bids_stroke.stats.fusion.LogisticFusion.from_dict`.

    Parameters
    ----------
    manifest : mapping
    source : path-like, default="manifest.json"
        The manifest's file, named by the error.

    Raises
    ------
    BadInputError
        (exit 65) the entry is malformed: names that are not strings, numbers that are not
        finite, or lists of the wrong length.
    """
    fusion = (manifest.get("extra") or {}).get("clinical_fusion")
    if fusion is None:
        return None
    columns = fusion.get("columns") if isinstance(fusion, dict) else None
    if not (isinstance(columns, list) and columns and all(isinstance(c, str) for c in columns)):
        raise BadInputError(f"{source}: 'extra.clinical_fusion' must hold 'columns' (participants.tsv column "
                            f"names), one 'coef' per column plus the ensemble's, and an 'intercept'. "
                            f"Got {fusion!r} instead.")
    k = len(columns) + 1
    checks = [  # key, whether the entry must be there, test of the value, what it must be
        ("coef", True, lambda v: _numbers(v, k, _is_number), f"{k} finite numbers (the ensemble's, then the columns')"),
        ("intercept", True, _is_number, "a finite number"),
        ("feature_names", True, lambda v: _numbers(v, k, lambda n: isinstance(n, str)), f"{k} names"),
        ("mean", False, lambda v: _numbers(v, k, _is_number), f"{k} finite numbers"),
        ("scale", False, lambda v: _numbers(v, k, lambda x: _is_number(x) and x != 0), f"{k} finite non-zero numbers"),
        ("C", False, lambda v: v == "inf" or (_is_number(v) and v > 0), 'a positive number or "inf"'),
    ]
    for key, required, valid, must in checks:
        if (required or key in fusion) and not valid(fusion.get(key)):
            raise BadInputError(f"{source}: 'extra.clinical_fusion.{key}' must be {must}. "
                                f"Got {fusion.get(key)!r} instead.")
    return fusion


def _numbers(values, k: int, valid) -> bool:
    """Whether ``values`` is a list of ``k`` items that are all ``valid``."""
    return isinstance(values, list) and len(values) == k and all(map(valid, values))


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Load an ensemble bundle after checking it against its manifest.

    Parameters
    ----------
    path : path-like
        The bundle folder (or its ``manifest.json``).

    Returns
    -------
    Bundle

    Raises
    ------
    MissingInputError
        (exit 66) ``path`` does not exist.
    BadInputError
        (exit 65) no or unreadable manifest, another format version, a variant file
        missing or whose SHA-256 differs from the manifest's, or a model that does not
        load in safe mode or does not match its manifest entry.
    """
    folder = Path(path)
    if folder.name == MANIFEST:
        folder = folder.parent
    if not folder.exists():
        raise MissingInputError(f"{folder}: model bundle not found.")
    manifest = read_manifest(folder)
    for entry in manifest["variants"]:
        file = folder / entry["file"]
        if not file.is_file():
            raise BadInputError(f"{file}: listed in {folder / MANIFEST} but missing.")
        digest = sha256(file)
        if digest != entry["sha256"]:
            raise BadInputError(
                f"{file}: SHA-256 {digest} does not match the manifest's {entry['sha256']}; "
                "the file was changed or corrupted."
            )
    models = []
    input_shape = tuple(manifest["input_shape"])
    for entry in manifest["variants"]:
        file = folder / entry["file"]
        try:
            model = keras.saving.load_model(file, compile=False, safe_mode=True)
        except Exception as exc:
            raise BadInputError(f"{file}: cannot be loaded as a Keras model in safe mode ({exc}).") from exc
        if model.name != entry["name"] or tuple(model.input_shape[1:]) != input_shape:
            raise BadInputError(
                f"{file}: model {model.name!r} with input {model.input_shape[1:]} does not match "
                f"the manifest's {entry['name']!r} with input {input_shape}."
            )
        models.append(model)
    return Bundle(folder, manifest, tuple(models))
