"""Volume commands: `astrago volume create|ls|describe|files|rename|rm`, `astrago upload`, `astrago download`.

Uploads speak TUS (`astrago.client.tus`), several files at once, with sha256 checksums on every chunk. Where
each file's upload lives on the server is kept in the CLI's config folder until the file is complete,
so after Ctrl-C, a lost connection or a server restart, running the same command again resumes every
file from the bytes the server already holds."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import httpx
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from astrago.cli.errors import CliError, err_console
from astrago.cli.http import ApiClient, CliConfig, cli_errors, config_path
from astrago.cli.render import age, console, print_json
from astrago.client.client import raise_for_problem
from astrago.client.tus import TusError, TusFile, TusRefused, TusRetryable
from astrago.domain.volumes import format_bytes

volume_app = typer.Typer(
    help="Volumes: datasets, models, code and scratch space of a workspace.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
WorkspaceOpt = Annotated[str | None, typer.Option("--workspace", "-w", help="the volume's workspace")]
CHUNK_BYTES = 32 * 1024 * 1024
SMALL_FILE_BYTES = 1024 * 1024
# A request that cannot connect in 10 s, or hears nothing for a minute, is retried
REQUEST_TIMEOUT = httpx.Timeout(60, connect=10)
RETRIES = 8  # per file, for dropped connections and a restarting server
T = TypeVar("T")


def _workspace(client: ApiClient, given: str | None) -> str:
    if given:
        return given
    configured = CliConfig.load().workspace
    if configured:
        return configured
    mine = [w["name"] for w in client.request("GET", "/api/v1/workspaces") if w["my_role"]]
    if len(mine) == 1:
        return str(mine[0])
    raise CliError(
        "say which workspace with --workspace"
        + (f" (yours: {', '.join(mine)})" if mine else " (you are not a member of any)"),
        exit_code=2,
    )


def _volume_path(workspace: str, volume: str) -> str:
    return f"/api/v1/workspaces/{quote(workspace, safe='')}/volumes/{quote(volume, safe='')}"


def _split_target(target: str, default_path: str = "/") -> tuple[str, str]:
    """`ds:/train` → (ds, /train); `ds` → (ds, default)."""
    volume, sep, path = target.partition(":")
    if not volume:
        raise CliError(f"say which volume: VOLUME[:PATH], not {target!r}", exit_code=2)
    return volume, (path if sep and path else default_path)


# -- volumes -------------------------------------------------------------------------------------------


def _limit_text(volume: dict[str, Any]) -> str:
    limit = volume["size_limit"]
    return "-" if limit is None else format_bytes(limit)


def _print_volume(volume: dict[str, Any]) -> None:
    console.print(f"[bold]{volume['name']}[/] ({volume['kind']}) in workspace {volume['workspace']}")
    if volume["description"]:
        console.print(f"  {volume['description']}")
    console.print(
        f"  used: {format_bytes(volume['used_bytes'])} in {volume['used_files']} files"
        f"  limit: {_limit_text(volume)}  reserved by uploads: {format_bytes(volume['reserved_bytes'])}"
    )
    console.print(f"  in workloads: ${volume['env_var']}  (id {volume['id']}, slug {volume['slug']})")
    for user in volume.get("mounted_by") or ():
        mode = "ro" if user["read_only"] else "rw"
        console.print(
            f"  mounted by {user['workload_name']} ({user['workload_id']}, {user['status']}) at "
            f"{user['mount_path']} ({mode})"
        )
    for upload in volume.get("uploads") or ():
        console.print(
            f"  unfinished upload /{upload['path']}: {format_bytes(upload['offset'])} of "
            f"{format_bytes(upload['length'])}, expires {upload['expires_at']}"
        )


@volume_app.command("create")
def volume_create(
    name: str,
    workspace: WorkspaceOpt = None,
    kind: Annotated[str, typer.Option(help="dataset, model, code or scratch")] = "dataset",
    size: Annotated[str | None, typer.Option(help="most it may hold, e.g. 10Gi or 500G")] = None,
    description: Annotated[str, typer.Option(help="what it holds")] = "",
    json_output: JsonOpt = False,
) -> None:
    """Create a volume (names may hold spaces and any language; `:` and `/` are not allowed)."""
    client = ApiClient.from_config()
    space = _workspace(client, workspace)
    body: dict[str, Any] = {"name": name, "kind": kind, "description": description}
    if size is not None:
        body["size"] = size
    volume = client.request("POST", f"/api/v1/workspaces/{quote(space, safe='')}/volumes", json=body)
    if json_output:
        print_json(volume)
        return
    console.print(
        f"Created volume {volume['name']} in {space} ({volume['kind']}, limit {_limit_text(volume)})"
    )


@volume_app.command("ls")
def volume_ls(workspace: WorkspaceOpt = None, json_output: JsonOpt = False) -> None:
    """A workspace's volumes with what they hold (measured on disk)."""
    client = ApiClient.from_config()
    space = _workspace(client, workspace)
    volumes = client.request("GET", f"/api/v1/workspaces/{quote(space, safe='')}/volumes")
    if json_output:
        print_json(volumes)
        return
    if not volumes:
        console.print(f"No volumes in {space} yet: astrago volume create NAME --size 10Gi")
        return
    table = Table("NAME", "KIND", "USED", "FILES", "LIMIT", "AGE", "DESCRIPTION", box=None, pad_edge=False)
    for v in volumes:
        table.add_row(
            v["name"],
            v["kind"],
            format_bytes(v["used_bytes"]),
            str(v["used_files"]),
            _limit_text(v),
            age(v["created_at"]),
            v["description"],
        )
    console.print(table)


