"""Running nipype workflows: the work folder's cache sees changed inputs."""

from __future__ import annotations

import os

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_stroke.config import Config
from bids_stroke.workflows.execution import run_workflow


def _read(in_file):
    with open(in_file) as handle:
        return handle.read()


def _run(tmp_path, in_file):
    workflow = pe.Workflow(name="wf", base_dir=str(tmp_path / "work"))
    node = pe.Node(niu.Function(input_names=["in_file"], output_names=["text"], function=_read), name="read")
    node.inputs.in_file = str(in_file)
    workflow.add_nodes([node])
    config = Config(bids_dir=tmp_path, output_dir=tmp_path / "out", analysis_level="participant",
                    work_dir=tmp_path / "work", nipype_plugin="Linear")
    run_workflow(workflow, config)
    from nipype.utils.filemanip import loadpkl

    return loadpkl(tmp_path / "work" / "wf" / "read" / "result_read.pklz").outputs.text


def test_rerun_sees_an_input_edited_in_place_with_the_same_size_and_time(tmp_path):
    """A lesion mask edited in place, size and mtime kept, must not give the old result."""
    in_file = tmp_path / "mask.txt"
    in_file.write_text("204 mL")
    stat = in_file.stat()
    assert _run(tmp_path, in_file) == "204 mL"
    in_file.write_text("79 mL!")
    os.utime(in_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert in_file.stat().st_size == stat.st_size and in_file.stat().st_mtime_ns == stat.st_mtime_ns
    assert _run(tmp_path, in_file) == "79 mL!"
