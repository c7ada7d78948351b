"""Client commands: log in, manage users, workspaces and quotas, run and follow workloads."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from astrago.cli import logstream
from astrago.cli.errors import CliError, err_console
from astrago.cli.http import ApiClient, CliConfig
from astrago.cli.render import (
    console,
    memory_text,
    nodes_table,
    print_json,
    status_text,
    workloads_table,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}

user_app = typer.Typer(help="Manage user accounts (admins).", no_args_is_help=True)
workspace_app = typer.Typer(help="Manage workspaces (teams) and their members.", no_args_is_help=True)
quota_app = typer.Typer(help="Show and set workspace quotas.", no_args_is_help=True)
token_app = typer.Typer(help="Long-lived API tokens for scripts and CI.", no_args_is_help=True)


def _read_password(from_stdin: bool, confirm: bool, prompt: str = "Password") -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("no password on standard input", exit_code=2)
        return password
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for a password", exit_code=2, hint="use --password-stdin")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


# -- session -------------------------------------------------------------------------------------------


def login(
    url: Annotated[str, typer.Option(help="the server, e.g. http://127.0.0.1:8080")],
    username: Annotated[str, typer.Option(help="your user name")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
) -> None:
    """Log in and keep a long-lived API token for this machine in the CLI config file."""
    password = _read_password(password_stdin, confirm=False)
    anonymous = ApiClient(url, None)
    session = anonymous.request(
        "POST", "/api/v1/auth/login", json={"username": username, "password": password}
    )
    client = ApiClient(url, session["token"])
    token = client.request("POST", "/api/v1/auth/tokens", json={"name": f"cli@{socket.gethostname()}"})
    config = CliConfig.load()
    config.url, config.token, config.username = url, token["token"], username
    path = config.save()
    console.print(f"Logged in to {url} as {username} (token saved in {path})")


def whoami(json_output: JsonOpt = False) -> None:
    """Who you are logged in as, and your workspaces."""
    me = ApiClient.from_config().request("GET", "/api/v1/auth/me")
    if json_output:
        print_json(me)
        return
    role = "admin" if me["admin"] else "user"
    spaces = ", ".join(f"{name} ({r})" for name, r in me["workspaces"].items()) or "none"
    console.print(f"{me['username']} ({role}); workspaces: {spaces}")


# -- users -----------------------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="make this user a platform admin")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
) -> None:
    """Create a local user account."""
    password = _read_password(password_stdin, confirm=True, prompt=f"Password for {name}")
    ApiClient.from_config().request(
        "POST", "/api/v1/users", json={"username": name, "password": password, "admin": admin}
    )
    console.print(f"Created user {name}" + (" (admin)" if admin else ""))


@user_app.command("list")
def user_list(json_output: JsonOpt = False) -> None:
    """List user accounts."""
    users = ApiClient.from_config().request("GET", "/api/v1/users")
    if json_output:
        print_json(users)
        return
    table = Table("USER", "ROLE", "WORKSPACES", box=None, pad_edge=False)
    for u in users:
        spaces = ", ".join(f"{n} ({r})" for n, r in u["workspaces"].items())
        table.add_row(u["username"], "admin" if u["admin"] else "user", spaces)
    console.print(table)


# -- workspaces ----------------------------------------------------------------------------------------


@workspace_app.command("create")
def workspace_create(
    name: str, description: Annotated[str, typer.Option(help="what this team works on")] = ""
) -> None:
    """Create a workspace (admins)."""
    ApiClient.from_config().request(
        "POST", "/api/v1/workspaces", json={"name": name, "description": description}
    )
    console.print(f"Created workspace {name}")


@workspace_app.command("list")
def workspace_list(json_output: JsonOpt = False) -> None:
    """List the workspaces you can see."""
    spaces = ApiClient.from_config().request("GET", "/api/v1/workspaces")
    if json_output:
        print_json(spaces)
        return
    table = Table("WORKSPACE", "MY ROLE", "DESCRIPTION", box=None, pad_edge=False)
    for w in spaces:
        table.add_row(w["name"], w["my_role"] or "-", w["description"])
    console.print(table)


@workspace_app.command("show")
def workspace_show(name: str, json_output: JsonOpt = False) -> None:
    """Members and quota of a workspace."""
    client = ApiClient.from_config()
    space = client.request("GET", f"/api/v1/workspaces/{name}")
    quota = client.request("GET", f"/api/v1/workspaces/{name}/quota")
    if json_output:
        print_json({**space, "quota": quota})
        return
    console.print(f"[bold]{space['name']}[/]  {space['description']}")
    members = Table("MEMBER", "ROLE", box=None, pad_edge=False)
    for m in space["members"]:
        members.add_row(m["username"], m["role"])
    console.print(members)
    _print_quota(quota)


@workspace_app.command("add-member")
def workspace_add_member(
    name: str,
    user: str,
    role: Annotated[str, typer.Option(help="manager, member or viewer")] = "member",
) -> None:
    """Add a user to a workspace, or change their role."""
    ApiClient.from_config().request(
        "PUT", f"/api/v1/workspaces/{name}/members", json={"username": user, "role": role}
    )
    console.print(f"{user} is now a {role} of {name}")


@workspace_app.command("remove-member")
def workspace_remove_member(name: str, user: str) -> None:
    """Remove a user from a workspace."""
    ApiClient.from_config().request("DELETE", f"/api/v1/workspaces/{name}/members/{user}")
    console.print(f"Removed {user} from {name}")


@workspace_app.command("delete")
def workspace_delete(name: str) -> None:
    """Delete a workspace that has no unfinished workloads (admins)."""
    ApiClient.from_config().request("DELETE", f"/api/v1/workspaces/{name}")
    console.print(f"Deleted workspace {name}")


# -- quotas --------------------------------------------------------------------------------------------


def _print_quota(quota: dict[str, Any]) -> None:
    if not quota["entries"]:
        console.print("No quota: this workspace may use any idle capacity.")
        return
    table = Table("RESOURCE", "USED", "GUARANTEED", "LIMIT", box=None, pad_edge=False)
    for e in quota["entries"]:

        def fmt(value: float | None, unit: str = e["unit"]) -> str:
            if value is None:
                return "none"
            return memory_text(int(value)) if unit == "MiB" else f"{value:g} {unit}"

        table.add_row(e["resource"], fmt(e["used"]), fmt(e["guaranteed"]), fmt(e["limit"]))
    console.print(table)


@quota_app.command("set")
def quota_set(
    workspace: str,
    gpu_guaranteed: Annotated[
        float | None, typer.Option(help="GPUs always available to this workspace")
    ] = None,
    gpu_limit: Annotated[
        float | None, typer.Option(help="most GPUs it may use, borrowing included; -1: none")
    ] = None,
    gpu_model: Annotated[
        str | None, typer.Option(help="apply the GPU amounts to this GPU model only")
    ] = None,
    cpu_guaranteed: Annotated[str | None, typer.Option(help="cores, e.g. 16 or 500m")] = None,
    cpu_limit: Annotated[str | None, typer.Option(help="cores; -1: no limit")] = None,
    memory_guaranteed: Annotated[str | None, typer.Option(help="e.g. 64Gi")] = None,
    memory_limit: Annotated[str | None, typer.Option(help="e.g. 256Gi; -1: no limit")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Set a workspace's guaranteed amounts and limits (admins). Unset options keep their value."""
    body = {
        "gpu_model": gpu_model,
        "gpu_guaranteed": gpu_guaranteed,
        "gpu_limit": gpu_limit,
        "cpu_guaranteed": cpu_guaranteed,
        "cpu_limit": cpu_limit,
        "memory_guaranteed": memory_guaranteed,
        "memory_limit": memory_limit,
    }
    quota = ApiClient.from_config().request(
        "PUT", f"/api/v1/workspaces/{workspace}/quota", json={k: v for k, v in body.items() if v is not None}
    )
    if json_output:
        print_json(quota)
    else:
        _print_quota(quota)