@volume_app.command("describe")
def volume_describe(name: str, workspace: WorkspaceOpt = None, json_output: JsonOpt = False) -> None:
    """A volume, the unfinished workloads that mount it and its unfinished uploads."""
    client = ApiClient.from_config()
    volume = client.request("GET", _volume_path(_workspace(client, workspace), name))
    if json_output:
        print_json(volume)
    else:
        _print_volume(volume)


@volume_app.command("files")
def volume_files(
    target: Annotated[str, typer.Argument(help="VOLUME[:PATH], e.g. ds:/train")],
    workspace: WorkspaceOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """List a folder of a volume."""
    client = ApiClient.from_config()
    volume, path = _split_target(target)
    listing = client.request(
        "GET", _volume_path(_workspace(client, workspace), volume) + "/files", params={"path": path}
    )
    if json_output:
        print_json(listing)
        return
    table = Table("TYPE", "SIZE", "MODIFIED", "NAME", box=None, pad_edge=False)
    for entry in listing["entries"]:
        size = format_bytes(entry["size"]) if entry["type"] == "file" else "-"
        table.add_row(entry["type"], size, age(entry["modified"]), entry["name"])
    console.print(table)


@volume_app.command("rename")
def volume_rename(name: str, new_name: str, workspace: WorkspaceOpt = None) -> None:
    """Rename a volume (its files stay where they are)."""
    client = ApiClient.from_config()
    volume = client.request(
        "PATCH", _volume_path(_workspace(client, workspace), name), json={"name": new_name}
    )
    console.print(f"Renamed volume {name} to {volume['name']} (${volume['env_var']} in workloads)")


@volume_app.command("resize")
def volume_resize(
    name: str,
    size: Annotated[str, typer.Argument(help="e.g. 20Gi; -1: no limit of its own")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Change a volume's size limit."""
    client = ApiClient.from_config()
    volume = client.request("PATCH", _volume_path(_workspace(client, workspace), name), json={"size": size})
    console.print(f"Volume {volume['name']} may now hold {_limit_text(volume)}")


@volume_app.command("rm")
def volume_rm(
    name: str,
    workspace: WorkspaceOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Delete a volume and every file in it (refused while unfinished workloads mount it)."""
    client = ApiClient.from_config()
    space = _workspace(client, workspace)
    if not yes:
        if not os.isatty(0):
            raise CliError(f"deleting {name} removes all its files", exit_code=2, hint="add --yes to confirm")
        typer.confirm(f"Delete volume {name} of {space} and all its files?", abort=True)
    client.request("DELETE", _volume_path(space, name))
    console.print(f"Deleted volume {name}")


# -- upload --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileJob:
    local: Path
    dest: str  # inside the volume
    size: int

    def key(self, server: str, workspace: str, volume: str) -> str:
        info = self.local.stat()
        local = f"{self.local.resolve()}|{info.st_size}|{info.st_mtime_ns}"
        identity = f"{server}|{workspace}|{volume}|{self.dest}|{local}"
        return hashlib.sha256(identity.encode()).hexdigest()


class ResumeState:
    """Upload URLs of unfinished files, one JSON file in the CLI's config folder, shared by threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._read().get(key)

    def put(self, key: str, url: str | None) -> None:
        with self._lock:
            data = self._read()
            if url is None:
                data.pop(key, None)
            else:
                data[key] = url
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1))
            tmp.replace(self.path)


def _plan(local: Path, dest: str) -> list[FileJob]:
    """A file goes into the folder `dest`; a folder's contents go under `dest` (like `cp -r data/. dest`)."""
    base = PurePosixPath("/") / dest.strip("/")
    if local.is_file():
        return [FileJob(local, str(base / local.name).lstrip("/"), local.stat().st_size)]
    if not local.is_dir():
        raise CliError(f"{local} does not exist", exit_code=2)
    jobs = []
    for path in sorted(local.rglob("*")):
        if path.is_file() and not path.is_symlink():
            relative = path.relative_to(local).as_posix()
            jobs.append(FileJob(path, str(base / relative).lstrip("/"), path.stat().st_size))
    return jobs


class UploadRun:
    def __init__(
        self, client: ApiClient, workspace: str, volume: str, progress: Progress, total_task: Any
    ) -> None:
        self.create_url = client.url + _volume_path(workspace, volume) + "/uploads"
        self.auth = {k: v for k, v in client.http.headers.items() if k.lower() == "authorization"}
        self.server, self.workspace, self.volume = client.url, workspace, volume
        self.state = ResumeState(config_path().parent / "uploads.json")
        self.progress, self.total_task = progress, total_task
        self.stop = threading.Event()
        self.files_done = 0
        self.resumed_bytes = 0
        self._count_lock = threading.Lock()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []

    def _http(self) -> httpx.Client:
        """One keep-alive connection per worker thread."""
        http: httpx.Client | None = getattr(self._local, "http", None)
        if http is None:
            http = httpx.Client(headers=self.auth, timeout=REQUEST_TIMEOUT)
            self._local.http = http
            with self._count_lock:
                self._clients.append(http)
        return http

    def close(self) -> None:
        for http in self._clients:
            http.close()

    def upload(self, job: FileJob) -> None:
        key = job.key(self.server, self.workspace, self.volume)
        tus = TusFile(self._http(), job.local, job.size, CHUNK_BYTES)
        metadata = {"path": job.dest, "filename": job.local.name, "filetype": "application/octet-stream"}
        url = self.state.get(key)
        if url is None and job.size <= SMALL_FILE_BYTES:
            sent = self._retrying(
                job, lambda: tus.create_whole(self.create_url, metadata), "the server refused the upload: "
            )
            if sent:
                self._finished(job.size)
                return
        offset = None if url is None else self._offset_to_resume(job, tus, url)
        if url is None or offset is None:
            url = self._retrying(
                job, lambda: tus.create(self.create_url, metadata), "the server refused the upload: "
            )
            self.state.put(key, url)
            offset = 0
        if self._send(job, tus, url, offset):
            self.state.put(key, None)
            self._finished(0)

    def _send(self, job: FileJob, tus: TusFile, url: str, offset: int) -> bool:
        """Send the file from `offset`, asking for the offset again after a retryable failure; whether
        all of it arrived (False: stopped by Ctrl-C)."""
        self.progress.advance(self.total_task, offset)
        done = offset

        def acknowledged(now: int) -> None:
            nonlocal done
            self.progress.advance(self.total_task, now - done)
            done = now

        attempts = 0
        while done < job.size and not self.stop.is_set():
            before = done
            try:
                tus.send_from(url, done, acknowledged, self.stop.is_set)
            except TusRetryable as exc:
                if done > before:
                    attempts = 0  # chunks arrived since the last failure: a new problem, a fresh count
                attempts = self._back_off(job, exc, attempts)
                acknowledged(self._retrying(job, lambda: tus.offset(url)))
            except TusRefused as exc:
                raise CliError(f"{job.local}: {exc.detail}") from exc
            except OSError as exc:
                raise CliError(f"{job.local}: cannot read it: {exc.strerror or exc}") from exc
        return done == job.size

    def _offset_to_resume(self, job: FileJob, tus: TusFile, url: str) -> int | None:
        """The offset of an upload an earlier run started; None when the server no longer has it
        (expired, cancelled or lost): then it starts over. A dropped connection is retried."""
        attempts = 0
        while True:
            try:
                offset = tus.offset(url)
            except TusRefused:
                return None
            except TusRetryable as exc:
                attempts = self._back_off(job, exc, attempts)
                continue
            with self._count_lock:
                self.resumed_bytes += offset
            return offset

    def _finished(self, advance: int) -> None:
        self.progress.advance(self.total_task, advance)
        with self._count_lock:
            self.files_done += 1

    def _retrying(self, job: FileJob, call: Callable[[], T], refused: str = "") -> T:
        attempts = 0
        while True:
            try:
                return call()
            except TusRetryable as exc:
                attempts = self._back_off(job, exc, attempts)
            except TusRefused as exc:
                said = refused if exc.status is not None else ""  # the server answered, and said no
                raise CliError(f"{job.local}: {said}{exc.detail}") from exc
            except OSError as exc:
                raise CliError(f"{job.local}: cannot read it: {exc.strerror or exc}") from exc

    def _back_off(self, job: FileJob, exc: TusError, attempts: int) -> int:
        if attempts >= RETRIES or self.stop.is_set():
            raise CliError(
                f"{job.local}: {exc.detail} (gave up after {attempts} retries)",
                hint="run the same command again to resume",
            ) from exc
        if self.stop.wait(min(2**attempts * 0.5, 10)):  # Ctrl-C ends the wait at once
            raise CliError(f"{job.local}: interrupted", hint="run the same command again to resume")
        return attempts + 1


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[files]}"),
        console=err_console,
        transient=False,
    )


