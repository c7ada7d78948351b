"""`astrago node cordon|uncordon NODE [--gpu INDEX]`: a node or one GPU out of new placements (admins)."""

from __future__ import annotations

from typing import Annotated

import typer

from astrago.cli.http import ApiClient
from astrago.cli.render import console

node_app = typer.Typer(help="Nodes: cordon and uncordon a node or one of its GPUs.", no_args_is_help=True)

NodeArg = Annotated[str, typer.Argument(help="the node's name, as `astrago nodes` lists it")]
GpuOpt = Annotated[int | None, typer.Option("--gpu", min=0, help="one GPU's index on the node")]


def _what(node: str, gpu: int | None) -> str:
    return f"node {node}" if gpu is None else f"GPU {gpu} on node {node}"


@node_app.command()
def cordon(
    node: NodeArg,
    gpu: GpuOpt = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="why, shown to users whose work waits")
    ] = None,
) -> None:
    """Take a node (or one GPU) out of new placements. Work already running there keeps running."""
    ApiClient.from_config().cordon(node, gpu, reason)
    console.print(f"Cordoned {_what(node, gpu)}: it takes no new work" + (f" ({reason})" if reason else ""))


@node_app.command()
def uncordon(node: NodeArg, gpu: GpuOpt = None) -> None:
    """Put a node (or one GPU) back into service. For a GPU this also clears a health fence (an Xid)."""
    cleared = ApiClient.from_config().uncordon(node, gpu).cleared
    if cleared:
        console.print(f"Uncordoned {_what(node, gpu)}: it takes new work again")
    else:
        console.print(f"{_what(node, gpu).capitalize()} was neither cordoned nor fenced; nothing changed")


def register(app: typer.Typer) -> None:
    app.add_typer(node_app, name="node")
