"""Registration of a subject's b = 0 (or trace) image to a T2-weighted template with ANTs.

:func:`register_to_template` runs ``antsRegistration`` (through antspyx, in-process),
started from the alignment of the centres of mass, with up to three stages, each
starting from the last: rigid, affine (both Mattes mutual information, 32 bins, regular
sampling of a quarter of the voxels) and symmetric normalisation (SyN, gradient step
0.2, update-field variance 3 voxels², Mattes mutual information). The settings favour
speed on a 2 mm template: with ``fast=True`` (the default) every stage runs at two
levels, shrink factors 4×2 (8 and 4 mm voxels on a 2 mm template), which is as fine as
the 3–5 mm slices of a b = 0 image can guide it; a level stops when the metric has
changed by less than 1e-5 over the last 5 iterations, and SyN's 4 mm level after at most
10 iterations (its mutual information stops improving after about 6 there, and each 4 mm
iteration costs as much as seven at 8 mm); ``fast=False`` adds the 2 mm level and more iterations (about five times slower).

With a template mask (``fixed_mask``), the template is cropped to the mask's bounding box
plus ``crop_margin_mm`` before registering: the registration's domain, and so every SyN
iteration, shrinks by about 40 % on the 2 mm MNI templates. The displacement fields cover
that box (beyond it, the affine part alone applies, as outside any displacement field);
``warped`` is put back on the whole template grid. On 16 simulated full-resolution
subjects, cropping and the shorter 4 mm level together took the registration from 9.0 to
4.1 s and the pooled template-space lesion Dice with the simulated lesions from 0.847 to
0.861.

The outputs are the forward (native → template) and inverse (template → native)
transforms, each one ITK composite transform (``.h5``) held in memory as bytes, and the
moving image resampled onto the template grid.

Reproducibility: ANTs treats a seed of 0 as "no seed" (a random one), so ``seed`` s is
passed to ANTs as s + 1. With one thread the result is identical on every run; with more
threads it differs from run to run (by millimetres, in a deformable stage), which is why
the participant level runs one thread per registration by default. The transform files
are written without HDF5 time stamps (:func:`without_times`), so equal transforms are
equal bytes. ITK reads ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS``
once per process, when it first runs a multi-threaded filter; the functions here set it
for their duration, so ``threads`` holds as long as no other ITK work ran before in the
process (each nipype node runs in its own process, or the first call sets it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_stroke.bids.writers import write_bytes
from bids_stroke.errors import BadInputError, MissingInputError, OutputError, UsageError

#: Transform models of :func:`register_to_template`, each including those before it.
TRANSFORMS = ("Rigid", "Affine", "SyN")

#: ITK's global default number of threads, read by ANTs.
_THREADS_VARIABLE = "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"


@dataclasses.dataclass(frozen=True, repr=False)
class RegistrationResult:
    """The outcome of :func:`register_to_template`.

    Attributes
    ----------
    forward : bytes
        ITK composite transform (HDF5 ``.h5`` file content) that maps the moving (native)
        image onto the fixed (template) grid, as ``antsApplyTransforms`` uses it.
    inverse : bytes
        ITK composite transform that maps template images onto the native grid.
    warped : nibabel.Nifti1Image
        The moving image resampled onto the fixed grid (linear interpolation), float32.
    transform : {"Rigid", "Affine", "SyN"}
        The last transform model fitted.
    seed : int
        Seed of ANTs' random sampling.
    threads : int
        Number of threads ANTs ran with.
    seconds : float
        Wall-clock time of the registration, s.
    cpu_seconds : float
        Processor time of the registration (all threads), s.
    command : tuple of str
        The ``antsRegistration`` options used (images shown as ``fixed``, ``moving``,
        ``fixed_mask``, ``moving_mask``), for provenance.
    """

    forward: bytes
    inverse: bytes
    warped: nib.Nifti1Image
    transform: str
    seed: int
    threads: int
    seconds: float
    cpu_seconds: float
    command: tuple[str, ...]

    def __repr__(self) -> str:
        return (f"RegistrationResult(transform={self.transform!r}, seed={self.seed}, "
                f"threads={self.threads}, seconds={self.seconds:.1f}, "
                f"forward={len(self.forward)} bytes, inverse={len(self.inverse)} bytes)")


# --- conversions between nibabel and ANTs ---------------------------------------------

_LPS = np.diag([-1.0, -1.0, 1.0])


def to_ants(img, *, pixeltype: str = "float"):
    """Convert a 3D nibabel image to an ANTs image on exactly the same grid.

    Parameters
    ----------
    img : nibabel.Nifti1Image or path-like
        A 3D image whose affine has no shear (voxel axes orthogonal).
    pixeltype : str, default="float"
        ANTs pixel type.

    Returns
    -------
    ants.ANTsImage
        Voxel ``[i, j, k]`` of the array is voxel ``[i, j, k]`` of ``img``; origin,
        spacing (mm) and direction are those of the affine, in ITK's LPS convention.

    Raises
    ------
    BadInputError
        When the image is not 3D, or its affine is sheared or singular.
    """
    import ants

    img = load_image(img)
    if len(img.shape) != 3:
        raise BadInputError(f"The image must be 3D. Got shape {img.shape} instead.")
    affine = np.asarray(img.affine, float)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    if np.any(spacing <= 0):
        raise BadInputError(f"The image's affine is singular: {affine.tolist()}.")
    direction = affine[:3, :3] / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise BadInputError("The image's affine has shear (voxel axes not orthogonal); "
                            f"ANTs cannot represent it: {affine.tolist()}.")
    data = np.asarray(img.dataobj, dtype=np.float64 if pixeltype == "double" else None)
    dtype = {"float": np.float32, "double": np.float64, "unsigned char": np.uint8,
             "unsigned int": np.uint32}[pixeltype]
    return ants.from_numpy(np.ascontiguousarray(data, dtype=dtype),
                           origin=(_LPS @ affine[:3, 3]).tolist(),
                           spacing=spacing.tolist(), direction=_LPS @ direction)


def load_image(img) -> nib.spatialimages.SpatialImage:
    """Read an image given as a nibabel image, a path or a ``TemplateFile``.

    Parameters
    ----------
    img : nibabel image, TemplateFile or path-like
        The image.

    Returns
    -------
    nibabel.spatialimages.SpatialImage
        The image (the same object when a nibabel image is given).

    Raises
    ------
    MissingInputError
        When a path does not exist.
    UsageError
        When ``img`` is of another type.
    """
    if isinstance(img, (str, os.PathLike)):
        path = Path(img)
        if not path.is_file():
            raise MissingInputError(f"The image {path} does not exist.")
        img = nib.load(path)
    elif hasattr(img, "path") and hasattr(img, "space"):
        img = nib.load(img.path)
    if not isinstance(img, nib.spatialimages.SpatialImage):
        raise UsageError(f"An image must be a nibabel image or a path. Got "
                         f"{type(img).__name__} instead.")
    return img


@contextlib.contextmanager
def itk_threads(threads: int) -> Iterator[None]:
    """Run ITK/ANTs with ``threads`` threads within the ``with`` block.

    Parameters
    ----------
    threads : int
        Number of threads (≥ 1).
    """
    old = os.environ.get(_THREADS_VARIABLE)
    os.environ[_THREADS_VARIABLE] = str(threads)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(_THREADS_VARIABLE, None)
        else:
            os.environ[_THREADS_VARIABLE] = old


# --- registration ---------------------------------------------------------------------

def _stages(transform: str, fast: bool, metric: tuple[str, str], masks: str) -> list[str]:
    fixed, moving = metric
    linear_metric = f"Mattes[{fixed},{moving},1,32,Regular,0.25]"
    if fast:
        linear_levels = ["--convergence", "[100x50,1e-5,5]",
                         "--shrink-factors", "4x2", "--smoothing-sigmas", "2x1vox"]
        syn_levels = ["--convergence", "[40x10,1e-5,5]",
                      "--shrink-factors", "4x2", "--smoothing-sigmas", "2x1vox"]
    else:
        linear_levels = ["--convergence", "[100x50x20,1e-6,10]",
                         "--shrink-factors", "4x2x1", "--smoothing-sigmas", "2x1x0vox"]
        syn_levels = ["--convergence", "[80x50x20,1e-6,10]",
                      "--shrink-factors", "4x2x1", "--smoothing-sigmas", "2x1x0vox"]
    args = ["--transform", "Rigid[0.1]", "--metric", linear_metric, *linear_levels,
            "--masks", masks]
    if transform in ("Affine", "SyN"):
        args += ["--transform", "Affine[0.1]", "--metric", linear_metric, *linear_levels,
                 "--masks", masks]
    if transform == "SyN":
        args += ["--transform", "SyN[0.2,3,0]",
                 "--metric", f"Mattes[{fixed},{moving},1,32]", *syn_levels,
                 "--masks", masks]
    return args


def register_to_template(moving, fixed, *, moving_mask=None, fixed_mask=None,
                         transform: str = "SyN", seed: int = 0, threads: int = 1,
                         fast: bool = True, crop_margin_mm: float | None = 8.0
                         ) -> RegistrationResult:
    """Register a subject's image to a template.

    Parameters
    ----------
    moving : nibabel.Nifti1Image or path-like
        The subject's 3D b = 0 (or trace) image on its native grid (any voxel size, e.g.
        1.1–2 mm in-plane and 3–5 mm slices).
    fixed : nibabel.Nifti1Image, TemplateFile or path-like
        The 3D template, e.g. the 2 mm brain-extracted T2w image of
        :func:`~bids_stroke.spatial.templates.get_template_set`.
    moving_mask : nibabel.Nifti1Image or path-like, optional
        Where the metric may sample the moving image (non-zero voxels; e.g. the brain
        mask without the lesion), on the grid of ``moving``.
    fixed_mask : nibabel.Nifti1Image, TemplateFile or path-like, optional
        Where the metric may sample the template (e.g. its brain mask).
    transform : {"SyN", "Affine", "Rigid"}, default="SyN"
        The most flexible model fitted; each includes the stages before it.
    seed : int, default=0
        Seed of ANTs' random sampling.
    threads : int, default=1
        Number of threads of ANTs. With one thread the result depends only on the inputs
        and the seed.
    fast : bool, default=True
        Two levels (8 and 4 mm voxels on a 2 mm template) and few iterations; about
        4 s on one core for a 2 mm template. ``False`` adds the template's own level.
    crop_margin_mm : float or None, default=8.0
        With ``fixed_mask``: register on the template cropped to the mask's bounding box
        plus this margin (mm). None: on the whole template.

    Returns
    -------
    RegistrationResult
        Forward and inverse transforms (ITK composite ``.h5`` content) and the moving
        image on the template grid.

    Raises
    ------
    UsageError
        When ``transform``, ``seed`` or ``threads`` is not allowed.
    BadInputError
        When an image is not 3D, holds non-finite values or is constant, or a mask is
        empty or on another grid.
    """
    if transform not in TRANSFORMS:
        raise UsageError(f"'transform' must be one of {TRANSFORMS}. Got {transform!r} "
                         "instead.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"'seed' must be a non-negative integer. Got {seed!r} instead.")
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) \
            or threads < 1:
        raise UsageError(f"'threads' must be a positive integer. Got {threads!r} instead.")

    fixed_img = load_image(fixed)
    box = None
    if fixed_mask is not None and crop_margin_mm is not None:
        fixed_mask = load_image(fixed_mask)
        box = _mask_box(fixed_mask, fixed_img, float(crop_margin_mm))
    if box is not None:
        whole, fixed_img, fixed_mask = fixed_img, fixed_img.slicer[box], fixed_mask.slicer[box]
    with itk_threads(int(threads)):
        result = _register(load_image(moving), fixed_img, moving_mask, fixed_mask,
                           transform, int(seed), int(threads), fast)
    if box is None:
        return result
    warped = np.zeros(whole.shape[:3], np.float32)
    warped[box] = np.asarray(result.warped.dataobj)
    return dataclasses.replace(result, warped=nib.Nifti1Image(warped, whole.affine))


def _mask_box(mask_img, ref_img, margin_mm: float) -> tuple[slice, ...] | None:
    """Slices of ``ref_img``'s grid around the non-zero voxels of ``mask_img`` plus a margin.

    None when the mask is not on that grid or is empty (:func:`_register` then says why).
    """
    if mask_img.shape[:3] != ref_img.shape[:3] or not np.allclose(mask_img.affine, ref_img.affine,
                                                                  atol=1e-3):
        return None
    inside = np.argwhere(np.asarray(mask_img.dataobj) != 0)
    if not len(inside):
        return None
    margin = np.ceil(margin_mm / np.linalg.norm(ref_img.affine[:3, :3], axis=0)).astype(int)
    low = np.maximum(inside.min(axis=0) - margin, 0)
    high = np.minimum(inside.max(axis=0) + 1 + margin, ref_img.shape[:3])
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))


def _register(moving_img, fixed_img, moving_mask, fixed_mask, transform, seed, threads,
              fast) -> RegistrationResult:
    from ants.internal import get_lib_fn, get_pointer_string, process_arguments

    images = {"moving": to_ants(moving_img), "fixed": to_ants(fixed_img)}
    for role, image in images.items():
        values = image.numpy()
        if not np.all(np.isfinite(values)):
            raise BadInputError(f"The {role} image holds NaN or infinite values.")
        if np.ptp(values) == 0:
            raise BadInputError(f"The {role} image is constant.")
    for role, mask, ref in (("moving_mask", moving_mask, moving_img),
                            ("fixed_mask", fixed_mask, fixed_img)):
        if mask is None:
            continue
        mask = load_image(mask)
        if mask.shape[:3] != ref.shape[:3] or not np.allclose(mask.affine, ref.affine,
                                                              atol=1e-3):
            raise BadInputError(f"'{role}' must be on the grid of its image (shape "
                                f"{ref.shape[:3]}). Got shape {mask.shape} with another "
                                "affine instead.")
        binary = (np.asarray(mask.dataobj) != 0).astype(np.uint8)
        if not binary.any():
            raise BadInputError(f"'{role}' is empty.")
        images[role] = to_ants(nib.Nifti1Image(binary, mask.affine),
                               pixeltype="unsigned char")

    warped = images["fixed"].clone()
    inverse_warped = images["moving"].clone()
    ptr = {role: get_pointer_string(image) for role, image in images.items()}
    masks = f"[{ptr.get('fixed_mask', 'NA')},{ptr.get('moving_mask', 'NA')}]"
    stages = _stages(transform, fast, (ptr["fixed"], ptr["moving"]), masks)

    with tempfile.TemporaryDirectory(prefix="bids-stroke-reg-") as tmp:
        prefix = str(Path(tmp) / "reg_")
        args = ["--dimensionality", "3", "--float", "1",
                "--output", f"[{prefix},{get_pointer_string(warped)},"
                            f"{get_pointer_string(inverse_warped)}]",
                "--interpolation", "Linear", "--winsorize-image-intensities",
                "[0.005,0.995]", "--use-histogram-matching", "0",
                "--initial-moving-transform", f"[{ptr['fixed']},{ptr['moving']},1]",
                *stages, "--collapse-output-transforms", "1",
                "--write-composite-transform", "1", "--random-seed", str(int(seed) + 1)]
        start, cpu_start = time.perf_counter(), time.process_time()
        status = get_lib_fn("antsRegistration")(process_arguments(args))
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
        if status != 0:
            raise RuntimeError(f"antsRegistration failed with status {status}.")
        forward = without_times(Path(prefix + "Composite.h5").read_bytes())
        inverse = without_times(Path(prefix + "InverseComposite.h5").read_bytes())

    names = {value: key for key, value in ptr.items()}
    names.update({get_pointer_string(warped): "warped",
                  get_pointer_string(inverse_warped): "inverse_warped"})
    command = tuple(_describe(arg, names, prefix) for arg in args)
    return RegistrationResult(
        forward=forward, inverse=inverse,
        warped=nib.Nifti1Image(warped.numpy().astype(np.float32), fixed_img.affine),
        transform=transform, seed=int(seed), threads=int(threads), seconds=seconds,
        cpu_seconds=cpu_seconds,
        command=command)


def _describe(arg: str, names: dict[str, str], prefix: str) -> str:
    for pointer, name in names.items():
        arg = arg.replace(pointer, name)
    return arg.replace(prefix, "")


def without_times(h5: bytes) -> bytes:
    """The same HDF5 file without the creation and modification times of its objects.

    ITK stamps every group and dataset of a transform file with the time it was written,
    so two runs that compute the very same transform write different bytes. The copy
    holds the same groups, datasets and attributes, in the same order, and reads the same
    in ANTs and ITK.
    """
    import h5py

    out = io.BytesIO()
    with h5py.File(io.BytesIO(h5), "r") as src, h5py.File(out, "w", libver="earliest") as dst:
        _copy_untimed(src, dst)
    return out.getvalue()


def _copy_untimed(src, dst) -> None:
    import h5py

    for key, value in src.attrs.items():
        dst.attrs[key] = value
    for name, obj in src.items():
        if isinstance(obj, h5py.Group):
            properties = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
            properties.set_obj_track_times(False)
            _copy_untimed(obj, h5py.Group(h5py.h5g.create(dst.id, name.encode(), gcpl=properties)))
        else:
            copy = dst.create_dataset(name, data=obj[()], dtype=obj.dtype, track_times=False)
            for key, value in obj.attrs.items():
                copy.attrs[key] = value


def save_transforms(result: RegistrationResult, forward_path: str | os.PathLike,
                    inverse_path: str | os.PathLike) -> tuple[Path, Path]:
    """Write the forward and inverse transforms as ITK composite ``.h5`` files.

    Each file is written to a temporary file in its destination folder, then renamed, so
    an interrupted run never leaves a partial transform.

    Parameters
    ----------
    result : RegistrationResult
        The output of :func:`register_to_template`.
    forward_path : path-like
        Destination of the native → template transform (``.h5``).
    inverse_path : path-like
        Destination of the template → native transform (``.h5``).

    Returns
    -------
    tuple of pathlib.Path
        ``(forward_path, inverse_path)``.

    Raises
    ------
    UsageError
        When a path does not end in ``.h5``.
    OutputError
        When a file cannot be written.
    """
    paths = (Path(forward_path), Path(inverse_path))
    for path, raw in zip(paths, (result.forward, result.inverse)):
        if path.suffix != ".h5":
            raise UsageError(f"A transform path must end in '.h5'. Got {str(path)!r} "
                             "instead.")
        try:
            write_bytes(path, raw)
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(f"Cannot write the transform {path}: {exc}.") from exc
    return paths
