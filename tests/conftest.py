"""Shared fixtures: small simulated cohorts, generated once per test session.

Tests must not modify these datasets (copy them first).
"""

from __future__ import annotations

import pytest

from bids_stroke.simulate import simulate_cohort


@pytest.fixture(scope="session")
def simulated_cohort(tmp_path_factory):
    """Four subjects on three sites (4D single-shell, trace-only, multi-shell)."""
    out = tmp_path_factory.mktemp("sim") / "cohort"
    return simulate_cohort(out, n_subjects=4, n_sites=3, seed=3, downsample=2)


@pytest.fixture(scope="session")
def simulated_cohort_session(tmp_path_factory):
    """Another seed, with a session and two sites."""
    out = tmp_path_factory.mktemp("sim") / "cohort_ses"
    return simulate_cohort(out, n_subjects=3, n_sites=2, seed=4, session="01",
                           downsample=2)
