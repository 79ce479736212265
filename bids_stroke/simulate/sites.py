"""Scanner profiles of the simulated sites.

Eleven fixed profiles, like the eleven scanners of Moulton et al. (JCBFM 2022), differ in
in-plane spacing, slice thickness and gap, slice count, b-values, number of diffusion
directions, kind of export (4D series with bval/bvec, or a derived trace image plus ADC
map), slice tilt, voxel-axis orientation, intensity scale and noise level. A cohort with K
sites uses the first K; beyond eleven, extra profiles are drawn deterministically from the
seed. Profile 2 is trace-only and profile 3 multi-shell, so that any cohort with two or
more sites has a trace-only site, and three or more a multi-shell one. Trace-only
profiles use b = 1000 s/mm², as clinical trace exports mostly do, so that one
dataset-level ``rec-TRACE_dwi.bval`` declares the b-value of every trace image.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

#: Export kinds: a 4D series with ``.bval``/``.bvec``, or a 3D trace plus an ADC map.
KINDS = ("dwi4d", "trace")


@dataclass(frozen=True)
class SiteProfile:
    """Acquisition parameters of one scanner.

    Parameters
    ----------
    name : str
        Site label written in ``participants.tsv`` (e.g. ``"site01"``).
    kind : {"dwi4d", "trace"}
        Export kind (see :data:`KINDS`).
    manufacturer, model : str
        Written in the JSON sidecars.
    field_strength : float
        Tesla.
    fov_mm : float
        In-plane field of view in mm (square).
    matrix : int
        In-plane matrix size; the in-plane spacing is ``fov_mm / matrix`` mm.
    slice_thickness : float
        Slice thickness in mm (3–5).
    slice_gap : float
        Gap between slices in mm; slices are ``slice_thickness + slice_gap`` apart.
    n_slices : int
        Number of slices.
    bvals : tuple of int
        Non-zero b-values in s/mm² (one per shell).
    n_dirs : int
        Diffusion directions per shell (at least 3).
    tilt_deg : float
        Oblique tilt of the slices about the left-right axis, degrees.
    orientation : {"RAS", "LAS", "LPS"}
        Direction of the voxel axes i, j (k always runs inferior to superior).
    scale : float
        Stored intensity of unit signal (WM b0 is about 0.8 × scale).
    noise : float
        Standard deviation of the complex Gaussian noise, relative to unit signal.
    repetition_time, echo_time : float
        Seconds.
    """

    name: str
    kind: str
    manufacturer: str
    model: str
    field_strength: float
    fov_mm: float
    matrix: int
    slice_thickness: float
    slice_gap: float
    n_slices: int
    bvals: tuple
    n_dirs: int
    tilt_deg: float
    orientation: str
    scale: float
    noise: float
    repetition_time: float
    echo_time: float

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel spacing (mm) along i, j, k."""
        inplane = self.fov_mm / self.matrix
        return (inplane, inplane, self.slice_thickness + self.slice_gap)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Image grid shape (i, j, k)."""
        return (self.matrix, self.matrix, self.n_slices)

    def to_dict(self) -> dict:
        """The profile as a JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        d["bvals"] = list(self.bvals)
        return d

    def downsampled(self, factor: int) -> SiteProfile:
        """The same profile with an in-plane matrix ``factor`` times smaller.

        Parameters
        ----------
        factor : int
            Integer >= 1; the in-plane spacing grows by this factor.
        """
        if factor == 1:
            return self
        return dataclasses.replace(self, matrix=max(8, round(self.matrix / factor)))


def _p(name, kind, manufacturer, model, tesla, fov, matrix, thick, gap, n_slices, bvals,
       n_dirs, tilt, orient, scale, noise, tr, te):
    return SiteProfile(name, kind, manufacturer, model, tesla, fov, matrix, thick, gap,
                       n_slices, tuple(bvals), n_dirs, tilt, orient, scale, noise, tr, te)


#: The fixed table of profiles (spacing = fov/matrix; coverage = n_slices × (thick+gap)).
PROFILES = (
    _p("site01", "dwi4d", "Siemens", "Avanto", 1.5, 230, 128, 5.0, 0.5, 28, [1000], 3,
       0.0, "LAS", 900.0, 0.030, 4.8, 0.089),
    _p("site02", "trace", "Siemens", "Skyra", 3.0, 230, 192, 5.0, 0.0, 30, [1000], 3,
       8.0, "RAS", 1200.0, 0.035, 5.2, 0.074),
    _p("site03", "dwi4d", "GE", "Discovery MR750", 3.0, 240, 160, 4.0, 0.0, 36,
       [1000, 1400, 2000], 3, 5.0, "LPS", 700.0, 0.025, 6.0, 0.081),
    _p("site04", "dwi4d", "Philips", "Ingenia", 1.5, 220, 128, 5.0, 1.0, 26, [1400], 6,
       12.0, "RAS", 1500.0, 0.040, 3.9, 0.095),
    _p("site05", "dwi4d", "Siemens", "Prisma", 3.0, 230, 192, 3.0, 0.0, 48, [2000], 3,
       0.0, "LAS", 1100.0, 0.030, 7.1, 0.102),
    _p("site06", "trace", "GE", "Signa HDxt", 1.5, 240, 128, 4.0, 0.4, 34, [1000], 3,
       10.0, "LPS", 600.0, 0.045, 8.0, 0.098),
    _p("site07", "dwi4d", "Philips", "Achieva", 3.0, 220, 160, 5.0, 0.0, 30, [1000], 6,
       4.0, "RAS", 1300.0, 0.030, 4.5, 0.070),
    _p("site08", "dwi4d", "Siemens", "Vida", 3.0, 230, 208, 3.5, 0.0, 42, [1000], 3,
       6.0, "LAS", 1000.0, 0.040, 5.9, 0.068),
    _p("site09", "dwi4d", "Canon", "Vantage Orian", 1.5, 240, 144, 4.0, 1.0, 30, [1400],
       3, 15.0, "RAS", 800.0, 0.035, 5.0, 0.090),
    _p("site10", "dwi4d", "GE", "Optima MR450w", 1.5, 230, 128, 4.5, 0.0, 32, [2000], 4,
       2.0, "LPS", 1400.0, 0.050, 6.5, 0.110),
    _p("site11", "dwi4d", "Siemens", "Aera", 1.5, 250, 176, 4.0, 0.0, 38, [1000], 3,
       9.0, "RAS", 950.0, 0.030, 5.4, 0.085),
)