def upload(
    local: Annotated[Path, typer.Argument(help="a file or a folder")],
    target: Annotated[str, typer.Argument(help="VOLUME[:FOLDER], e.g. ds:/train")],
    workspace: WorkspaceOpt = None,
    parallel: Annotated[int, typer.Option(min=1, max=32, help="files sent at once")] = 4,
) -> None:
    """Upload a file or a folder into a volume; Ctrl-C, then the same command again, resumes."""
    client = ApiClient.from_config()
    space = _workspace(client, workspace)
    volume, dest = _split_target(target)
    jobs = _plan(local, dest)
    if not jobs:
        raise CliError(f"{local} holds no files to upload", exit_code=2)
    total = sum(job.size for job in jobs)
    with _progress() as progress:
        task = progress.add_task("upload", total=total, files=f"0/{len(jobs)} files")
        run = UploadRun(client, space, volume, progress, task)
        pool = ThreadPoolExecutor(max_workers=min(parallel, len(jobs)))
        try:
            futures = [pool.submit(run.upload, job) for job in jobs]
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                progress.update(task, files=f"{run.files_done}/{len(jobs)} files")
                for future in finished:
                    if future.exception() is not None:
                        run.stop.set()
                        raise future.exception()  # type: ignore[misc]
        except KeyboardInterrupt:
            run.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            err_console.print("Interrupted: run the same command again to resume.")
            raise typer.Exit(130) from None
        finally:
            run.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            run.close()
    resumed = f" ({format_bytes(run.resumed_bytes)} were already there)" if run.resumed_bytes else ""
    where = f"{volume}:{PurePosixPath('/') / dest.strip('/')}"
    console.print(f"Uploaded {len(jobs)} files, {format_bytes(total)}, to {where}{resumed}")


