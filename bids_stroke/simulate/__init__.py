"""Semi-synthetic BIDS cohort of acute stroke DWI with real lesions and outcomes.

Call :func:`simulate_cohort` from Python, or ``bids-stroke-simulate`` /
``python -m bids_stroke.simulate`` from a shell. :func:`load_truth` reads a subject's
ground truth and maps coordinates between its native DWI grid and template space.
"""

from bids_stroke.simulate.cohort import simulate_cohort
from bids_stroke.simulate.sites import PROFILES, SiteProfile, site_profiles
from bids_stroke.simulate.truth import SubjectTruth, load_truth, truth_paths

__all__ = [
    "PROFILES",
    "SiteProfile",
    "SubjectTruth",
    "load_truth",
    "simulate_cohort",
    "site_profiles",
    "truth_paths",
]
