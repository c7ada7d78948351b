"""`astrago gpu-exporter` and `astrago gpu ls`."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import typer
from rich.console import Console

from astrago.cli.errors import CliError
from astrago.gpu.collector import Collector
from astrago.gpu.exporter import GpuExporter, parse_listen
from astrago.gpu.format import snapshot_json, snapshot_tables
from astrago.gpu.kube import PodDirectory, watch_node_pods
from astrago.gpu.procfs import ProcessTable
from astrago.gpu.sources import SOURCE_HELP, GpuSource, SourceUnavailable, open_source

gpu_app = typer.Typer(help="GPUs of this machine and the processes on them.", no_args_is_help=True)


def _open(source: str, state: str | None) -> GpuSource:
    try:
        return open_source(source, state=state)
    except SourceUnavailable as exc:
        raise CliError(
            f"no GPU source: {exc}", hint="use --source replay:PATH to replay a recording"
        ) from exc
    except ValueError as exc:
        raise CliError(str(exc), exit_code=2) from exc


PROC_ROOT_HELP = "The host's /proc (default /proc; not used for a replay unless given)."


def _process_table(path: Path | None, source: str) -> ProcessTable | None:
    """A replayed recording's PIDs belong to the machine it was recorded on: matching them against this
    host's /proc would attach strangers' commands and pods, so a replay looks up nothing unless asked."""
    if path is None:
        return None if source.startswith("replay:") else ProcessTable("/proc")
    if not path.is_dir():
        raise CliError(f"--proc-root {path} is not a directory", exit_code=2)
    return ProcessTable(path)


@gpu_app.command("ls")
def ls(
    source: str = typer.Option("auto", "--source", help=SOURCE_HELP),
    state: str | None = typer.Option(
        None, "--state", help="Replay: which recorded state (default: the last)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    proc_root: Path | None = typer.Option(None, "--proc-root", help=PROC_ROOT_HELP),
) -> None:
    """GPUs and MIG devices with every process on them, its pod and its memory: nvidia-smi, for a cluster."""
    opened = _open(source, state)
    try:
        snapshot = Collector(opened, _process_table(proc_root, source)).collect()
    finally:
        opened.close()
    if not snapshot.ok:
        raise CliError(
            f"reading the GPUs failed: {snapshot.errors[0].message if snapshot.errors else 'unknown'}"
        )
    if as_json:
        sys.stdout.write(json.dumps(snapshot_json(snapshot), indent=2) + "\n")
        return
    console = Console()
    console.print(snapshot_tables(snapshot))
    for error in snapshot.errors:
        console.print(f"[yellow]warning:[/] {error.stage}: {error.message}")


def gpu_exporter(
    source: str = typer.Option("auto", "--source", help=SOURCE_HELP),
    state: str | None = typer.Option(
        None, "--state", help="Replay: which recorded state (default: the last)."
    ),
    proc_root: Path | None = typer.Option(None, "--proc-root", help=PROC_ROOT_HELP),
    listen: str = typer.Option("127.0.0.1:9835", "--listen", help="HOST:PORT for /metrics."),
    textfile_dir: Path | None = typer.Option(
        None,
        "--textfile-dir",
        help="Also write astrago_gpu.prom here for node-exporter's textfile collector.",
    ),
    once: bool = typer.Option(False, "--once", help="Collect once, write the textfile (or print), exit."),
    interval: float = typer.Option(5.0, "--interval", help="Seconds between collections."),
    kubeconfig: str | None = typer.Option(
        None, "--kubeconfig", help="Kubeconfig for pod names (with --node)."
    ),
    node: str | None = typer.Option(
        None, "--node", help="This node's name; enables pod names (in-cluster config without --kubeconfig)."
    ),
) -> None:
    """Export per-process, per-pod GPU metrics (and device metrics) to Prometheus."""
    if interval <= 0:
        raise CliError("--interval must be a positive number of seconds", exit_code=2)
    if textfile_dir is not None and not textfile_dir.is_dir():
        raise CliError(f"--textfile-dir {textfile_dir} is not a directory", exit_code=2)
    node = node or (os.environ.get("NODE_NAME") if kubeconfig else None)
    if kubeconfig and not node:
        raise CliError("--kubeconfig needs --node NAME (or NODE_NAME) to watch this node's pods", exit_code=2)
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise CliError(str(exc), exit_code=2) from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    processes = _process_table(proc_root, source)
    opened = _open(source, state)
    pods: PodDirectory | None = None
    if node:
        watcher = watch_node_pods(kubeconfig, node)
        if once:
            watcher.synced.wait(10.0)  # a one-shot run wants the names of pods that exist now
        pods = watcher
    exporter = GpuExporter(Collector(opened, processes, pods), textfile_dir)
    try:
        if once:
            snapshot = exporter.collect_once()
            if textfile_dir is None:
                sys.stdout.write(exporter.exposition.decode())
            if not snapshot.ok:
                raise CliError(
                    f"collection failed: {snapshot.errors[0].message if snapshot.errors else 'unknown'}"
                )
            return
        _serve_until_signalled(exporter, host, port, interval)
    finally:
        opened.close()


def _serve_until_signalled(exporter: GpuExporter, host: str, port: int, interval: float) -> None:
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server = exporter.serve(host, port)
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    logging.getLogger(__name__).info(
        "serving http://%s:%d/metrics, collecting every %gs from %s",
        host,
        port,
        interval,
        exporter.collector.source.name,
    )
    try:
        exporter.run(interval, stop)
    finally:
        server.shutdown()


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("gpu-exporter")(gpu_exporter)
    app.add_typer(gpu_app, name="gpu")
