#!/usr/bin/env python3
"""Smoke tests of the bids-stroke Docker and Apptainer images.

Real runs on a small cohort simulated on the host, each run the way users run the images:
BIDS_DIR mounted read-only, no network, as an unprivileged user (the calling user, or uid
4321 when this script runs as root). The same commands run from the host's installation
give the reference outputs; every NIfTI/TSV/JSON output of a container must equal the
host's byte for byte, except the differences named in ``KNOWN_DIFFERENCES`` (``logs/``,
the runs' own records, is not compared).

    python tools/containers/smoke.py --dir DIR --docker podman --image IMAGE \
        [--apptainer apptainer --sif IMAGE.sif]

Prints one line per check, then the participant level's seconds per subject inside each
image against the host (same cohort, same ``--nprocs``). Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bids_stroke.errors import ExitCode
from bids_stroke.simulate.cohort import simulate_cohort

COHORT = {"n_subjects": 8, "n_sites": 2, "seed": 1, "downsample": 4}
NPROCS = "2"
GROUP_OPTIONS = ["--variants", "f8-g1.5-bn", "--max-epochs", "1", "--patience", "1", "--bootstrap", "100"]
BAD_PARTICIPANT = "001"  # its DWI is made unreadable
UNPRIVILEGED = (4321, 4321)
COMPARED_SUFFIXES = (".nii.gz", ".nii", ".tsv", ".json")
#: where the app sees BIDS_DIR, OUTPUT_DIR and the work folder inside the images
MOUNTS = {"bids": "/data", "out": "/out", "work": "/work"}
FOLDERS = ["{bids}", "{out}", "-w", "{work}"]
#: outputs that legitimately differ between the host and a container, and why
NOT_COMPARED = "logs/"  # the runs' own records: run ids, times, command lines
KNOWN_DIFFERENCES = {
    "timing.json": "training times",
    "paths": "JSON that records a folder's path (the host's own, the image's mount point)",
    "container": "GeneratedBy.Container of dataset_description.json (checked: type and tag)",
}


class SmokeFailure(Exception):
    """A check failed; the message says which and why."""


@dataclass
class Runner:
    """Runs the bids-stroke command line on the host (``image`` None) or in an image.

    Arguments name the folders as ``{bids}``, ``{out}`` and ``{work}``: the host's paths on
    the host, the mount points (``MOUNTS``) in an image.
    """

    name: str
    prefix: list[str]
    image: str | None = None
    bind: str = "-v"
    env: dict[str, str] = field(default_factory=dict)

    @property
    def container(self) -> bool:
        return self.image is not None

    def command(self, args: list[str], folders: dict[str, Path]) -> list[str]:
        if not self.container:
            return [*self.prefix, *(a.format(**folders) for a in args)]
        mounts = []
        for key, path in folders.items():
            mounts += [self.bind, f"{path}:{MOUNTS[key]}" + (":ro" if key == "bids" else "")]
        return [*self.prefix, *mounts, self.image, *(a.format(**MOUNTS) for a in args)]


class Smoke:
    """The checks, their printed lines and the runs' timings, under one folder."""

    def __init__(self, root: Path, runners: list[Runner], uid_gid: tuple[int, int]):
        self.root = root
        self.runners = runners
        self.uid, self.gid = uid_gid
        self.failures: list[str] = []
        self.seconds: dict[str, float] = {}
        self.host_version = ""  # set by the host's run, which comes first
        self.logs = root / "logs"

    # -- helpers -------------------------------------------------------------------------
    def say(self, ok: bool, what: str, detail: str = "") -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {what}" + (f": {detail}" if detail else ""), flush=True)
        if not ok:
            self.failures.append(f"{what}: {detail}")

    def run(self, runner: Runner, step: str, args: list[str], folders: dict[str, Path],
            expect: int = 0) -> subprocess.CompletedProcess:
        cmd = runner.command(args, folders)
        log = self.logs / f"{runner.name}-{step}.log"
        start = time.monotonic()
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **runner.env},
                              check=False)
        self.seconds[f"{runner.name}-{step}"] = time.monotonic() - start
        log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
        if done.returncode != expect:
            tail = "\n".join(("    " + line) for line in (done.stdout + done.stderr).splitlines()[-15:])
            raise SmokeFailure(f"{runner.name} {step}: exit {done.returncode}, expected {expect} "
                               f"(log: {log})\n{tail}")
        return done

    def folders(self, runner: Runner, bids: Path, tag: str = "") -> dict[str, Path]:
        base = self.root / "runs" / f"{runner.name}{tag}"
        folders = {"bids": bids, "out": base / "out", "work": base / "work"}
        for key in ("out", "work"):
            folders[key].mkdir(parents=True, exist_ok=True)
            if runner.container:
                os.chown(folders[key], self.uid, self.gid)
        return folders

    # -- the checks ----------------------------------------------------------------------
    def cohort(self) -> tuple[Path, Path, list[str]]:
        for sub in ("cohort", "runs", "logs"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
        self.logs.mkdir(parents=True)
        bids = simulate_cohort(self.root / "cohort" / "bids", **COHORT)
        labels = sorted(p.name[4:] for p in bids.glob("sub-*") if p.is_dir())
        bad = self.root / "cohort" / "bad"
        shutil.copytree(bids, bad)
        broken = sorted((bad / f"sub-{BAD_PARTICIPANT}" / "dwi").glob("*.nii.gz"))[0]
        broken.write_bytes(b"this is not a NIfTI image\n")
        for path in (bids, bad):
            for item in [path, *path.rglob("*")]:
                item.chmod(item.stat().st_mode | 0o444 | (0o111 if item.is_dir() else 0))
        print(f"cohort: {len(labels)} participants simulated in {bids} ({COHORT}); "
              f"{broken.relative_to(bad)} made unreadable in {bad}", flush=True)
        return bids, bad, labels

    def everything(self, runner: Runner, bids: Path, bad: Path, labels: list[str]) -> dict[str, Path]:
        name = runner.name
        if not runner.container:
            self.host_version = self.run(runner, "version", ["--version"], {}).stdout.strip()
        else:
            version = self.run(runner, "version", ["--version"], {}).stdout.strip()
            self.say(version == self.host_version, f"{name} --version", version)
            text = self.run(runner, "help", ["--help"], {}).stdout
            self.say("participant" in text and "--model" in text, f"{name} --help")
        folders = self.folders(runner, bids)
        before = tree_digest(bids)
        self.run(runner, "participant", [*FOLDERS, "participant", "--nprocs", NPROCS], folders)
        per_subject = self.seconds[f"{name}-participant"] / len(labels)
        self.say(True, f"{name} participant", f"{len(labels)} participants, {per_subject:.1f} s/subject")
        self.run(runner, "group", [*FOLDERS, "group", "--nprocs", NPROCS, *GROUP_OPTIONS], folders)
        self.say(True, f"{name} group", f"{self.seconds[f'{name}-group']:.0f} s")
        self.run(runner, "model", [*FOLDERS, "participant", "--nprocs", NPROCS, "--participant-label", labels[0],
                                   "--model", "{out}/models/ensemble"], folders)
        predictions = sorted(folders["out"].glob(f"sub-{labels[0]}/**/*prediction*"))
        self.say(bool(predictions), f"{name} participant --model",
                 f"{len(predictions)} prediction files for sub-{labels[0]}")
        self.say(tree_digest(bids) == before, f"{name} BIDS_DIR unchanged")
        if runner.container:
            owners = {(p.stat().st_uid, p.stat().st_gid) for p in folders["out"].rglob("*")}
            self.say(owners == {(self.uid, self.gid)}, f"{name} outputs owned by the calling user",
                     f"owners {sorted(owners)}, expected {(self.uid, self.gid)}")
        bad_folders = self.folders(runner, bad, "-bad")
        for options, code in (([], ExitCode.VALIDATION_FAILED), (["--skip-bids-validation"], ExitCode.BAD_INPUT)):
            failed = self.run(runner, f"bad-input{len(options)}",
                              [*FOLDERS, "participant", "--participant-label", BAD_PARTICIPANT, *options],
                              bad_folders, expect=code)
            errors = [line for line in failed.stderr.splitlines() if "error" in line.lower()]
            named = f"sub-{BAD_PARTICIPANT}_dwi.nii.gz" in failed.stderr
            self.say("Traceback" not in failed.stderr and named,
                     " ".join([f"{name} unreadable NIfTI", *options]) + f": exit {code.value}",
                     errors[-1].strip() if errors else "no error line")
        return folders

    def compare(self, name: str, host: dict[str, Path], other: dict[str, Path]) -> None:
        ours, theirs = outputs(host["out"]), outputs(other["out"])
        self.say(set(ours) == set(theirs), f"{name} writes the host's files",
                 f"{len(theirs)} NIfTI/TSV/JSON files outside {NOT_COMPARED}" if set(ours) == set(theirs) else
                 f"only on the host: {sorted(set(ours) - set(theirs))[:5]}, "
                 f"only in {name}: {sorted(set(theirs) - set(ours))[:5]}")
        counts = {"identical": 0}
        different = []
        for rel in sorted(set(ours) & set(theirs)):
            reason = difference(host["out"] / rel, other["out"] / rel, host, name)
            if reason == "DIFFERENT":
                different.append(rel)
            else:
                counts[reason] = counts.get(reason, 0) + 1
        self.say(not different, f"{name} outputs equal the host's",
                 ", ".join(f"{n} {KNOWN_DIFFERENCES.get(k, k)}" for k, n in counts.items())
                 + (f"; DIFFERENT: {different[:8]}" if different else ""))


def outputs(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.name.endswith(COMPARED_SUFFIXES)
                  and not str(p.relative_to(root)).startswith(NOT_COMPARED))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(root: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        sha.update(str(path.relative_to(root)).encode())
        if path.is_file():
            sha.update(path.read_bytes())
    return sha.hexdigest()


def difference(host_file: Path, image_file: Path, host: dict[str, Path], kind: str) -> str:
    """``identical``, a key of ``KNOWN_DIFFERENCES``, or ``DIFFERENT``.

    A JSON file may differ from the host's only where it records a folder's path (the
    host's own against the image's mount point) and, in dataset_description.json, by
    ``GeneratedBy.Container``, which must name the image.
    """
    if digest(host_file) == digest(image_file):
        return "identical"
    if host_file.name == "timing.json":
        return "timing.json"
    if host_file.suffix != ".json":
        return "DIFFERENT"
    text = host_file.read_text()
    for key, path in host.items():
        text = text.replace(str(path), MOUNTS[key])
    ours, theirs = json.loads(text), json.loads(image_file.read_text())
    if host_file.name != "dataset_description.json":
        return "paths" if ours == theirs else "DIFFERENT"
    containers = [entry.pop("Container", None) for entry in theirs.get("GeneratedBy", [])]
    named = bool(containers) and containers[0] is not None and containers[0]["Type"] == kind \
        and containers[0]["Tag"].startswith("bidsstroke/bids-stroke:")
    return "container" if named and ours == theirs else "DIFFERENT"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True, help="folder for the cohort, runs and logs")
    parser.add_argument("--docker", help="container engine: docker or podman")
    parser.add_argument("--image", help="Docker image name:tag")
    parser.add_argument("--apptainer", help="apptainer command")
    parser.add_argument("--sif", type=Path, help="Apptainer image file")
    opts = parser.parse_args(argv)
    root = opts.dir.resolve()
    uid_gid = UNPRIVILEGED if os.getuid() == 0 else (os.getuid(), os.getgid())
    runners = [Runner("host", [sys.executable, "-m", "bids_stroke"])]
    if opts.docker and opts.image:
        # rootless Podman maps the caller's uid to the container's with keep-id
        user = ["--userns=keep-id"] if os.getuid() != 0 and Path(opts.docker).name == "podman" else []
        runners.append(Runner("docker", [opts.docker, "run", "--rm", "--network", "none", *user,
                                         "--user", "{}:{}".format(*uid_gid)], image=opts.image))
    if opts.apptainer and opts.sif:
        env = {}
        if os.getuid() == 0:  # apptainer-in-root.sh runs it as the unprivileged user
            scratch = root / "apptainer-tmp"
            scratch.mkdir(parents=True, exist_ok=True)
            os.chown(scratch, *uid_gid)
            env = {"AS_USER": "{}:{}".format(*uid_gid), "APPTAINER_TMPDIR": str(scratch)}
        runners.append(Runner("apptainer", [opts.apptainer, "run", "--containall", "--cleanenv", "--no-home"],
                              image=str(opts.sif.resolve()), bind="-B", env=env))
    labels: list[str] = []
    smoke = Smoke(root, runners, uid_gid)
    try:
        bids, bad, labels = smoke.cohort()
        folders = {runner.name: smoke.everything(runner, bids, bad, labels) for runner in runners}
        for runner in runners[1:]:
            smoke.compare(runner.name, folders["host"], folders[runner.name])
    except SmokeFailure as exc:
        smoke.say(False, str(exc))
    host = smoke.seconds.get("host-participant")
    for runner in runners[1:]:
        seconds = smoke.seconds.get(f"{runner.name}-participant")
        if host and seconds:
            print(f"participant level, s/subject ({len(labels)} subjects, --nprocs {NPROCS}): "
                  f"{runner.name} {seconds / len(labels):.1f}, host {host / len(labels):.1f}, "
                  f"ratio {seconds / host:.2f}")
    if smoke.failures:
        print(f"smoke: {len(smoke.failures)} check(s) failed", file=sys.stderr)
        return 1
    print("smoke: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