def _derived_profile(index: int, seed: int) -> SiteProfile:
    """A profile beyond the fixed table, drawn from ``(seed, index)`` only."""
    rng = np.random.default_rng([seed, 7919, index])
    base = PROFILES[int(rng.integers(len(PROFILES)))]
    thick = float(rng.choice([3.0, 3.5, 4.0, 4.5, 5.0]))
    gap = float(rng.choice([0.0, 0.0, 0.5, 1.0]))
    n_slices = int(np.ceil(150.0 / (thick + gap)))
    matrix = int(rng.choice([128, 144, 160, 176, 192, 208]))
    kind = "trace" if rng.random() < 0.25 else "dwi4d"
    b_value = int(rng.choice([1000, 1400, 2000]))
    return dataclasses.replace(
        base,
        name=f"site{index + 1:02d}",
        kind=kind,
        fov_mm=float(rng.choice([220.0, 230.0, 240.0])),
        matrix=matrix,
        slice_thickness=thick,
        slice_gap=gap,
        n_slices=n_slices,
        bvals=(1000,) if kind == "trace" else (b_value,),  # trace exports: b = 1000
        tilt_deg=round(float(rng.uniform(0, 15)), 1),
        scale=round(float(rng.uniform(600, 1500)), 0),
        noise=round(float(rng.uniform(0.025, 0.05)), 3),
    )


def site_profiles(n_sites: int, seed: int) -> list[SiteProfile]:
    """The profiles of a cohort's sites.

    Parameters
    ----------
    n_sites : int
        Number of sites K >= 1.
    seed : int
        Cohort seed; used only for sites beyond the fixed table.

    Returns
    -------
    list of SiteProfile
        ``PROFILES[:K]``, extended with seeded profiles when K > 11.
    """
    fixed = list(PROFILES[:n_sites])
    return fixed + [_derived_profile(i, seed) for i in range(len(fixed), n_sites)]


def orientation_matrix(orientation: str, tilt_deg: float) -> np.ndarray:
    """Direction cosines of the voxel axes of a (tilted) axial acquisition.

    Parameters
    ----------
    orientation : {"RAS", "LAS", "LPS"}
        Direction of the i, j and k axes.
    tilt_deg : float
        Rotation of the slices about the left-right axis, degrees.

    Returns
    -------
    ndarray of shape (3, 3)
        Columns are the unit vectors of i, j, k in scanner (RAS) coordinates.
    """
    signs = {"RAS": (1, 1, 1), "LAS": (-1, 1, 1), "LPS": (-1, -1, 1)}[orientation]
    t = np.deg2rad(tilt_deg)
    tilt = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    return tilt @ np.diag(signs).astype(float)


def native_affine(profile: SiteProfile, center_mm) -> np.ndarray:
    """Voxel-to-scanner matrix of a site's grid centred on a point.

    Parameters
    ----------
    profile : SiteProfile
    center_mm : array-like of shape (3,)
        Scanner coordinates (mm) of the centre of the field of view.

    Returns
    -------
    ndarray of shape (4, 4)
    """
    rot = orientation_matrix(profile.orientation, profile.tilt_deg)
    lin = rot @ np.diag(profile.spacing)
    center_vox = (np.array(profile.shape) - 1) / 2.0
    aff = np.eye(4)
    aff[:3, :3] = lin
    aff[:3, 3] = np.asarray(center_mm, float) - lin @ center_vox
    return aff


def gradient_table(profile: SiteProfile) -> tuple[np.ndarray, np.ndarray]:
    """b-values and unit gradient directions of a site's series.

    One b = 0 volume, then ``n_dirs`` directions per shell, evenly spread on a half
    sphere (for 3 directions: the voxel axes, as on clinical "3-scan trace" protocols).

    Returns
    -------
    bvals : ndarray of shape (n_volumes,)
        s/mm².
    bvecs : ndarray of shape (3, n_volumes)
        Unit vectors (zeros for b = 0).
    """
    n = profile.n_dirs
    if n == 3:
        dirs = np.eye(3)
    else:
        k = np.arange(n) + 0.5
        z = k / n
        phi = np.pi * (1 + 5**0.5) * k
        r = np.sqrt(1 - z**2)
        dirs = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    bvals = [0]
    vecs = [np.zeros(3)]
    for b in profile.bvals:
        bvals += [b] * n
        vecs += list(dirs)
    return np.array(bvals, int), np.array(vecs).T
