"""The version string, read from the repository's ``version`` file.

The ``version`` file at the project root is the single source of the version: packaging
reads it (``pyproject.toml``), and a source checkout reads it here directly so that
``python run.py --version`` prints its content even before installation.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path


def _read_version() -> str:
    source_file = Path(__file__).resolve().parent.parent / "version"
    if source_file.is_file():
        return source_file.read_text().strip()
    try:
        return metadata.version("bids-stroke")
    except metadata.PackageNotFoundError:  # pragma: no cover - unpackaged copy
        return "0+unknown"


__version__ = _read_version()

#: The name and tag of this version's Docker image (Dockerfile, Singularity.def, the
#: Boutiques descriptor and ``GeneratedBy.Container``).
CONTAINER_IMAGE = f"bidsstroke/bids-stroke:{__version__}"
