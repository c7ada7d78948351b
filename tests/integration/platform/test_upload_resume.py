"""A 200 MB upload through the real server and the real CLI survives the three ways an upload breaks:
the client killed, the server killed with kill -9 (and started again), and the connection dropped
(a proxy resets it). It ends with exactly the bytes that were sent."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from pathlib import Path

from tests.support.server import ADMIN_PASSWORD, ASTRAGO, ServerProcess, User, wait_for
from tests.support.tcp_proxy import DroppingProxy

SIZE = 200 * 1024 * 1024
MiB = 1024 * 1024


def _random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // (8 * MiB)):
            piece = os.urandom(8 * MiB)
            digest.update(piece)
            out.write(piece)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while piece := source.read(8 * MiB):
            digest.update(piece)
    return digest.hexdigest()


def test_a_200_mb_upload_survives_a_killed_client_a_killed_server_and_a_dropped_connection(
    tmp_path: Path,
) -> None:
    server = ServerProcess(data_dir=tmp_path / "data")
    server.start()
    proxy = DroppingProxy(server.port)
    proxy.start()
    cli: subprocess.Popen[bytes] | None = None
    try:
        admin = User(server, "admin", tmp_path / "home")
        admin.login(ADMIN_PASSWORD)
        admin.cli("workspace", "create", "vision")
        admin.cli("volume", "create", "ds", "-w", "vision", "--size", "1Gi")
        source = tmp_path / "big.bin"
        expected = _random_file(source, SIZE)
        parts = server.data_dir / "volumes" / ".uploads"
        env = {**os.environ, "XDG_CONFIG_HOME": str(admin.config_dir), "ASTRAGO_URL": proxy.url}
        log = (tmp_path / "cli.log").open("ab")

        def start_cli() -> subprocess.Popen[bytes]:
            command = [*ASTRAGO, "upload", str(source), "ds:/sets", "-w", "vision", "--parallel", "1"]
            return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

        def received() -> int:
            return max((part.stat().st_size for part in parts.iterdir()), default=0)

        def until_received(size: int) -> None:
            try:
                wait_for(lambda: received() >= size, timeout=120, what=f"{size // MiB} MiB to arrive")
            except AssertionError as exc:
                cli_log = (tmp_path / "cli.log").read_text()[-3000:]
                raise AssertionError(f"{exc}\nCLI:\n{cli_log}\nserver:\n{server.logs()[-3000:]}") from exc

        cli = start_cli()
        until_received(40 * MiB)
        cli.send_signal(signal.SIGKILL)  # 1. the client dies mid-chunk
        cli.wait(10)
        kept = received()

        cli = start_cli()  # the same command again resumes
        until_received(90 * MiB)
        server.kill9()  # 2. the server dies; the CLI keeps retrying until it is back
        assert received() >= kept
        server.start()

        until_received(140 * MiB)
        proxy.drop_all()  # 3. the network resets every connection

        assert cli.wait(timeout=180) == 0, (tmp_path / "cli.log").read_text()
        (landed,) = (server.data_dir / "volumes").glob("*/*/sets/big.bin")
        assert landed.stat().st_size == SIZE
        assert _sha256(landed) == expected
        assert list(parts.iterdir()) == []
        volume = admin.cli("volume", "describe", "ds", "-w", "vision", "--json").json()
        assert (volume["used_bytes"], volume["used_files"], volume["uploads"]) == (SIZE, 1, [])
        assert "were already there" in (tmp_path / "cli.log").read_text()  # it resumed, not restarted
    finally:
        if cli is not None and cli.poll() is None:
            cli.kill()
        proxy.stop()
        server.stop()
