"""bids-stroke: interpretable deep-learning prognosis of stroke outcome from acute DWI.

A BIDS App reimplementing Moulton et al., J Cereb Blood Flow Metab 2022.
"""

from bids_stroke._version import __version__

__all__ = ["__version__"]
