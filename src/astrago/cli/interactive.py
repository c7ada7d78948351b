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


service_app = typer.Typer(help="Services: replicated web servers behind the gateway.", no_args_is_help=True)


@service_app.command("update")
def service_update(
    workload_id: str,
    command: Annotated[list[str] | None, typer.Argument(help="the new command, after --")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="NAME=VALUE, repeatable")] = None,
    image: Annotated[str | None, typer.Option(help="the new image (Kubernetes backend)")] = None,
) -> None:
    """Roll a service to a new command, image or env: new replicas are ready before the old ones drain."""
    body: dict[str, Any] = {}
    if command and command[:1] == ["--"]:
        command = command[1:]
    if command:
        body["command"] = command
    if image is not None:
        body["image"] = image
    if env:
        pairs = {}
        for pair in env:
            name, sep, value = pair.partition("=")
            if not sep or not name:
                raise CliError(f"--env {pair!r} must be NAME=VALUE", exit_code=2)
            pairs[name] = value
        body["env"] = pairs
    workload = ApiClient.from_config().request("POST", f"/api/v1/workloads/{workload_id}/rollout", json=body)
    sys.stdout.write(f"{workload_id} rolls to revision {workload['spec']['revision']}\n")


def register(app: typer.Typer) -> None:
    app.add_typer(service_app, name="service")
    app.command("open")(open_workload)
    app.command("exec", context_settings={"allow_interspersed_args": False})(exec_command)
