"""The container smoke tests' own logic: commands as users type them, and which output
differences between the host and an image they accept."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("smoke", ROOT / "tools" / "containers" / "smoke.py")
smoke = importlib.util.module_from_spec(_spec)
sys.modules["smoke"] = smoke  # dataclasses look their module up
_spec.loader.exec_module(smoke)

FOLDERS = {"bids": Path("/h/bids"), "out": Path("/h/out"), "work": Path("/h/work")}
ARGS = [*smoke.FOLDERS, "participant", "--model", "{out}/models/ensemble"]


def test_commands_mount_bids_read_only_and_use_the_mount_points():
    docker = smoke.Runner("docker", ["podman", "run", "--rm", "--network", "none"], image="img:1")
    assert docker.command(ARGS, FOLDERS) == [
        "podman", "run", "--rm", "--network", "none",
        "-v", "/h/bids:/data:ro", "-v", "/h/out:/out", "-v", "/h/work:/work", "img:1",
        "/data", "/out", "-w", "/work", "participant", "--model", "/out/models/ensemble"]
    apptainer = smoke.Runner("apptainer", ["apptainer", "run"], image="/i.sif", bind="-B")
    assert apptainer.command(ARGS, FOLDERS)[2:4] == ["-B", "/h/bids:/data:ro"]
    host = smoke.Runner("host", ["python", "-m", "bids_stroke"])
    assert host.command(ARGS, FOLDERS) == [
        "python", "-m", "bids_stroke", "/h/bids", "/h/out", "-w", "/h/work", "participant",
        "--model", "/h/out/models/ensemble"]


def _pair(tmp_path, host: dict, image: dict, name: str = "dataset_description.json") -> tuple[Path, Path]:
    (tmp_path / "h").mkdir(exist_ok=True)
    (tmp_path / "i").mkdir(exist_ok=True)
    (tmp_path / "h" / name).write_text(json.dumps(host))
    (tmp_path / "i" / name).write_text(json.dumps(image))
    return tmp_path / "h" / name, tmp_path / "i" / name


def test_dataset_description_may_differ_only_by_the_container_and_the_paths(tmp_path):
    host = {"Name": "x", "GeneratedBy": [{"Name": "bids-stroke"}],
            "SourceDatasets": [{"URL": "file:///h/bids"}]}
    image = {"Name": "x", "GeneratedBy": [{"Name": "bids-stroke", "Container": {
        "Type": "docker", "Tag": "bidsstroke/bids-stroke:0.1.0"}}], "SourceDatasets": [{"URL": "file:///data"}]}
    assert smoke.difference(*_pair(tmp_path, host, image), FOLDERS, "docker") == "container"
    # the wrong container type, no container, or any other difference is refused
    assert smoke.difference(*_pair(tmp_path, host, image), FOLDERS, "apptainer") == "DIFFERENT"
    bare = json.loads(json.dumps(image))
    del bare["GeneratedBy"][0]["Container"]
    assert smoke.difference(*_pair(tmp_path, host, bare), FOLDERS, "docker") == "DIFFERENT"
    image["Name"] = "y"
    assert smoke.difference(*_pair(tmp_path, host, image), FOLDERS, "docker") == "DIFFERENT"


def test_only_paths_timings_and_nothing_else_may_differ(tmp_path):
    pair = _pair(tmp_path, {"ModelBundle": "/h/out/models/ensemble", "AUC": 0.5},
                 {"ModelBundle": "/out/models/ensemble", "AUC": 0.5}, "x_predictions.json")
    assert smoke.difference(*pair, FOLDERS, "docker") == "paths"
    pair = _pair(tmp_path, {"ModelBundle": "/h/out/models/ensemble", "AUC": 0.5},
                 {"ModelBundle": "/out/models/ensemble", "AUC": 0.51}, "x_predictions.json")
    assert smoke.difference(*pair, FOLDERS, "docker") == "DIFFERENT"
    assert smoke.difference(*_pair(tmp_path, {"s": 1}, {"s": 2}, "timing.json"), FOLDERS, "docker") == "timing.json"
    (tmp_path / "h" / "a.tsv").write_text("1\n")
    (tmp_path / "i" / "a.tsv").write_text("2\n")
    assert smoke.difference(tmp_path / "h" / "a.tsv", tmp_path / "i" / "a.tsv", FOLDERS, "docker") == "DIFFERENT"
    (tmp_path / "i" / "a.tsv").write_text("1\n")
    assert smoke.difference(tmp_path / "h" / "a.tsv", tmp_path / "i" / "a.tsv", FOLDERS, "docker") == "identical"
