"""``python -m bids_stroke``: the same as the ``bids-stroke`` command."""

import sys

from bids_stroke.cli import main

if __name__ == "__main__":
    sys.exit(main())