# -- download ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _download_stream(
    client: ApiClient, path: str, params: dict[str, str], headers: dict[str, str]
) -> Iterator[httpx.Response]:
    try:
        with client.http.stream("GET", path, params=params, headers=headers, timeout=None) as response:
            if response.status_code >= 400 and response.status_code != 416:
                response.read()
                with cli_errors():
                    raise_for_problem(response)
            yield response
    except httpx.HTTPError as exc:
        raise CliError(
            f"the download from {client.url} failed: {exc}", hint="run it again to resume"
        ) from exc


def download(
    source: Annotated[str, typer.Argument(help="VOLUME:PATH, a file or a folder")],
    local: Annotated[Path, typer.Argument(help="where to put it")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Download a file (resumes a partial download) or a folder (as its files) from a volume."""
    client = ApiClient.from_config()
    volume, path = _split_target(source)
    url = _volume_path(_workspace(client, workspace), volume) + "/download"
    name = PurePosixPath(path).name or volume
    target = local / name if local.is_dir() else local
    partial = target.with_name(target.name + ".part")
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with _download_stream(client, url, {"path": path}, headers) as response, _progress() as progress:
        if response.headers.get("content-type", "").startswith("application/x-tar"):
            destination = local
            destination.mkdir(parents=True, exist_ok=True)
            task = progress.add_task("download", total=None, files="")
            _extract(response, destination, progress, task)
            console.print(f"Downloaded {volume}:{path} into {destination}")
            return
        if response.status_code == 416:  # the partial file is already whole
            partial.replace(target)
            console.print(f"Downloaded {volume}:{path} to {target}")
            return
        if response.status_code != 206:
            have = 0
        size = int(response.headers.get("content-length", 0)) + have
        task = progress.add_task("download", total=size, completed=have, files="")
        with partial.open("ab" if have else "wb") as out:
            for piece in response.iter_bytes(1024 * 1024):
                out.write(piece)
                progress.advance(task, len(piece))
        partial.replace(target)
    console.print(f"Downloaded {volume}:{path} to {target} ({format_bytes(size)})")


class _ResponseReader(io.RawIOBase):
    """The response body as a file, for `tarfile`'s stream mode (counts progress as it reads)."""

    def __init__(self, response: httpx.Response, progress: Progress, task: Any) -> None:
        self._pieces = response.iter_bytes(1024 * 1024)
        self._left = memoryview(b"")
        self._progress, self._task = progress, task

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._left:
            piece = next(self._pieces, b"")
            if not piece:
                return 0
            self._progress.advance(self._task, len(piece))
            self._left = memoryview(piece)
        count = min(len(buffer), len(self._left))
        buffer[:count] = self._left[:count]
        self._left = self._left[count:]
        return count


def _extract(response: httpx.Response, destination: Path, progress: Progress, task: Any) -> None:
    reader = io.BufferedReader(_ResponseReader(response, progress, task), 1024 * 1024)
    with tarfile.open(fileobj=reader, mode="r|") as archive:
        archive.extractall(destination, filter="data")  # refuses links and paths leaving `destination`


def register(app: typer.Typer) -> None:
    app.add_typer(volume_app, name="volume")
    app.command()(upload)
    app.command()(download)
