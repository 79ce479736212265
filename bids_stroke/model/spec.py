"""What every part of bids-stroke knows about the model, without importing Keras.

The model grid, the attention scales, the decision threshold and the names of a bundle's
manifest and model card are read by the preprocessing, the training, the maps and the reports; they are
written once, here.
"""

from __future__ import annotations

__all__ = ["DECISION_THRESHOLD", "INPUT_SHAPE", "MANIFEST", "MODEL_CARD", "MODEL_GRID", "SCALES"]

#: Shape (voxels) of the model grid: the cropped, resampled DWI the network reads.
MODEL_GRID = (96, 96, 24)

#: Input shape of every variant: the model grid and one channel.
INPUT_SHAPE = MODEL_GRID + (1,)

#: Names of the attention maps, from the finest scale (level 3) to the coarsest (level 5).
SCALES = ("a1", "a2", "a3")

#: A participant is predicted poor when the probability of a poor outcome is at least this.
DECISION_THRESHOLD = 0.5

#: Name of the manifest inside a trained ensemble bundle (:mod:`bids_stroke.model.bundle`).
MANIFEST = "manifest.json"

#: Name of the model card beside it (:mod:`bids_stroke.report.model_card`); the same facts
#: are the manifest's ``model_card`` entry.
MODEL_CARD = "model_card.md"
