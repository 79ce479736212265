"""The derivatives sink: copies a result into OUTPUT_DIR under its BIDS derivative name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bids.layout import parse_file_entities
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from bids_stroke.bids.naming import bids_uri, derivative_path, sidecar_path
from bids_stroke.bids.writers import atomic_output, write_json


class _DerivativesDataSinkInputSpec(BaseInterfaceInputSpec):
    # the sink always runs, so its files are not hashed (``nohash``): with content hashing
    # that read every output and the participant's raw DWI once per sink, in the main process
    in_file = File(exists=True, mandatory=True, nohash=True, desc="the result to store")
    source_file = File(mandatory=True, nohash=True, desc="the input file whose entities name the output")
    base_directory = Directory(mandatory=True, desc="OUTPUT_DIR")
    entities = traits.Dict(
        traits.Str, traits.Any, mandatory=True,
        desc="entities of the output: suffix, extension and desc/space/res/label/... as needed",
    )
    metadata = traits.Dict(traits.Str, traits.Any, desc="written as the JSON sidecar")
    links = traits.Dict(traits.Str, traits.Str,
                        desc="dataset name -> root (DatasetLinks): file paths in Sources become BIDS URIs")


class _DerivativesDataSinkOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the stored file")


class DerivativesDataSink(SimpleInterface):
    """Store ``in_file`` at :func:`~bids_stroke.bids.naming.derivative_path`.

    The subject, session, acquisition and run entities come from ``source_file``; the
    rest from ``entities``. The copy is atomic, and so is the sidecar written from
    ``metadata`` (for images, tables and transforms; a JSON result is its own file). The
    file paths in ``Sources`` (of the sidecar, or of a JSON result) are written as BIDS
    URIs (:func:`~bids_stroke.bids.naming.bids_uri`): ``bids::`` for OUTPUT_DIR's own
    files, ``bids:<name>:`` for those of the datasets in ``links``.
    """

    input_spec = _DerivativesDataSinkInputSpec
    output_spec = _DerivativesDataSinkOutputSpec
    always_run = True  # a rerun rewrites outputs that were removed from OUTPUT_DIR

    def _run_interface(self, runtime):
        source = parse_file_entities(self.inputs.source_file)
        out_file = derivative_path(self.inputs.base_directory, source, **self.inputs.entities)
        if out_file.name.endswith(".json"):
            write_json(out_file, self._with_uris(json.loads(Path(self.inputs.in_file).read_text())))
        else:
            with atomic_output(out_file) as tmp:
                shutil.copyfile(self.inputs.in_file, tmp)
        if self.inputs.metadata and not out_file.name.endswith(".json"):
            write_json(sidecar_path(out_file), self._with_uris(self.inputs.metadata))
        self._results["out_file"] = str(Path(out_file))
        return runtime

    def _with_uris(self, metadata: dict) -> dict:
        """``metadata`` with each file path of its ``Sources`` as a BIDS URI."""
        if not isinstance(metadata, dict) or not isinstance(metadata.get("Sources"), list):
            return metadata
        links = dict(self.inputs.links) if self.inputs.links else {}
        sources = [s if str(s).startswith("bids:") else bids_uri(s, self.inputs.base_directory, links)
                   for s in metadata["Sources"]]
        return {**metadata, "Sources": sources}
