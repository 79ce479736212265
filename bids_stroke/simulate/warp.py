"""Subject head pose and smooth non-linear deformation, and the maps they define.

A point ``p`` in scanner coordinates (mm) of a subject maps to template coordinates
(mm, ``MNI152NLin2009aSym``) as::

    x = A @ p           # A: rigid "scanner_to_template" 4×4 matrix (head pose)
    q = x + u(x)        # u: smooth displacement field (mm) in template space

``u`` is stored on a coarse regular grid in template space (a 4 mm grid covering the
template) and interpolated trilinearly (constant beyond its edges). The inverse map solves
``x + u(x) = q`` by fixed-point iteration, which converges because ``u`` is contracting
(its gradient stays well below 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Spacing (mm) of the stored displacement field.
FIELD_SPACING_MM = 4.0
#: Spacing (mm) of the random control points the field is interpolated from.
CONTROL_SPACING_MM = 32.0


@dataclass(frozen=True)
class Warp:
    """The map from a subject's scanner space to template space.

    Attributes
    ----------
    scanner_to_template : ndarray of shape (4, 4)
        Rigid matrix ``A`` (mm to mm).
    field : ndarray of shape (3, FX, FY, FZ), float32
        Displacement ``u`` in mm, components along template x, y, z.
    field_affine : ndarray of shape (4, 4)
        Voxel-to-template-world matrix of the field grid.
    """

    scanner_to_template: np.ndarray
    field: np.ndarray
    field_affine: np.ndarray

    def displacement(self, x_mm: np.ndarray) -> np.ndarray:
        """Displacement ``u(x)`` at template points.

        Parameters
        ----------
        x_mm : ndarray of shape (3, n)
            Template coordinates in mm.

        Returns
        -------
        ndarray of shape (3, n), float64
            Displacement in mm.
        """
        inv = np.linalg.inv(self.field_affine)
        vox = inv[:3, :3] @ x_mm + inv[:3, 3:4]
        return np.stack([
            ndimage.map_coordinates(c, vox, order=1, mode="nearest", prefilter=False)
            for c in self.field
        ]).astype(np.float64)

    def scanner_to_template_points(self, p_mm: np.ndarray) -> np.ndarray:
        """Map scanner points to template points (``q = A p + u(A p)``).

        Parameters
        ----------
        p_mm : ndarray of shape (3, n)
            Scanner coordinates in mm.

        Returns
        -------
        ndarray of shape (3, n)
            Template coordinates in mm.
        """
        a = self.scanner_to_template
        x = a[:3, :3] @ np.asarray(p_mm, float) + a[:3, 3:4]
        return x + self.displacement(x)

    def template_to_scanner_points(self, q_mm: np.ndarray, n_iter: int = 15) -> np.ndarray:
        """Map template points to scanner points (inverse of the forward map).

        Parameters
        ----------
        q_mm : ndarray of shape (3, n)
            Template coordinates in mm.
        n_iter : int, default=15
            Fixed-point iterations of ``x = q - u(x)``.

        Returns
        -------
        ndarray of shape (3, n)
            Scanner coordinates in mm.
        """
        q = np.asarray(q_mm, float)
        x = q.copy()
        for _ in range(n_iter):
            x = q - self.displacement(x)
        a_inv = np.linalg.inv(self.scanner_to_template)
        return a_inv[:3, :3] @ x + a_inv[:3, 3:4]


def rotation_matrix(angles_deg) -> np.ndarray:
    """Rotation about x, then y, then z.

    Parameters
    ----------
    angles_deg : array-like of shape (3,)
        Angles in degrees.

    Returns
    -------
    ndarray of shape (3, 3)
    """
    ax, ay, az = np.deg2rad(np.asarray(angles_deg, float))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_warp(rng: np.random.Generator, template_shape, template_affine, *,
                max_rotation_deg=8.0, max_translation_mm=6.0,
                max_displacement_mm=(2.0, 4.0)) -> Warp:
    """Draw a random head pose and a smooth deformation.

    Parameters
    ----------
    rng : numpy.random.Generator
        The subject's generator (seeded from the cohort seed and subject index only).
    template_shape : tuple of 3 int
        Template grid shape.
    template_affine : ndarray of shape (4, 4)
        Template voxel-to-world matrix.
    max_rotation_deg : float, default=8.0
        Each rotation angle is uniform in ±this.
    max_translation_mm : float, default=6.0
        Each translation is uniform in ±this.
    max_displacement_mm : tuple of 2 float, default=(2.0, 4.0)
        Range of the largest displacement magnitude of the deformation (mm).

    Returns
    -------
    Warp
    """
    angles = rng.uniform(-max_rotation_deg, max_rotation_deg, 3)
    shift = rng.uniform(-max_translation_mm, max_translation_mm, 3)
    a = np.eye(4)
    a[:3, :3] = rotation_matrix(angles)
    a[:3, 3] = shift
    corner0 = np.asarray(template_affine)[:3, 3]
    extent = np.abs(np.asarray(template_affine)[:3, :3]) @ (np.array(template_shape) - 1)
    lo = np.minimum(corner0, corner0 + np.asarray(template_affine)[:3, :3] @
                    (np.array(template_shape) - 1))
    fshape = tuple(int(np.ceil(e / FIELD_SPACING_MM)) + 1 for e in extent)
    cshape = tuple(int(np.ceil(e / CONTROL_SPACING_MM)) + 1 for e in extent)
    control = rng.standard_normal((3,) + cshape)
    field = np.stack([
        ndimage.zoom(c, [f / s for f, s in zip(fshape, cshape)], order=3, mode="nearest",
                     grid_mode=True)
        for c in control
    ])
    norm = np.sqrt((field**2).sum(0)).max()
    amp = rng.uniform(*max_displacement_mm)
    field = (field * (amp / max(norm, 1e-9))).astype(np.float32)
    faff = np.eye(4)
    faff[:3, :3] = np.diag([FIELD_SPACING_MM] * 3)
    faff[:3, 3] = lo
    return Warp(scanner_to_template=a, field=field, field_affine=faff)
