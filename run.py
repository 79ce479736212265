#!/usr/bin/env python3
"""BIDS-App entry point: ``python run.py BIDS_DIR OUTPUT_DIR {participant,group} [options]``."""

import sys

from bids_stroke.cli import main

if __name__ == "__main__":
    sys.exit(main())