@quota_app.command("show")
def quota_show(workspace: str, json_output: JsonOpt = False) -> None:
    """A workspace's quota and what it uses now."""
    quota = ApiClient.from_config().request("GET", f"/api/v1/workspaces/{workspace}/quota")
    if json_output:
        print_json(quota)
    else:
        _print_quota(quota)


# -- tokens --------------------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    name: str,
    expires_in_days: Annotated[int | None, typer.Option(help="expire after this many days")] = None,
) -> None:
    """Create an API token (printed once) for scripts: export ASTRAGO_TOKEN=..."""
    body: dict[str, Any] = {"name": name}
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    token = ApiClient.from_config().request("POST", "/api/v1/auth/tokens", json=body)
    sys.stdout.write(token["token"] + "\n")


@token_app.command("list")
def token_list(json_output: JsonOpt = False) -> None:
    """Your API tokens (never their secrets)."""
    tokens = ApiClient.from_config().request("GET", "/api/v1/auth/tokens")
    if json_output:
        print_json(tokens)
        return
    table = Table("ID", "NAME", "CREATED", "EXPIRES", "LAST USED", box=None, pad_edge=False)
    for t in tokens:
        table.add_row(
            t["id"], t["name"], t["created_at"], t["expires_at"] or "never", t["last_used_at"] or "-"
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke one of your API tokens."""
    ApiClient.from_config().request("DELETE", f"/api/v1/auth/tokens/{token_id}")
    console.print(f"Revoked token {token_id}")


# -- workloads -----------------------------------------------------------------------------------------


def _load_spec_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", exit_code=2) from exc
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise CliError(f"{path} is not valid YAML{where}: {problem}", exit_code=2) from exc
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a mapping (workspace:, command:, resources: ...)", exit_code=2)
    return data


def _default_workspace(client: ApiClient) -> str:
    configured = CliConfig.load().workspace
    if configured:
        return configured
    mine = [w["name"] for w in client.request("GET", "/api/v1/workspaces") if w["my_role"]]
    if len(mine) == 1:
        return str(mine[0])
    raise CliError(
        "say which workspace to run in with --workspace"
        + (f" (yours: {', '.join(mine)})" if mine else " (you are not a member of any)"),
        exit_code=2,
    )


def _parse_pairs(pairs: list[str], flag: str) -> dict[str, str]:
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"{flag} takes NAME=VALUE, not {pair!r}", exit_code=2)
        parsed[key] = value
    return parsed


def run(
    command: Annotated[list[str] | None, typer.Argument(help="the command, after --")] = None,
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="workspace to run in")] = None,
    gpus: Annotated[int | None, typer.Option(help="whole GPUs per replica")] = None,
    gpu_model: Annotated[str | None, typer.Option(help="GPU model, e.g. A100-80GB; 'A|B' for any of")] = None,
    gpu_share: Annotated[float | None, typer.Option(help="a fraction of one GPU, e.g. 0.5")] = None,
    mig: Annotated[str | None, typer.Option(help="a MIG profile, e.g. 1g.10gb")] = None,
    cpu: Annotated[str | None, typer.Option(help="cores per replica, e.g. 2 or 500m")] = None,
    memory: Annotated[str | None, typer.Option(help="memory per replica, e.g. 16Gi")] = None,
    replicas: Annotated[int | None, typer.Option(help="replicas, started all together (a gang)")] = None,
    priority: Annotated[str | None, typer.Option(help="-1000..1000 or low|normal|high|urgent")] = None,
    name: Annotated[str | None, typer.Option(help="a name (lowercase letters, digits, -)")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="NAME=VALUE, repeatable")] = None,
    workdir: Annotated[str | None, typer.Option(help="working directory")] = None,
    max_runtime: Annotated[str | None, typer.Option(help="stop after this long: 3600, 90m, 2h")] = None,
    no_preempt: Annotated[bool, typer.Option("--no-preempt", help="never preempt this workload")] = False,
    kind: Annotated[str | None, typer.Option(help="job, distributed, interactive or service")] = None,
    image: Annotated[str | None, typer.Option(help="container image (Kubernetes backend)")] = None,
    port: Annotated[list[int] | None, typer.Option("--port", help="port to expose, repeatable")] = None,
    volume: Annotated[list[str] | None, typer.Option("--volume", help="NAME:/mount/path, repeatable")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", help="backend option KEY=VALUE")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="a YAML spec; flags override it")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Submit a workload; prints its id. Example: astrago run --gpus 1 -- python train.py"""
    spec: dict[str, Any] = _load_spec_file(file) if file else {}
    client = ApiClient.from_config()
    if command:
        spec["command"] = command
    resources = dict(spec.get("resources") or {})
    for key, value in (
        ("gpus", gpus),
        ("gpu_model", gpu_model),
        ("gpu_share", gpu_share),
        ("mig", mig),
        ("cpu", cpu),
        ("memory", memory),
    ):
        if value is not None:
            resources[key] = value
    spec["resources"] = resources
    for key, value in (
        ("workspace", workspace),
        ("replicas", replicas),
        ("priority", priority),
        ("name", name),
        ("working_dir", workdir),
        ("max_runtime", max_runtime),
    ):
        if value is not None:
            spec[key] = value
    if env:
        spec["env"] = {**(spec.get("env") or {}), **_parse_pairs(env, "--env")}
    if option:
        spec["options"] = {**(spec.get("options") or {}), **_parse_pairs(option, "--option")}
    for key, values in (("ports", port), ("volumes", volume)):
        if values:
            spec[key] = [*(spec.get(key) or []), *values]
    for key, value in (("kind", kind), ("image", image)):
        if value is not None:
            spec[key] = value
    if no_preempt:
        spec["preemptible"] = False
    spec.setdefault("workspace", None)
    if spec["workspace"] is None:
        spec["workspace"] = _default_workspace(client)
    workload = client.request("POST", "/api/v1/workloads", json=spec)
    if json_output:
        print_json(workload)
    else:
        sys.stdout.write(workload["id"] + "\n")


def ps(
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="only this workspace")] = None,
    state: Annotated[list[str] | None, typer.Option("--state", "-s", help="only these states")] = None,
    all_states: Annotated[bool, typer.Option("--all", "-a", help="include finished workloads")] = False,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
    json_output: JsonOpt = False,
) -> None:
    """List workloads (unfinished ones unless --all or --state)."""
    params: dict[str, Any] = {"limit": limit}
    if workspace:
        params["workspace"] = workspace
    states = [s.upper() for s in state] if state else None
    if states is None and not all_states:
        states = ["PENDING", "ADMITTED", "STARTING", "RUNNING", "PREEMPTED"]
    if states:
        params["state"] = states
    page = ApiClient.from_config().request("GET", "/api/v1/workloads", params=params)
    if json_output:
        print_json(page)
        return
    if not page["items"]:
        console.print("No workloads." + ("" if all_states else " (--all shows finished ones)"))
        return
    console.print(workloads_table(page["items"]))


