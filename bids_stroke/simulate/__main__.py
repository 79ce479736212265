"""``python -m bids_stroke.simulate``: the same as ``bids-stroke-simulate``."""

import sys

from bids_stroke.simulate.cli import main

sys.exit(main())
