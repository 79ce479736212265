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
    assert len(base) == 1 and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base[0]), base
    # the tag's digest is recorded next to it
    assert re.search(re.escape(base[0]) + r"@sha256:[0-9a-f]{64}", DOCKERFILE)
    env = " ".join(args for word, args in steps if word == "ENV")
    for setting in ("OMP_NUM_THREADS=1", "TF_ENABLE_ONEDNN_OPTS=1", "TEMPLATEFLOW_HOME=",
                    "TEMPLATEFLOW_AUTOUPDATE=0", "HOME=/home/", "BIDS_STROKE_CONTAINER=docker"):
        assert setting in env, setting
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" not in {word for word, _ in steps}
    entry = [args for word, args in steps if word == "ENTRYPOINT"]
    assert entry and "run.py" in entry[-1]
    runs = " ".join(args for word, args in steps if word == "RUN")
    # the pinned dependencies of pyproject.toml, then the project alone
    assert "['project']['dependencies']" in runs and "pip install --no-cache-dir -r" in runs
    assert "pip install --no-cache-dir --no-deps ." in runs
    assert "templateflow" in runs and "TEMPLATEFLOW_TEMPLATES" in runs  # templates fetched at build
    assert "useradd" in runs and "--create-home" in runs and "chmod 1777 /home/" in runs


def test_dockerignore_sends_only_what_the_image_copies():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"  # everything excluded, then the image's sources re-included
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for word, args in _instructions(DOCKERFILE):
        if word == "COPY":
            copied.update(args.split()[:-1])
    assert copied == included
    for unwanted in ("tests", "demo", "work", ".git", ".ctr", "benchmarks"):
        assert unwanted not in included


def test_singularity_def_is_built_from_this_versions_docker_archive():
    header = dict(
        line.split(":", 1) for line in SINGULARITY.splitlines()
        if re.match(r"^(Bootstrap|From):", line)
    )
    assert header["Bootstrap"].strip() == "docker-archive"  # no registry needed
    assert header["From"].strip() == "{{ archive }}"
    arguments = SINGULARITY.split("%arguments", 1)[1].split("%", 1)[0]
    assert arguments.split() == [f"archive=bids-stroke-{__version__}.tar"]
    assert f"docker save -o bids-stroke-{__version__}.tar bidsstroke/bids-stroke:{__version__}" in SINGULARITY
    assert "run.py" in SINGULARITY.split("%runscript", 1)[1]
    for setting in ("TEMPLATEFLOW_AUTOUPDATE=0", "TF_ENABLE_ONEDNN_OPTS=1", "OMP_NUM_THREADS=1"):
        assert setting in SINGULARITY, setting
    assert f"Version {__version__}" in SINGULARITY


STEPS = ROOT / "tools" / "containers" / "steps.sh"


def _bash(script: str, tmp_path: Path, path: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": path or "/usr/bin:/bin", "LOGS": str(tmp_path)}
    return subprocess.run(["bash", "-c", f"set -eu; source {STEPS}; {script}; echo survived"],
                          capture_output=True, text=True, env=env, check=False)


def test_a_failed_build_step_is_named_with_its_log_tail(tmp_path):
    done = _bash("step unpack sh -c 'echo first line; echo last line; exit 3'", tmp_path)
    assert done.returncode == 1 and "survived" not in done.stdout
    assert "step 'unpack' failed (exit 3)" in done.stderr and "last line" in done.stderr
    assert (tmp_path / "unpack.log").read_text() == "first line\nlast line\n"
    done = _bash("step unpack true", tmp_path)
    assert done.returncode == 0 and "survived" in done.stdout and "unpack: 0 s" in done.stderr


def test_a_missing_tool_is_one_line_for_a_user_who_cannot_install_it(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")
    (fake / "id").chmod(0o755)
    done = _bash("need no-such-engine podman uidmap", tmp_path, path=f"{fake}:/usr/bin:/bin")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "build.sh: no-such-engine is missing: install it (Debian packages: podman uidmap), "
        "or run this script as root on Debian"]
    assert _bash("need sh dash", tmp_path).returncode == 0  # present: nothing to do
