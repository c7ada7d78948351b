"""Workload commands: run (and attach), ps, describe, logs, wait, cancel; nodes and the audit trail."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from astrago.cli.attach import follow_logs, report_end
from astrago.cli.errors import CliError, err_console
from astrago.cli.http import ApiClient, CliConfig
from astrago.cli.monitor import gpu_use_of, print_gpu_use
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
from astrago.cli.render import console, memory_text, print_nodes, print_workloads, status_text
from astrago.client.bundle import DEFAULT_LIMIT_MIB, BundleTooLarge, pack_directory
from astrago.domain.enums import WorkloadStatus
from astrago.domain.suggest import did_you_mean
from astrago.services.schemas import WorkloadOut

LIVE_STATES = ["PENDING", "ADMITTED", "STARTING", "RUNNING", "PREEMPTED"]


def _workload_id(reference: str) -> str:
    return strip_kind("workload", reference)


# -- run -----------------------------------------------------------------------------------------------


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
    mine = [w.name for w in client.workspaces() if w.my_role]
    if len(mine) == 1:
        return mine[0]
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
    workdir: Annotated[
        str | None,
        typer.Option(help="start in this directory on the node instead of a copy of the current one"),
    ] = None,
    no_code: Annotated[
        bool, typer.Option("--no-code", help="do not upload the current directory; start in an empty one")
    ] = False,
    max_runtime: Annotated[str | None, typer.Option(help="stop after this long: 3600, 90m, 2h")] = None,
    no_preempt: Annotated[bool, typer.Option("--no-preempt", help="never preempt this workload")] = False,
    kind: Annotated[str | None, typer.Option(help="job, distributed, interactive or service")] = None,
    image: Annotated[str | None, typer.Option(help="container image (Kubernetes backend)")] = None,
    port: Annotated[list[int] | None, typer.Option("--port", help="port to expose, repeatable")] = None,
    volume: Annotated[
        list[str] | None, typer.Option("--volume", help="VOLUME:PATH[:ro] (see `astrago volume`), repeatable")
    ] = None,
    option: Annotated[list[str] | None, typer.Option("--option", help="backend option KEY=VALUE")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="a YAML spec; flags override it")] = None,
    attach: Annotated[
        bool,
        typer.Option("--attach", "-a", help="follow its logs to the end and exit with its exit code"),
    ] = False,
    output: OutputOpt = None,
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
    # The current directory is the code, with an image too (the image is the environment, as with
    # dstack); an image that holds its own code runs with --no-code.
    if not (no_code or spec.get("working_dir") or spec.get("code")):
        spec["code"] = _upload_current_directory(client)
    workload = client.submit(spec)
    if attach:
        err_console.print(
            f"[dim]submitted {workload.id}; following its output (Ctrl-C to detach or cancel)[/]"
        )
        follow_logs(client, workload.id, interactive_interrupt=True)
        raise typer.Exit(report_end(client.wait(workload.id, poll_s=0.5)))
    fmt = chosen_format(output, json_output)
    if fmt in (OutputFormat.TABLE, OutputFormat.WIDE):
        sys.stdout.write(workload.id + "\n")
    else:
        emit(workload, fmt, kind="workload", names=lambda: [workload.id], table=lambda _fmt: None)


def _code_limit_mib() -> int:
    value = os.environ.get("ASTRAGO_CODE_LIMIT_MIB", str(DEFAULT_LIMIT_MIB))
    if not value.isdigit() or int(value) < 1:
        raise CliError(f"ASTRAGO_CODE_LIMIT_MIB must be a whole number of MiB, not {value!r}", exit_code=2)
    return int(value)


def _upload_current_directory(client: ApiClient) -> str:
    """The current directory as a code bundle on the server; the workload starts in a copy of it."""
    root = Path.cwd()
    if root in (Path.home(), Path(root.anchor)):
        raise CliError(
            f"you are in {root}, not in a project directory: its whole tree would be uploaded as the code",
            exit_code=2,
            hint="cd into your project first, or run with --no-code (or --workdir DIR on the node)",
        )
    try:
        packed = pack_directory(root, _code_limit_mib())
    except BundleTooLarge as exc:
        raise CliError(str(exc), exit_code=2) from exc
    except OSError as exc:
        raise CliError(f"cannot pack {root}: {exc}", exit_code=2) from exc
    try:
        bundle = client.upload_code(packed.archive)
    finally:
        packed.archive.unlink(missing_ok=True)
    if packed.skipped_links:
        err_console.print(f"[dim]left out links to directories: {', '.join(packed.skipped_links)}[/]")
    err_console.print(
        f"[dim]uploaded {root} ({packed.files} files, {packed.size_bytes / 1024:.0f} KiB; "
        "--no-code to skip)[/]"
    )
    return bundle.id


# -- reading -------------------------------------------------------------------------------------------


def ps(
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="only this workspace")] = None,
    state: Annotated[list[str] | None, typer.Option("--state", "-s", help="only these states")] = None,
    all_states: Annotated[bool, typer.Option("--all", "-a", help="include finished workloads")] = False,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
    output: OutputOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """List workloads (unfinished ones unless --all or --state)."""
    states = [_state(s) for s in state] if state else None
    if states is None and not all_states:
        states = LIVE_STATES
    page = ApiClient.from_config().workloads(workspace, states, limit)
    fmt = chosen_format(output, json_output)

    def table(fmt: OutputFormat) -> None:
        if not page.items:
            err_console.print("No workloads." + ("" if all_states else " (--all shows finished ones)"))
            return
        print_workloads(page.items, fmt)

    emit(page, fmt, kind="workload", names=lambda: [w.id for w in page.items], table=table)


def _state(text: str) -> str:
    names = [s.value for s in WorkloadStatus]
    if text.upper() not in names:
        guess = did_you_mean(text.upper(), names)
        raise CliError(f"--state {text!r} is not a state{guess}; the states: {', '.join(names)}", exit_code=2)
    return text.upper()


def describe(workload_id: str, output: OutputOpt = None, json_output: JsonOpt = False) -> None:
    """Status, why it waits (and its queue position), placement, GPU use and events of a workload."""
    client = ApiClient.from_config()
    workload = client.workload(_workload_id(workload_id))
    events = client.events(workload.id)
    gpu_use = gpu_use_of(client, workload)

    def text(fmt: OutputFormat) -> None:
        _print_description(workload)
        print_gpu_use(gpu_use)
        console.print("events:")
        rows = [[e.created_at.isoformat(sep=" ", timespec="seconds"), e.type, e.reason] for e in events]
        columns = (Column("TIME"), Column("EVENT"), Column("DETAIL", free_text=True))
        print_table(columns, rows, fmt)

    data = {
        **workload.model_dump(mode="json"),
        "events": [e.model_dump(mode="json") for e in events],
        "gpu_use": gpu_use.summary.model_dump(mode="json") if gpu_use else None,
    }
    emit(data, chosen_format(output, json_output), kind="workload", names=lambda: [workload.id], table=text)


def _print_description(workload: WorkloadOut) -> None:
    spec = workload.spec
    res = spec["resources"]
    console.print(f"[bold]{workload.name}[/] ({workload.id}) in {workload.workspace}")
    console.print(f"  status:    {status_text(workload.status.value)}")
    if workload.status is WorkloadStatus.PENDING:
        console.print(f"  queue:     #{workload.queue_position or '?'}")
    if workload.reason:
        console.print(f"  reason:    {workload.reason}")
    console.print(f"  command:   {' '.join(spec['command']) or spec.get('image') or '-'}")
    gpu = (
        f"{res['gpu_share_milli'] / 1000:g} of a GPU"
        if res.get("gpu_share_milli")
        else (f"MIG {res['mig_profile']}" if res.get("mig_profile") else f"{res['gpus']} GPUs")
    )
    model = f" ({res['gpu_model']})" if res.get("gpu_model") else ""
    console.print(
        f"  per replica: {res['cpu_milli'] / 1000:g} cores, {memory_text(res['memory_mib'])}, {gpu}{model}; "
        f"replicas: {workload.replicas}; priority: {workload.priority}"
    )
    defaulted = spec.get("defaulted")
    if defaulted:
        console.print(f"  defaulted: {' and '.join(defaulted['fields'])} from {defaulted['from']}")
    for p in workload.placements:
        where = p.node + (f" GPUs {p.gpus}" if p.gpus else "")
        exit_code = f" exit {p.exit_code}" if p.exit_code is not None else ""
        console.print(f"  replica {p.index}: {where}  {p.state or '-'}{exit_code}  {p.reason or ''}")


def logs(
    workload_id: str,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="keep printing until it ends, then exit with its exit code"),
    ] = False,
    replica: Annotated[int, typer.Option(help="which replica")] = 0,
) -> None:
    """Print a workload's output. With -f, exit 0 only if it succeeded (its exit code if it failed)."""
    client = ApiClient.from_config()
    workload_id = _workload_id(workload_id)
    if not follow:
        with client.log_stream(workload_id, replica) as chunks:
            _copy(chunks)
        return
    follow_logs(client, workload_id, replica=replica, interactive_interrupt=False)
    raise typer.Exit(report_end(client.wait(workload_id, poll_s=0.5)))