def describe(workload_id: str, json_output: JsonOpt = False) -> None:
    """Status, why it waits (and its queue position), placement and events of a workload."""
    client = ApiClient.from_config()
    workload = client.request("GET", f"/api/v1/workloads/{workload_id}")
    events = client.request("GET", f"/api/v1/workloads/{workload_id}/events")
    if json_output:
        print_json({**workload, "events": events})
        return
    spec = workload["spec"]
    res = spec["resources"]
    console.print(f"[bold]{workload['name']}[/] ({workload['id']}) in {workload['workspace']}")
    console.print(f"  status:    {status_text(workload['status'])}")
    if workload["status"] == "PENDING":
        console.print(f"  queue:     #{workload['queue_position'] or '?'}")
    if workload["reason"]:
        console.print(f"  reason:    {workload['reason']}")
    console.print(f"  command:   {' '.join(spec['command']) or spec.get('image') or '-'}")
    gpu = (
        f"{res['gpu_share_milli'] / 1000:g} of a GPU"
        if res.get("gpu_share_milli")
        else (f"MIG {res['mig_profile']}" if res.get("mig_profile") else f"{res['gpus']} GPUs")
    )
    model = f" ({res['gpu_model']})" if res.get("gpu_model") else ""
    console.print(
        f"  per replica: {res['cpu_milli'] / 1000:g} cores, {memory_text(res['memory_mib'])}, {gpu}{model}; "
        f"replicas: {workload['replicas']}; priority: {workload['priority']}"
    )
    for p in workload["placements"]:
        where = f"{p['node']}" + (f" GPUs {p['gpus']}" if p["gpus"] else "")
        state = p["state"] or "-"
        exit_code = f" exit {p['exit_code']}" if p["exit_code"] is not None else ""
        console.print(f"  replica {p['index']}: {where}  {state}{exit_code}  {p['reason'] or ''}")
    table = Table("TIME", "EVENT", "DETAIL", box=None, pad_edge=False, title="events", title_justify="left")
    for e in events:
        table.add_row(e["created_at"][:19].replace("T", " "), e["type"], e["reason"])
    console.print(table)


