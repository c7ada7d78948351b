"""`astrago sim …`: run traces through the scheduler's placement policies without a cluster.

Each mode is one command on `sim_app`; the shared helpers below read traces and seed ranges and turn bad
input into `CliError`s (one clear line, no traceback)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from astrago.cli.errors import CliError
from astrago.scheduler.placement import DEFAULT_POLICY, policy_descriptions, policy_names
from astrago.scheduler.queueing import QueueDiscipline
from astrago.scheduler.types import NodeInfo
from astrago.sim.fill import DEFAULT_TUNE, fill
from astrago.sim.replay import ReplayConfig, replay
from astrago.sim.traces import TraceError, TracePod, read_nodes, read_pods

sim_app = typer.Typer(
    name="sim",
    help="Simulate scheduling on a trace (Alibaba openb CSV or the native YAML/JSON format).",
    no_args_is_help=True,
)
console = Console(highlight=False)

_SEEDS_RE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")
MAX_SEEDS = 1000


def register(app: typer.Typer) -> None:
    """Add `astrago sim` to the root app."""
    app.add_typer(sim_app, name="sim")


# ------------------------------------------------------------------------------------- shared helpers
def parse_seeds(text: str) -> list[int]:
    """'42-51' (inclusive), '42', or a comma list of either ('42,45-47')."""
    seeds: list[int] = []
    for part in text.split(","):
        match = _SEEDS_RE.match(part)
        if not match:
            raise CliError(f"bad seed range {text!r}", exit_code=2, hint="use e.g. 42-51, 42 or 42,45-47")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first:
            raise CliError(f"bad seed range {part.strip()!r}: the end is before the start", exit_code=2)
        seeds.extend(range(first, last + 1))
        if len(seeds) > MAX_SEEDS:
            raise CliError(f"at most {MAX_SEEDS} seeds per run", exit_code=2)
    if len(set(seeds)) != len(seeds):
        raise CliError(f"seed range {text!r} repeats a seed", exit_code=2)
    return seeds


def check_policy(name: str) -> str:
    if name not in policy_names():
        raise CliError(
            f"unknown policy {name!r}",
            exit_code=2,
            hint=f"known policies: {', '.join(policy_names())} (see `astrago sim policies`)",
        )
    return name


def _read_text(path: Path, what: str) -> str:
    if not path.exists():
        raise CliError(f"{what} file {path} does not exist", exit_code=2)
    if not path.is_file():
        raise CliError(f"{what} path {path} is not a file", exit_code=2)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {what} file {path}: {exc}", exit_code=2) from None


def load_trace_nodes(path: Path) -> list[NodeInfo]:
    try:
        return read_nodes(_read_text(path, "nodes"), str(path))
    except TraceError as exc:
        raise CliError(str(exc), exit_code=2) from None


def load_trace_pods(path: Path) -> list[TracePod]:
    try:
        return read_pods(_read_text(path, "pods"), str(path))
    except TraceError as exc:
        raise CliError(str(exc), exit_code=2) from None


def write_report(report: dict[str, Any], out: Path | None) -> None:
    if out is None:
        return
    try:
        out.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot write {out}: {exc}") from None
    console.print(f"report written to {out}")


def _number(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}"


# --------------------------------------------------------------------------------------------- commands
@sim_app.command("fill")
def fill_command(
    nodes: Path = typer.Option(..., "--nodes", help="cluster: openb node CSV or native YAML/JSON"),
    pods: Path = typer.Option(..., "--pods", help="workload: openb pod CSV or native YAML/JSON"),
    policy: str = typer.Option(
        DEFAULT_POLICY, "--policy", help="placement policy (see `astrago sim policies`)"
    ),
    seeds: str = typer.Option("42-51", "--seeds", help="seeds to average over: 42-51, 42 or 42,45-47"),
    tune: float = typer.Option(
        DEFAULT_TUNE, "--tune", help="stop once the GPU request reaches tune × capacity"
    ),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="processes, one seed each"),
    out: Path | None = typer.Option(None, "--out", help="write the JSON report here"),
) -> None:
    """Fill an empty cluster with the trace's pods until the request reaches TUNE × capacity (the FGD
    paper's protocol) and report the GPU allocation ratio, unallocated GPUs and fragmentation."""
    check_policy(policy)
    seed_list = parse_seeds(seeds)
    if not 1.0 <= tune <= 5.0:
        raise CliError(f"--tune must be between 1.0 and 5.0, not {tune}", exit_code=2)
    cluster = load_trace_nodes(nodes)
    workload = load_trace_pods(pods)
    try:
        result = fill(cluster, workload, policy, seed_list, tune, workers)
    except ValueError as exc:
        raise CliError(str(exc), exit_code=2) from None
    report = result.to_json()
    table = Table(title=f"fill: {policy}, {len(seed_list)} seed(s), tune {tune}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("GPU allocation at 100% arrived (%)", _number(report["alloc_ratio_at_100"]))
    end = round(100 * tune)
    if end not in (100, 130):  # the last bucket, when it is not one of the two reported anyway
        table.add_row(f"GPU allocation at {end}% arrived (%)", _number(result.alloc_at(end)))
    if tune >= 1.3:
        table.add_row("GPU allocation at 130% arrived (%)", _number(report["alloc_ratio_at_130"]))
        table.add_row("unallocated GPUs at 130%", _number(report["unallocated_gpus_at_130"]))
    table.add_row("fragmentation at 100% (% of capacity)", _number(report["frag_ratio_at_100"]))
    table.add_row("fragmentation of the empty cluster (%)", _number(report["frag_ratio_empty"]))
    for kind, count in report["failed_pods_by_type"].items():
        table.add_row(f"failed pods: {kind} (per seed)", _number(count))
    table.add_row("placements per second", str(report["placements_per_second"]))
    console.print(table)
    write_report(report, out)


@sim_app.command("policies")
def policies_command() -> None:
    """List the placement policies (the first column is what --policy takes)."""
    table = Table(title="placement policies")
    table.add_column("policy")
    table.add_column("what it does")
    for name, description in policy_descriptions().items():
        label = f"{name} (default)" if name == DEFAULT_POLICY else name
        table.add_row(label, description)
    console.print(table)


@sim_app.command("replay")
def replay_command(
    nodes: Path = typer.Option(..., "--nodes", help="cluster: openb node CSV or native YAML/JSON"),
    pods: Path = typer.Option(..., "--pods", help="workload with arrival and run times: openb CSV or native"),
    policy: str = typer.Option(
        DEFAULT_POLICY, "--policy", help="placement policy (see `astrago sim policies`)"
    ),
    queue: str = typer.Option("fairshare", "--queue", help="queue discipline: fifo, priority or fairshare"),
    backfill: bool = typer.Option(True, "--backfill/--no-backfill", help="let work pass a blocked head"),
    reservation: bool = typer.Option(True, "--reservation/--no-reservation", help="hold room for the head"),
    preemption: bool = typer.Option(True, "--preemption/--no-preemption", help="reclaim borrowed GPUs"),
    teams: int = typer.Option(8, "--teams", min=1, max=1000, help="teams (workspaces) pods are split into"),
    team_skew: float = typer.Option(0.0, "--team-skew", min=0.0, help="0: even teams; s > 0: Zipf(s) sizes"),
    cluster_scale: float = typer.Option(1.0, "--cluster-scale", help="keep this fraction of the nodes"),
    speedup: float = typer.Option(1.0, "--speedup", help="divide arrival times by this (>= 1)"),
    seed: int = typer.Option(42, "--seed", help="the placement policy's tie-break order"),
    out: Path | None = typer.Option(None, "--out", help="write the JSON report here"),
) -> None:
    """Replay arrivals and run times through the live scheduler (queues, team quotas, borrowing,
    preemption) and report queueing delay, JCT, makespan, GPU utilisation and fairness."""
    check_policy(policy)
    if queue not in {d.value for d in QueueDiscipline}:
        raise CliError(f"unknown queue {queue!r}", exit_code=2, hint="use fifo, priority or fairshare")
    if not 0 < cluster_scale <= 1:
        raise CliError(f"--cluster-scale must be in (0, 1], not {cluster_scale}", exit_code=2)
    if speedup < 1:
        raise CliError(f"--speedup must be at least 1, not {speedup}", exit_code=2)
    config = ReplayConfig(
        policy=policy,
        queue=queue,
        backfill=backfill,
        reservation=reservation,
        preemption=preemption,
        teams=teams,
        team_skew=team_skew,
        cluster_scale=cluster_scale,
        seed=seed,
        speedup=speedup,
    )
    report = replay(load_trace_nodes(nodes), load_trace_pods(pods), config).to_json()
    table = Table(title=f"replay: {policy}, queue {queue}, {teams} teams, {report['gpus']} GPUs")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, key in (("queueing delay (s)", "queueing_delay_s"), ("job completion time (s)", "jct_s")):
        summary = report[key]
        table.add_row(label, f"mean {summary['mean']}, p95 {summary['p95']}, p99 {summary['p99']}")
    table.add_row("makespan (s)", str(report["makespan_s"]))
    table.add_row(
        "GPU utilisation mean / peak (%)",
        f"{report['gpu_utilisation_mean']} / {report['gpu_utilisation_peak']}",
    )
    table.add_row("preemptions", str(report["preemptions"]))
    table.add_row("Jain's fairness across teams", str(report["jain_fairness"]))
    for kind, count in report["failed_pods_by_type"].items():
        table.add_row(f"never ran: {kind}", str(count))
    table.add_row("CPU time of the replay (s)", str(report["seconds"]))
    console.print(table)
    write_report(report, out)
