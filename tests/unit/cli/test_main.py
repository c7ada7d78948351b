"""The command → area table that keeps the CLI's start-up fast must match what each area registers."""

from __future__ import annotations

import importlib

import typer

from astrago.cli.main import AREA_OF_COMMAND, AREAS, CLIENT_COMMANDS, build_app


def _names(app: typer.Typer) -> set[str]:
    commands = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    return commands | {g.name or "" for g in app.registered_groups}


def _commands_of(area: str) -> set[str]:
    app = typer.Typer()
    importlib.import_module(f"astrago.cli.{area}").register(app)
    return _names(app)


def test_every_command_is_routed_to_the_area_that_registers_it() -> None:
    routed = {**dict.fromkeys(CLIENT_COMMANDS, "client"), **AREA_OF_COMMAND}
    registered = {name: area for area in AREAS for name in _commands_of(area)}
    assert registered == routed


def test_a_command_loads_only_its_area_and_help_loads_all() -> None:
    assert _names(build_app(["ps"])) == _commands_of("client")
    assert _names(build_app(["--help"])) == {name for area in AREAS for name in _commands_of(area)}


def test_shell_completion_completes_commands() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "_ASTRAGO_COMPLETE": "complete_bash", "COMP_WORDS": "astrago wo", "COMP_CWORD": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "astrago.cli.main"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["workspace"]