def logs(
    workload_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing until it ends")] = False,
    replica: Annotated[int, typer.Option(help="which replica")] = 0,
) -> None:
    """Print a workload's output."""
    client = ApiClient.from_config()
    if follow:
        _wait_until_placed(client, workload_id)
        logstream.follow(client, workload_id, replica)  # streamed, resumed after a dropped connection
        return
    params = {"replica": replica, "follow": str(follow).lower()}
    out = sys.stdout.buffer
    with client.stream(f"/api/v1/workloads/{workload_id}/logs", params) as chunks:
        for chunk in chunks:
            out.write(chunk)
            out.flush()


def _wait_until_placed(client: ApiClient, workload_id: str) -> None:
    """`logs -f` of a queued workload waits for it to start instead of failing."""
    announced = False
    while True:
        workload = client.request("GET", f"/api/v1/workloads/{workload_id}")
        if workload["placements"] or workload["status"] in TERMINAL:
            return
        if not announced:
            err_console.print(f"[dim]waiting for {workload_id} to start: {workload['reason']}[/]")
            announced = True
        time.sleep(1)


def cancel(workload_id: str) -> None:
    """Cancel a workload: a queued one at once, a running one with SIGTERM and a grace period."""
    workload = ApiClient.from_config().request("POST", f"/api/v1/workloads/{workload_id}/cancel")
    if workload["status"] == "CANCELLED":
        console.print(f"Cancelled {workload_id}")
    else:
        console.print(f"Stopping {workload_id} (it gets a grace period to exit)")


