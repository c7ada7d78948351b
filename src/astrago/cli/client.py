"""Client commands: log in, manage users, workspaces and quotas, run and follow workloads."""

from __future__ import annotations

import socket
import sys
from typing import Annotated

import typer

from astrago.cli.errors import CliError
from astrago.cli.http import ApiClient, CliConfig
from astrago.cli.output import (
    Column,
    JsonOpt,
    OutputFormat,
    OutputOpt,
    chosen_format,
    emit,
    print_table,
    strip_kind,
)
from astrago.cli.render import console, memory_text
from astrago.services.schemas import QuotaOut, QuotaSet, WorkspaceDefaultsOut, WorkspaceDefaultsSet

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
    session = ApiClient(url, None).login(username, password)
    token = ApiClient(url, session.token).create_token(f"cli@{socket.gethostname()}")
    config = CliConfig.load()
    config.url, config.token, config.username = url, token.token, username
    path = config.save()
    console.print(f"Logged in to {url} as {username} (token saved in {path})")


def whoami(output: OutputOpt = None, json_output: JsonOpt = False) -> None:
    """Who you are logged in as, and your workspaces."""
    me = ApiClient.from_config().me()

    def sentence(_fmt: OutputFormat) -> None:
        role = "admin" if me.admin else "user"
        spaces = ", ".join(f"{name} ({r})" for name, r in me.workspaces.items()) or "none"
        console.print(f"{me.username} ({role}); workspaces: {spaces}")

    emit(me, chosen_format(output, json_output), kind="user", names=lambda: [me.username], table=sentence)


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
    ApiClient.from_config().create_user(name, password, admin)
    console.print(f"Created user {name}" + (" (admin)" if admin else ""))


USER_COLUMNS = (
    Column("USER"),
    Column("ROLE"),
    Column("ID", wide_only=True),
    Column("WORKSPACES", free_text=True),
)


@user_app.command("list")
def user_list(output: OutputOpt = None, json_output: JsonOpt = False) -> None:
    """List user accounts."""
    users = ApiClient.from_config().users()

    def table(fmt: OutputFormat) -> None:
        rows = [
            [
                u.username,
                "admin" if u.admin else "user",
                u.id,
                ", ".join(f"{n} ({r})" for n, r in u.workspaces.items()),
            ]
            for u in users
        ]
        print_table(USER_COLUMNS, rows, fmt)

    names = lambda: [u.username for u in users]  # noqa: E731
    emit(users, chosen_format(output, json_output), kind="user", names=names, table=table)


# -- workspaces ----------------------------------------------------------------------------------------


@workspace_app.command("create")
def workspace_create(
    name: str, description: Annotated[str, typer.Option(help="what this team works on")] = ""
) -> None:
    """Create a workspace (admins)."""
    ApiClient.from_config().create_workspace(name, description)
    console.print(f"Created workspace {name}")


WORKSPACE_COLUMNS = (
    Column("WORKSPACE"),
    Column("MY-ROLE"),
    Column("CREATED", wide_only=True),
    Column("DESCRIPTION", free_text=True),
)


@workspace_app.command("list")
def workspace_list(output: OutputOpt = None, json_output: JsonOpt = False) -> None:
    """List the workspaces you can see."""
    spaces = ApiClient.from_config().workspaces()

    def table(fmt: OutputFormat) -> None:
        rows = [[w.name, w.my_role or "-", w.created_at.isoformat(), w.description] for w in spaces]
        print_table(WORKSPACE_COLUMNS, rows, fmt)

    names = lambda: [w.name for w in spaces]  # noqa: E731
    emit(spaces, chosen_format(output, json_output), kind="workspace", names=names, table=table)


