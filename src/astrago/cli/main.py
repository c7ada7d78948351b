"""The `astrago` command: one Typer app; each area registers its commands from its own module."""

from __future__ import annotations

import sys

import typer

from astrago.cli import client, deploy, gpu, server, sim
from astrago.cli.errors import CliError, render_error

app = typer.Typer(
    name="astrago",
    help="AstraGo: share GPUs fairly between ML teams, run and watch their workloads.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (server, client, sim, gpu, deploy):
    module.register(app)


def main() -> None:
    try:
        app()
    except CliError as exc:
        render_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
