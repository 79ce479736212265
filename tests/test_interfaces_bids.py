"""The derivatives sink: names, sidecars and BIDS URIs in Sources."""

from __future__ import annotations

import json

from bids_stroke.bids.naming import LESION_DATASET, RAW_DATASET, sidecar_path
from bids_stroke.interfaces.bids import DerivativesDataSink


def test_sink_writes_sources_as_bids_uris(tmp_path):
    raw, lesions, out = tmp_path / "bids", tmp_path / "lesions", tmp_path / "out"
    source = raw / "sub-01" / "dwi" / "sub-01_dwi.nii.gz"
    mask = lesions / "sub-01" / "anat" / "sub-01_label-lesion_mask.nii.gz"
    for path in (source, mask):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
    result = tmp_path / "result.nii.gz"
    result.write_bytes(b"data")
    own = out / "sub-01" / "dwi" / "sub-01_label-lesion_desc-auto_mask.nii.gz"
    links = {RAW_DATASET: str(raw), LESION_DATASET: str(lesions)}
    sink = DerivativesDataSink(base_directory=str(out), source_file=str(source), links=links, in_file=str(result),
                               entities={"space": "model", "label": "lesion", "suffix": "mask",
                                         "extension": ".nii.gz"},
                               metadata={"Type": "Lesion", "Sources": [str(mask), str(own), "bids:raw:x.json"]})
    written = sink.run().outputs.out_file
    meta = json.loads(sidecar_path(written).read_text())
    assert meta["Sources"] == ["bids:lesions:sub-01/anat/sub-01_label-lesion_mask.nii.gz",
                               "bids::sub-01/dwi/sub-01_label-lesion_desc-auto_mask.nii.gz", "bids:raw:x.json"]
    assert meta["Type"] == "Lesion"
    # a JSON result is its own file: its Sources are rewritten too
    measures = tmp_path / "measures.json"
    measures.write_text(json.dumps({"LesionVolume": 1.5, "Sources": [str(source)]}))
    sink = DerivativesDataSink(base_directory=str(out), source_file=str(source), links=links, in_file=str(measures),
                               entities={"desc": "lesion", "suffix": "measures", "extension": ".json"})
    stored = json.loads(open(sink.run().outputs.out_file).read())
    assert stored == {"LesionVolume": 1.5, "Sources": ["bids:raw:sub-01/dwi/sub-01_dwi.nii.gz"]}


def test_sink_hashes_no_file_content_and_always_rewrites(tmp_path):
    """The sink's files are not read for nipype's hash; a rerun stores the new result."""
    import copy

    from nipype import config as nipype_config
    from nipype.pipeline import engine as pe

    source = tmp_path / "bids" / "sub-01" / "dwi" / "sub-01_dwi.nii.gz"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"raw")
    result = tmp_path / "result.nii.gz"
    result.write_bytes(b"first")
    node = pe.Node(DerivativesDataSink(base_directory=str(tmp_path / "out"), source_file=str(source),
                                       in_file=str(result), entities={"desc": "x", "suffix": "dwi",
                                                                      "extension": ".nii.gz"}),
                   name="ds", base_dir=str(tmp_path / "work"))
    node.config = copy.deepcopy(nipype_config._sections)
    node.config["execution"]["hash_method"] = "content"
    hashed = {name for name, _ in node._get_hashval()[0]}
    assert "in_file" not in hashed and "source_file" not in hashed and "entities" in hashed
    stored = node.run().outputs.out_file
    assert open(stored, "rb").read() == b"first"
    result.write_bytes(b"second")
    assert open(node.run().outputs.out_file, "rb").read() == b"second"
