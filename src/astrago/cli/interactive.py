"""Interactive commands: open a workload's web UI through the gateway (notebooks, services, apps)."""

from __future__ import annotations

import sys
import webbrowser
from typing import Annotated, Any

import typer

from astrago.cli.errors import CliError
from astrago.cli.http import ApiClient
from astrago.cli.terminal import exec_command


def _chosen_port(endpoints: list[dict[str, Any]], workload_id: str, port: int | None) -> int:
    if not endpoints:
        raise CliError(f"workload {workload_id} exposes no ports", hint="run it with --port PORT")
    ports = [int(e["port"]) for e in endpoints]
    if port is None:
        return ports[0]
    if port not in ports:
        raise CliError(f"workload {workload_id} does not expose port {port}; its ports: {ports}", exit_code=2)
    return port


def open_workload(
    workload_id: str,
    port: Annotated[int | None, typer.Option(help="which of its ports (default: the first)")] = None,
    print_only: Annotated[
        bool, typer.Option("--print", help="print the link instead of opening a browser")
    ] = False,
) -> None:
    """Open a workload's port through the gateway (JupyterLab, a service, any web app)."""
    client = ApiClient.from_config()
    endpoints = client.request("GET", f"/api/v1/workloads/{workload_id}/endpoints")
    chosen = _chosen_port(endpoints, workload_id, port)
    endpoint = next(e for e in endpoints if int(e["port"]) == chosen)
    if not endpoint["ready"]:
        raise CliError(
            f"workload {workload_id} is not ready on port {chosen} yet",
            hint=f"wait for it to be RUNNING (`astrago describe {workload_id}`)",
        )
    link = client.request("POST", f"/api/v1/workloads/{workload_id}/endpoints/{chosen}/open")
    url = client.url + link["url"]
    # The link logs its opener in once, within a minute: printed for this user's own browser only.
    sys.stdout.write(url + "\n")
    if not print_only and not webbrowser.open(url):
        sys.stderr.write("no browser found here; open the link above within a minute\n")


def register(app: typer.Typer) -> None:
    app.command("open")(open_workload)
    app.command("exec", context_settings={"allow_interspersed_args": False})(exec_command)
