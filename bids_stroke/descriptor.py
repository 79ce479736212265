"""Boutiques descriptor of the command line, built from the argparse parser.

The BIDS Apps specification asks every app for a `Boutiques <https://boutiques.github.io>`_
descriptor. This one is generated from :func:`bids_stroke.cli.build_parser`, so flags, help
texts, choices and defaults have one source; the inputs that stand for the positional
arguments take the ids and value keys that ``bosh validate --bids`` requires. The
repository keeps the output in ``boutiques/bids-stroke.json``::

    python -m bids_stroke.descriptor --output boutiques/bids-stroke.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from bids_stroke._version import CONTAINER_IMAGE, __version__
from bids_stroke.cli import build_parser
from bids_stroke.config import ANALYSIS_LEVELS
from bids_stroke.errors import ExitCode

#: The container image's entry point (the Dockerfile's ENTRYPOINT); Boutiques replaces
#: the entry point with a shell, so the command line starts with it.
ENTRYPOINT = "python /opt/bids-stroke/run.py"
#: Options that ask argparse for its help or version instead of running the app.
_NOT_RUNS = (argparse._HelpAction, argparse._VersionAction)
#: Boutiques' BIDS-app checks want these two options right after the analysis level.
_LABELS = ("participant_label", "session_label")


def _value_key(dest: str) -> str:
    return f"[{dest.upper()}]"


def _help(action: argparse.Action, prog: str) -> str:
    """The action's help with ``%(default)s`` and the like filled in, as ``--help`` shows it."""
    params = {**vars(action), "prog": prog}
    if params.get("choices") is not None:
        params["choices"] = ", ".join(map(str, params["choices"]))
    return (action.help or "") % params


def _number_kind(converter) -> type | None:
    """``int`` or ``float`` for a numeric argparse converter, else None."""
    kind = converter if converter in (int, float) else getattr(converter, "kind", None)
    return kind if kind in (int, float) else None


def _is_plain(value) -> bool:
    """Whether ``value`` is a non-empty JSON value Boutiques can pass as a default."""
    if isinstance(value, list):
        return bool(value) and all(_is_plain(v) for v in value)
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _option(action: argparse.Action, prog: str) -> dict:
    """The Boutiques input of one optional argument."""
    flag = next(f for f in action.option_strings if f.startswith("--"))
    entry = {
        "id": action.dest,
        "name": flag.lstrip("-"),
        "description": _help(action, prog),
        "command-line-flag": flag,
        "value-key": _value_key(action.dest),
        "optional": not action.required,
    }
    if action.nargs == 0:  # store_true, count: present or absent
        return {**entry, "type": "Flag"}
    kind = _number_kind(action.type)
    if kind is not None:
        entry.update({"type": "Number", "integer": kind is int})
    else:
        entry["type"] = "File" if action.type is Path else "String"
    if action.choices is not None:
        entry["value-choices"] = list(action.choices)
    if action.nargs in ("+", "*"):
        entry.update({"list": True, "min-list-entries": int(action.nargs == "+")})
    default = list(action.default) if isinstance(action.default, (list, tuple)) else action.default
    if _is_plain(default):
        entry["default-value"] = default
    return entry


def _error_codes(epilog: str) -> list[dict]:
    """Every failing :class:`ExitCode` with its meaning from the ``--help`` epilog."""
    meaning: dict[int, str] = {}
    code = None
    for line in epilog.splitlines():
        if match := re.match(r"  (\d+)\s+(.+)", line):
            code = int(match[1])
            meaning[code] = match[2]
        elif code is not None and line.startswith("    "):
            meaning[code] += " " + line.strip()
        else:
            code = None
    failing = [int(c) for c in ExitCode if c != ExitCode.SUCCESS]
    if missing := [c for c in failing if c not in meaning]:
        raise ValueError(f"The --help epilog must explain every exit code. Got none for {missing}.")
    return [{"code": c, "description": meaning[c]} for c in failing]


