"""What every report figure shares: the Agg backend, the resolution, the model colours, saving.

PNGs are written atomically and without a time stamp or software tag, so the same inputs
give the same bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bids_stroke.bids.writers import atomic_output  # noqa: E402

__all__ = ["DPI", "MODEL_COLOURS", "save_png"]

#: Resolution of the PNG files (dots per inch).
DPI = 100

#: Colour of the ensemble and of the baselines in every plot.
MODEL_COLOURS = {"ensemble": "#1f4e9c", "lr_volume": "#d95f02", "lr_aspects": "#1b9e77", "lr_clinical": "#7570b3",
                 "volume+clinical": "#e7298a", "ensemble+clinical": "#66a61e"}


def save_png(fig: Figure, out_file: str | os.PathLike) -> Path:
    """Write a figure to ``out_file`` (PNG, :data:`DPI`, no metadata) and close it."""
    out_file = Path(out_file)
    with atomic_output(out_file) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return out_file