def nodes(json_output: JsonOpt = False) -> None:
    """Nodes and their GPUs, with what is allocated."""
    items = ApiClient.from_config().request("GET", "/api/v1/nodes")
    if json_output:
        print_json(items)
        return
    if not items:
        console.print("No nodes registered yet.")
        return
    console.print(nodes_table(items))


def audit(
    limit: Annotated[int, typer.Option(help="how many records, newest first")] = 50,
    json_output: JsonOpt = False,
) -> None:
    """The audit trail: who did what, when, and how it ended (admins)."""
    records = ApiClient.from_config().request("GET", "/api/v1/audit", params={"limit": limit})
    if json_output:
        print_json(records)
        return
    table = Table("TIME", "WHO", "ACTION", "TARGET", "RESULT", "DETAIL", box=None, pad_edge=False)
    for r in records:
        when = r["created_at"][:19].replace("T", " ")
        table.add_row(when, r["actor"] or "-", r["action"], r["target"] or "", r["result"], r["detail"] or "")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(whoami)
    app.command(context_settings={"allow_interspersed_args": False})(run)
    app.command()(ps)
    app.command()(describe)
    app.command()(logs)
    app.command()(cancel)
    app.command()(nodes)
    app.command()(audit)
    app.add_typer(user_app, name="user")
    app.add_typer(workspace_app, name="workspace")
    app.add_typer(quota_app, name="quota")
    app.add_typer(token_app, name="token")
