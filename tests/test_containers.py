"""The Dockerfile passes hadolint and keeps the container conventions; Singularity.def follows it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bids_stroke import __version__

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SINGULARITY = (ROOT / "Singularity.def").read_text()


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.fail("hadolint is missing: install the test extras (pip install -e '.[test]')")
    return found


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [_hadolint(), "--failure-threshold", "warning", "-"],
        input=DOCKERFILE, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile():
    bad = "FROM python:latest\nRUN apt-get install curl\nRUN cd /tmp\n"
    result = subprocess.run([_hadolint(), "--failure-threshold", "warning", "-"],
                            input=bad, capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "DL" in result.stdout


def test_dockerfile_conventions():
    steps = _instructions(DOCKERFILE)
    base = [args for word, args in steps if word == "FROM"]
    assert len(base) == 1 and re.fullmatch(r"python:3\.11[\w.-]*", base[0]), base
    assert "latest" not in base[0]
    env = " ".join(args for word, args in steps if word == "ENV")
    for setting in ("OMP_NUM_THREADS=1", "TEMPLATEFLOW_HOME=", "TEMPLATEFLOW_AUTOUPDATE=0", "HOME=/home/"):
        assert setting in env, setting
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    entry = [args for word, args in steps if word == "ENTRYPOINT"]
    assert entry and "run.py" in entry[-1]
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "pip install --no-cache-dir ." in runs  # the project with its pinned dependencies
    assert "templateflow" in runs and "MNI152NLin2009cAsym" in runs  # templates fetched at build
    assert "useradd" in runs and "--create-home" in runs


def test_singularity_def_is_built_from_this_versions_docker_image():
    header = dict(
        line.split(":", 1) for line in SINGULARITY.splitlines()
        if re.match(r"^(Bootstrap|From):", line)
    )
    assert header["Bootstrap"].strip() == "docker"
    assert header["From"].strip() == f"bidsstroke/bids-stroke:{__version__}"
    assert "run.py" in SINGULARITY.split("%runscript", 1)[1]
    assert "TEMPLATEFLOW_AUTOUPDATE=0" in SINGULARITY
    assert f"Version {__version__}" in SINGULARITY