def _copy(chunks: Any) -> None:
    out = sys.stdout.buffer
    for chunk in chunks:
        out.write(chunk)
        out.flush()


def wait(
    workload_id: str,
    timeout: Annotated[float | None, typer.Option(help="give up after this many seconds (exit 124)")] = None,
) -> None:
    """Wait until a workload ends; exit 0 if it succeeded, its exit code if it failed."""
    client = ApiClient.from_config()
    try:
        workload = client.wait(_workload_id(workload_id), timeout=timeout, poll_s=0.5)
    except TimeoutError as exc:
        raise CliError(str(exc), exit_code=124) from exc
    raise typer.Exit(report_end(workload))


def cancel(workload_id: str) -> None:
    """Cancel a workload: a queued one at once, a running one with SIGTERM and a grace period."""
    workload = ApiClient.from_config().cancel(_workload_id(workload_id))
    if workload.status is WorkloadStatus.CANCELLED:
        console.print(f"Cancelled {workload.id}")
    else:
        console.print(f"Stopping {workload.id} (it gets a grace period to exit)")


def nodes(output: OutputOpt = None, json_output: JsonOpt = False) -> None:
    """Nodes and their GPUs, with what is allocated."""
    items = ApiClient.from_config().nodes()

    def table(fmt: OutputFormat) -> None:
        if not items:
            err_console.print("No nodes registered yet.")
            return
        print_nodes(items, fmt)

    emit(
        items,
        chosen_format(output, json_output),
        kind="node",
        names=lambda: [n.name for n in items],
        table=table,
    )


AUDIT_COLUMNS = (
    Column("TIME"),
    Column("WHO"),
    Column("ACTION"),
    Column("TARGET"),
    Column("RESULT"),
    Column("DETAIL", free_text=True),
)


def audit(
    limit: Annotated[int, typer.Option(help="how many records, newest first")] = 50,
    output: OutputOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """The audit trail: who did what, when, and how it ended (admins)."""
    records = ApiClient.from_config().audit(limit)

    def table(fmt: OutputFormat) -> None:
        rows = [
            [
                r.created_at.isoformat(sep=" ", timespec="seconds"),
                r.actor or "-",
                r.action,
                r.target or "-",
                r.result,
                r.detail or "",
            ]
            for r in records
        ]
        print_table(AUDIT_COLUMNS, rows, fmt)

    names = lambda: [str(r.id) for r in records]  # noqa: E731
    emit(records, chosen_format(output, json_output), kind="audit", names=names, table=table)


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_interspersed_args": False})(run)
    app.command()(ps)
    app.command()(describe)
    app.command()(logs)
    app.command()(wait)
    app.command()(cancel)
    app.command()(nodes)
    app.command()(audit)
