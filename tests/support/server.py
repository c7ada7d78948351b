"""Drives a real `astrago server` subprocess and the real CLI, as a user would."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.support.postgres import free_port

ASTRAGO = [sys.executable, "-m", "astrago.cli.main"]
# A server starts in a few seconds; with four test workers starting servers, browsers and databases on two
# cores, it has been seen to need more than 30.
START_TIMEOUT_S = 60
ADMIN_PASSWORD = "admin-password-1"


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class ServerProcess:
    data_dir: Path
    database_url: str | None = None
    simulate_gpus: str = "4xA100-80GB"
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)  # more `astrago server` options, e.g. --role api
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    umask: int | None = None  # the server's umask, when a test needs a particular one
    extra_args: list[str] = field(default_factory=list)
    tls_ca: Path | None = None  # serve HTTPS (with ASTRAGO_TLS_* in extra_env); this CA verifies it

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=str(self.tls_ca)) if self.tls_ca else True

    @property
    def shared_dir(self) -> Path:
        """A directory every job of this server sees at the same path and may write into."""
        return self.data_dir.parent / "shared"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "ASTRAGO_DATA_DIR": str(self.data_dir),
            "ASTRAGO_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "ASTRAGO_SCHEDULING_INTERVAL_S": "0.3",
            "ASTRAGO_STOP_GRACE_S": "2",
            # sandboxed jobs see a private /tmp: gates and other files a test exchanges with jobs live here
            "ASTRAGO_SANDBOX_SHARED_PATHS": json.dumps([str(self.shared_dir)]),
        }
        if self.database_url:
            env["ASTRAGO_DATABASE_URL"] = self.database_url
        return {**env, **self.extra_env}

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.shared_dir.mkdir(exist_ok=True)
        self.shared_dir.chmod(0o777)  # jobs run as their workspace's uid when the server is root
        self.log_path = self.data_dir / f"server-{int(time.time() * 1000)}.log"
        log = self.log_path.open("wb")
        args = [*ASTRAGO, "server", "--port", str(self.port), *self.extra_args]
        if self.simulate_gpus:  # "" for a backend with real (or emulated) nodes
            args += ["--simulate-gpus", self.simulate_gpus]
        umask = self.umask

        def set_umask() -> None:
            if umask is not None:
                os.umask(umask)

        self.process = subprocess.Popen(
            [*args, *self.extra_args],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=set_umask,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2, verify=self.verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()  # never leave a half-started server behind
        raise RuntimeError(f"server not ready in {START_TIMEOUT_S} s:\n{self.log_path.read_text()}")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.kill_workloads()

    def kill_workloads(self) -> None:
        """Workloads outlive the server by design (to be re-adopted); a finished test must not leave any."""
        marker = str(self.data_dir)
        for runner in psutil.process_iter(["cmdline"]):
            try:
                if not any(marker in arg for arg in runner.info["cmdline"] or ()):
                    continue
                for process in [*runner.children(recursive=True), runner]:
                    process.kill()
            except psutil.Error:
                continue

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path else ""


@dataclass
class User:
    """One person at a terminal: their own CLI config and token."""

    server: ServerProcess
    name: str
    config_dir: Path
    token: str | None = None

    @property
    def workdir(self) -> Path:
        """The directory they type commands in (what `astrago run` uploads as the workload's code)."""
        return self.config_dir / "work"

    def cli(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> CliResult:
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(self.config_dir),
            "ASTRAGO_URL": self.server.url,
            "COLUMNS": "200",
            **(env or {}),
        }
        env.pop("ASTRAGO_TOKEN", None)
        if self.token:  # users set up over HTTP have no CLI config file; scripts pass their token like this
            env["ASTRAGO_TOKEN"] = self.token
        self.workdir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [*ASTRAGO, *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.workdir,
        )
        result = CliResult(done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(f"astrago {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return result

    def login(self, password: str) -> None:
        self.cli(
            "login", "--url", self.server.url, "--username", self.name, "--password-stdin", stdin=password
        )
        config = json.loads((self.config_dir / "astrago" / "cli.json").read_text())
        self.token = config["token"]

    @property
    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.http as client:
            return client.request(method, path, **kwargs)

    def workload(self, workload_id: str) -> dict[str, Any]:
        response = self.api("GET", f"/api/v1/workloads/{workload_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def submit(self, workspace: str, command: list[str], **fields: Any) -> str:
        body = {"workspace": workspace, "command": command, **fields}
        response = self.api("POST", "/api/v1/workloads", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def wait_status(self, workload_id: str, *statuses: str, timeout: float = 20.0) -> dict[str, Any]:
        return wait_for(
            lambda: (w := self.workload(workload_id))["status"] in statuses and w,
            timeout=timeout,
            what=f"{workload_id} to become {'/'.join(statuses)}",
        )


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Gate:
    """Jobs that run until the test opens their gate, and record every start (to prove none starts twice)."""

    def __init__(self, root: Path) -> None:
        """`root` must lie in the server's `shared_dir`, which its sandboxed jobs see."""
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o777)

    def command(self) -> list[str]:
        own = f'{self.root}/"$ASTRAGO_WORKLOAD_ID"'
        script = (
            f'echo "$ASTRAGO_WORKLOAD_ID $CUDA_VISIBLE_DEVICES" >> {own}.starts; '
            f"while [ ! -e {own}.open ]; do sleep 0.1; done"
        )
        return ["/bin/sh", "-c", script]

    def open(self, workload_id: str) -> None:
        (self.root / f"{workload_id}.open").touch()

    def open_all(self) -> None:
        for started in self.root.glob("*.starts"):
            started.with_suffix(".open").touch()

    def starts(self, workload_id: str) -> list[str]:
        path = self.root / f"{workload_id}.starts"
        return path.read_text().splitlines() if path.exists() else []