@workspace_app.command("show")
def workspace_show(name: str, output: OutputOpt = None, json_output: JsonOpt = False) -> None:
    """Members and quota of a workspace."""
    client = ApiClient.from_config()
    name = strip_kind("workspace", name)
    space = client.workspace(name)
    quota = client.quota(name)

    def text(fmt: OutputFormat) -> None:
        console.print(f"[bold]{space.name}[/]  {space.description}")
        print_table((Column("MEMBER"), Column("ROLE")), [[m.username, m.role] for m in space.members], fmt)
        _print_quota(quota, fmt)

    data = {**space.model_dump(mode="json"), "quota": quota.model_dump(mode="json")}
    emit(data, chosen_format(output, json_output), kind="workspace", names=lambda: [space.name], table=text)


@workspace_app.command("add-member")
def workspace_add_member(
    name: str,
    user: str,
    role: Annotated[str, typer.Option(help="manager, member or viewer")] = "member",
) -> None:
    """Add a user to a workspace, or change their role."""
    ApiClient.from_config().set_member(name, user, role)
    console.print(f"{user} is now a {role} of {name}")


@workspace_app.command("remove-member")
def workspace_remove_member(name: str, user: str) -> None:
    """Remove a user from a workspace."""
    ApiClient.from_config().remove_member(name, user)
    console.print(f"Removed {user} from {name}")


@workspace_app.command("delete")
def workspace_delete(name: str) -> None:
    """Delete a workspace that has no unfinished workloads (admins)."""
    ApiClient.from_config().delete_workspace(strip_kind("workspace", name))
    console.print(f"Deleted workspace {name}")


@workspace_app.command("defaults")
def workspace_defaults(
    name: str,
    cpu: Annotated[str | None, typer.Option(help="cores for a CPU-only workload, e.g. 1 or 500m")] = None,
    memory: Annotated[str | None, typer.Option(help="memory for a CPU-only workload, e.g. 2Gi")] = None,
    cpu_per_gpu: Annotated[str | None, typer.Option(help="cores per GPU a workload asks for")] = None,
    memory_per_gpu: Annotated[str | None, typer.Option(help="memory per GPU a workload asks for")] = None,
    reset: Annotated[bool, typer.Option("--reset", help="back to the platform's rule")] = False,
    output: OutputOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Show, or set (managers), the CPU and memory of workloads that do not ask for them. Without a
    value the platform gives a GPU workload its node's share per GPU, a CPU-only one 0.5 cores and 1 GiB."""
    client = ApiClient.from_config()
    name = strip_kind("workspace", name)
    given = {"cpu": cpu, "memory": memory, "cpu_per_gpu": cpu_per_gpu, "memory_per_gpu": memory_per_gpu}
    if reset or any(value is not None for value in given.values()):
        current = {} if reset else _defaults_as_input(client.workspace_defaults(name))
        merged = {**current, **{k: v for k, v in given.items() if v is not None}}
        defaults = client.set_workspace_defaults(name, WorkspaceDefaultsSet(**merged))
    else:
        defaults = client.workspace_defaults(name)

    def table(fmt: OutputFormat) -> None:
        def shown(value: int | None, unit: str) -> str:
            if value is None:
                return "platform default"
            return f"{value / 1000:g} cores" if unit == "cpu" else memory_text(value)

        rows = [
            ["cpu (CPU-only workloads)", shown(defaults.cpu_milli, "cpu")],
            ["memory (CPU-only workloads)", shown(defaults.memory_mib, "memory")],
            ["cpu per GPU", shown(defaults.cpu_milli_per_gpu, "cpu")],
            ["memory per GPU", shown(defaults.memory_mib_per_gpu, "memory")],
        ]
        print_table((Column("DEFAULT"), Column("VALUE")), rows, fmt)

    emit(defaults, chosen_format(output, json_output), kind="workspace", names=lambda: [name], table=table)


def _defaults_as_input(out: WorkspaceDefaultsOut) -> dict[str, str]:
    values = {
        "cpu": f"{out.cpu_milli}m" if out.cpu_milli is not None else None,
        "memory": f"{out.memory_mib}Mi" if out.memory_mib is not None else None,
        "cpu_per_gpu": f"{out.cpu_milli_per_gpu}m" if out.cpu_milli_per_gpu is not None else None,
        "memory_per_gpu": f"{out.memory_mib_per_gpu}Mi" if out.memory_mib_per_gpu is not None else None,
    }
    return {key: value for key, value in values.items() if value is not None}


# -- quotas --------------------------------------------------------------------------------------------

QUOTA_COLUMNS = (Column("RESOURCE"), Column("USED"), Column("GUARANTEED"), Column("LIMIT"))


def _print_quota(quota: QuotaOut, fmt: OutputFormat = OutputFormat.TABLE) -> None:
    if not quota.entries:
        console.print("No quota: this workspace may use any idle capacity.")
        return

    def amount(value: float | None, unit: str) -> str:
        if value is None:
            return "none"
        return memory_text(int(value)) if unit == "MiB" else f"{value:g} {unit}"

    rows = [
        [e.resource, amount(e.used, e.unit), amount(e.guaranteed, e.unit), amount(e.limit, e.unit)]
        for e in quota.entries
    ]
    print_table(QUOTA_COLUMNS, rows, fmt)


def _emit_quota(quota: QuotaOut, output: OutputFormat | None, json_output: bool) -> None:
    names = lambda: [e.resource for e in quota.entries]  # noqa: E731
    fmt = chosen_format(output, json_output)
    emit(quota, fmt, kind="quota", names=names, table=lambda f: _print_quota(quota, f))


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
    output: OutputOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Set a workspace's guaranteed amounts and limits (admins). Unset options keep their value."""
    change = QuotaSet(
        gpu_model=gpu_model,
        gpu_guaranteed=gpu_guaranteed,
        gpu_limit=gpu_limit,
        cpu_guaranteed=cpu_guaranteed,
        cpu_limit=cpu_limit,
        memory_guaranteed=memory_guaranteed,
        memory_limit=memory_limit,
    )
    _emit_quota(ApiClient.from_config().set_quota(workspace, change), output, json_output)


@quota_app.command("show")
def quota_show(workspace: str, output: OutputOpt = None, json_output: JsonOpt = False) -> None:
    """A workspace's quota and what it uses now."""
    _emit_quota(ApiClient.from_config().quota(strip_kind("workspace", workspace)), output, json_output)


# -- tokens --------------------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    name: str,
    expires_in_days: Annotated[int | None, typer.Option(help="expire after this many days")] = None,
) -> None:
    """Create an API token (printed once) for scripts: export ASTRAGO_TOKEN=..."""
    token = ApiClient.from_config().create_token(name, expires_in_days)
    sys.stdout.write(f"{token.token}\n")


