"""The Boutiques descriptor: up to date, a valid BIDS-app descriptor, complete, and the
command lines Boutiques renders from it are ones the parser reads back unchanged."""

from __future__ import annotations

import argparse
import json
import random
import shlex
import string
import subprocess
import sys
from pathlib import Path

import pytest

from bids_stroke.cli import build_parser
from bids_stroke.descriptor import ENTRYPOINT, build_descriptor, main, to_json

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTOR = ROOT / "boutiques" / "bids-stroke.json"
REGENERATE = "python -m bids_stroke.descriptor --output boutiques/bids-stroke.json"
MISSING = "boutiques is not installed; install the test dependencies: pip install -e '.[test]'"
#: The inputs that stand for the positional arguments, with the parser's dest.
POSITIONAL = {"bids_dir": "bids_dir", "output_dir_name": "output_dir",
              "participant_level_analysis_dir": "output_dir", "analysis_level": "analysis_level"}
#: What a Boutiques Flag sets, per argparse action.
FLAG_VALUE = {argparse._StoreTrueAction: True, argparse._CountAction: 1}


@pytest.fixture(scope="module")
def checked_in() -> dict:
    return json.loads(DESCRIPTOR.read_text())


def _options() -> dict[str, argparse.Action]:
    """The parser's options that run the app (not --help, --version), by dest."""
    return {a.dest: a for a in build_parser()._actions
            if a.option_strings and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))}


def _bosh() -> str:
    """The ``bosh`` console script of this Python's boutiques."""
    try:
        import boutiques  # noqa: F401
    except ImportError:
        pytest.fail(MISSING)
    script = Path(sys.executable).parent / "bosh"
    if not script.is_file():
        pytest.fail(f"{script} not found. {MISSING}")
    return str(script)


def test_checked_in_descriptor_is_regenerated():
    assert DESCRIPTOR.read_text() == to_json(build_descriptor()), (
        f"{DESCRIPTOR.relative_to(ROOT)} is out of date with the command line; regenerate it: {REGENERATE}"
    )


def test_main_prints_or_writes_the_descriptor(tmp_path, capsys):
    assert main([]) == 0
    printed = capsys.readouterr().out
    assert main(["--output", str(tmp_path / "d.json")]) == 0
    assert printed == (tmp_path / "d.json").read_text() == to_json(build_descriptor())
    assert printed.endswith("}\n")


def test_bosh_validates_it_as_a_bids_app():
    result = subprocess.run([_bosh(), "validate", "--bids", str(DESCRIPTOR)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "BIDS validation OK" in result.stdout, result.stdout + result.stderr


def test_every_option_is_described_with_its_flag(checked_in):
    inputs = {i["id"]: i for i in checked_in["inputs"]}
    for dest, action in _options().items():
        assert dest in inputs, f"{action.option_strings[-1]} is missing from the descriptor; regenerate it: {REGENERATE}"
        described = inputs[dest]
        assert described["command-line-flag"] in action.option_strings, dest
        assert (described["type"] == "Flag") == (action.nargs == 0), dest
        assert described.get("list", False) == (action.nargs in ("+", "*")), dest
        assert described.get("value-choices") == (list(action.choices) if action.choices else None), dest
        assert f"[{dest.upper()}]" in checked_in["command-line"], dest
    assert set(inputs) == set(_options()) | set(POSITIONAL), f"stale inputs; regenerate: {REGENERATE}"


def test_command_line_starts_with_the_image_entry_point():
    dockerfile = (ROOT / "Dockerfile").read_text()
    entrypoint = next(line for line in dockerfile.splitlines() if line.startswith("ENTRYPOINT"))
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT")) == ENTRYPOINT.split()


def _render(invocation: dict, tmp_path: Path) -> list[str]:
    """The arguments after the entry point in the command line ``bosh exec simulate`` renders."""
    _bosh()
    from boutiques import bosh

    path = tmp_path / "invocation.json"
    path.write_text(json.dumps(invocation))
    command = bosh(["exec", "simulate", str(DESCRIPTOR), "-i", str(path)]).shell_command
    mkdir, _, app = command.partition("; ")
    out = invocation.get("output_dir_name", invocation.get("participant_level_analysis_dir"))
    assert shlex.split(mkdir) == ["mkdir", "-p", out], command
    argv = shlex.split(app)
    assert argv[:len(ENTRYPOINT.split())] == ENTRYPOINT.split()
    return argv[len(ENTRYPOINT.split()):]


def _expected(action: argparse.Action, value):
    """What the parser makes of ``value`` given to ``action``."""
    if action.nargs == 0:
        return FLAG_VALUE[type(action)]
    convert = action.type or str
    return [convert(str(v)) for v in value] if isinstance(value, list) else convert(str(value))


def _assert_round_trip(invocation: dict, tmp_path: Path):
    opts = build_parser().parse_args(_render(invocation, tmp_path))
    actions = {a.dest: a for a in build_parser()._actions}
    for dest, action in actions.items():
        given = [v for k, v in invocation.items() if POSITIONAL.get(k, k) == dest]
        if given:
            assert getattr(opts, dest) == _expected(action, given[0]), dest
        elif hasattr(opts, dest):  # not given: the parser's own default
            assert getattr(opts, dest) == action.default, dest


def test_simulated_command_line_parses_to_the_invocation(tmp_path):
    _assert_round_trip({
        "bids_dir": "/data/bids", "output_dir_name": "/data/out", "analysis_level": "participant",
        "participant_label": ["01", "02"], "nprocs": 2, "skip_bids_validation": True,
    }, tmp_path)


def _random_invocation(descriptor: dict, rng: random.Random) -> dict:
    """Values of a random subset of the inputs, each of a kind the command line accepts."""
    def value(described: dict):
        if "value-choices" in described:
            return rng.choice(described["value-choices"])
        if described["type"] == "Number":  # every numeric option accepts 1 to 6
            return rng.randint(1, 6) if described["integer"] else round(rng.uniform(1, 6), 4)
        word = "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(1, 8)))
        return f"/data/{word}" if described["type"] == "File" else word

    invocation = {"bids_dir": "/data/bids", "output_dir_name": "/data/out"}
    for described in descriptor["inputs"]:
        if described["id"] in POSITIONAL and described["id"] != "analysis_level":
            continue
        if not described["optional"] or rng.random() < 0.5:
            if described["type"] == "Flag":
                invocation[described["id"]] = True
            elif described.get("list"):
                invocation[described["id"]] = [value(described) for _ in range(rng.randint(1, 3))]
            else:
                invocation[described["id"]] = value(described)
    return invocation


@pytest.mark.parametrize("seed", range(20))
def test_any_invocation_round_trips_through_the_command_line(seed, checked_in, tmp_path):
    _assert_round_trip(_random_invocation(checked_in, random.Random(seed)), tmp_path)