def build_descriptor(parser: argparse.ArgumentParser | None = None) -> dict:
    """The Boutiques descriptor (schema 0.5) of the command line.

    Parameters
    ----------
    parser : argparse.ArgumentParser, default=None
        The parser to describe; None means :func:`bids_stroke.cli.build_parser`.

    Returns
    -------
    dict
        The descriptor, ready for :func:`json.dumps`.
    """
    parser = parser or build_parser()
    positional = {a.dest: a for a in parser._actions if not a.option_strings}
    if list(positional) != ["bids_dir", "output_dir", "analysis_level"]:
        raise ValueError(
            "The parser's positional arguments must be bids_dir output_dir analysis_level. "
            f"Got {' '.join(positional)} instead."
        )
    output_help = _help(positional["output_dir"], parser.prog)
    inputs = [
        {"id": "bids_dir", "name": "BIDS_DIR", "type": "File", "value-key": "[BIDS_DIR]",
         "description": _help(positional["bids_dir"], parser.prog), "optional": False},
        {"id": "output_dir_name", "name": "OUTPUT_DIR", "type": "String", "value-key": "[OUTPUT_DIR]",
         "description": output_help, "optional": True},
        {"id": "participant_level_analysis_dir", "name": "OUTPUT_DIR (existing)", "type": "File",
         "value-key": "[OUTPUT_DIR]", "optional": True,
         "description": f"{output_help}; an existing one, e.g. the participant level's for the group level"},
        {"id": "analysis_level", "name": "analysis level", "type": "String", "value-key": "[ANALYSIS_LEVEL]",
         "description": _help(positional["analysis_level"], parser.prog),
         "value-choices": list(ANALYSIS_LEVELS), "optional": False},
    ]
    options = [a for a in parser._actions if a.option_strings and not isinstance(a, _NOT_RUNS)]
    options.sort(key=lambda a: a.dest not in _LABELS)
    inputs += [_option(action, parser.prog) for action in options]

    groups = [{
        "id": "output_directory",
        "name": "OUTPUT_DIR",
        "description": "OUTPUT_DIR: the name of a folder to create, or an existing folder",
        "members": ["output_dir_name", "participant_level_analysis_dir"],
        "mutually-exclusive": True,
        "one-is-required": True,
    }]
    for group in parser._action_groups:
        members = [a.dest for a in group._group_actions if a in options]
        if members and group.title:
            groups.append({"id": re.sub(r"\W+", "_", group.title).strip("_"), "name": group.title,
                           "members": members})

    return {
        "schema-version": "0.5",
        "name": parser.prog,
        "tool-version": __version__,
        "description": parser.description,
        "command-line": " ".join(
            ["mkdir -p [OUTPUT_DIR];", ENTRYPOINT, "[BIDS_DIR] [OUTPUT_DIR] [ANALYSIS_LEVEL]"]
            + [_value_key(a.dest) for a in options]
        ),
        "container-image": {"type": "docker", "image": CONTAINER_IMAGE},
        "inputs": inputs,
        "groups": groups,
        "output-files": [{
            "id": "output_dir",
            "name": "OUTPUT_DIR",
            "description": output_help,
            "path-template": "[OUTPUT_DIR]",
            "optional": False,
        }],
        "error-codes": _error_codes(parser.epilog or ""),
    }


def to_json(descriptor: dict) -> str:
    """``descriptor`` as the checked-in file holds it: sorted keys, indent 2, final newline."""
    return json.dumps(descriptor, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the descriptor, or write it to ``--output``."""
    cli = argparse.ArgumentParser(prog="python -m bids_stroke.descriptor", description=__doc__.splitlines()[0])
    cli.add_argument("--output", type=Path, metavar="PATH", help="write the descriptor here instead of stdout")
    opts = cli.parse_args(argv)
    text = to_json(build_descriptor())
    if opts.output is None:
        sys.stdout.write(text)
    else:
        opts.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