TOKEN_COLUMNS = (Column("ID"), Column("NAME"), Column("CREATED"), Column("EXPIRES"), Column("LAST-USED"))


@token_app.command("list")
def token_list(output: OutputOpt = None, json_output: JsonOpt = False) -> None:
    """Your API tokens (never their secrets)."""
    tokens = ApiClient.from_config().tokens()

    def table(fmt: OutputFormat) -> None:
        rows = [
            [
                t.id,
                t.name,
                t.created_at.isoformat(timespec="seconds"),
                t.expires_at.isoformat(timespec="seconds") if t.expires_at else "never",
                t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "-",
            ]
            for t in tokens
        ]
        print_table(TOKEN_COLUMNS, rows, fmt)

    names = lambda: [t.id for t in tokens]  # noqa: E731
    emit(tokens, chosen_format(output, json_output), kind="token", names=names, table=table)


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke one of your API tokens."""
    ApiClient.from_config().revoke_token(strip_kind("token", token_id))
    console.print(f"Revoked token {token_id}")


def register(app: typer.Typer) -> None:
    from astrago.cli import workloads

    app.command()(login)
    app.command()(whoami)
    workloads.register(app)
    app.add_typer(user_app, name="user")
    app.add_typer(workspace_app, name="workspace")
    app.add_typer(quota_app, name="quota")
    app.add_typer(token_app, name="token")
