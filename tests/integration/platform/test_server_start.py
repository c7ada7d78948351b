"""`astrago server` fails before its first side effect, in one line; a lost password can be reset."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests.support.postgres import free_port
from tests.support.server import ADMIN_PASSWORD, ASTRAGO, ServerProcess, User


def _astrago(*args: str, data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASTRAGO_DATA_DIR": str(data_dir)}
    env.pop("ASTRAGO_ADMIN_PASSWORD", None)
    return subprocess.run([*ASTRAGO, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)


def _assert_one_line_and_nothing_created(done: subprocess.CompletedProcess[str], data_dir: Path) -> None:
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stdout == ""  # no banner, no password
    assert not (data_dir / "astrago.db").exists()


def test_a_typo_in_simulate_gpus_names_the_forms_and_models_and_creates_nothing(tmp_path: Path) -> None:
    done = _astrago(
        "server", "--port", str(free_port()), "--simulate-gpus", "4xA100", data_dir=tmp_path / "data"
    )

    assert done.returncode == 2
    assert "4xA100-80GB" in done.stderr
    assert "H100-80GB" in done.stderr
    _assert_one_line_and_nothing_created(done, tmp_path / "data")


def test_a_port_in_use_fails_before_the_first_account(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = _astrago(
            "server", "--port", port, "--simulate-gpus", "1xA100-80GB", data_dir=tmp_path / "data"
        )

    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    _assert_one_line_and_nothing_created(done, tmp_path / "data")


def test_bad_settings_are_one_line_each(tmp_path: Path) -> None:
    for args, message in [
        (["--log-level", "loud"], "--log-level must be one of debug, info"),
        (["--role", "web"], "--role must be one of all, api, controllers"),
        (["--database-url", "postgres-ish"], "is not a database URL"),
        (["--database-url", "postgresql+psycopg2://u@h/db"], "blocking driver"),
        (["--port", "70000"], "--port must be between 1 and 65535"),
    ]:
        done = _astrago("server", *args, data_dir=tmp_path / "data")
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
        _assert_one_line_and_nothing_created(done, tmp_path / "data")


def test_reset_password_on_the_servers_machine(server: ServerProcess, tmp_path: Path) -> None:
    reset = _astrago(
        "admin", "reset-password", "--password-stdin", data_dir=server.data_dir, stdin="a-new-password\n"
    )
    assert reset.returncode == 0, reset.stderr

    admin = User(server, "admin", tmp_path / "home")
    admin.login("a-new-password")
    assert admin.cli("whoami").stdout.startswith("admin (admin)")
    old = admin.cli(
        "login",
        "--url",
        server.url,
        "--username",
        "admin",
        "--password-stdin",
        stdin=ADMIN_PASSWORD,
        check=False,
    )
    assert old.returncode == 1
    assert "wrong username or password" in old.stderr

    generated = _astrago("admin", "reset-password", data_dir=server.data_dir)
    password = generated.stdout.split(": ", 1)[1].split()[0]
    admin.login(password)
    audit = admin.cli("audit", "--json").json()
    assert [r["action"] for r in audit].count("user.password_reset") == 2


def test_reset_password_says_what_is_wrong(tmp_path: Path, server: ServerProcess) -> None:
    missing = _astrago("admin", "reset-password", data_dir=tmp_path / "elsewhere")
    assert missing.returncode == 2
    assert "no AstraGo database at" in missing.stderr
    assert not (tmp_path / "elsewhere").exists()

    nobody = _astrago("admin", "reset-password", "bob", data_dir=server.data_dir)
    assert nobody.returncode == 2
    assert "there is no user 'bob'; the users are: admin" in nobody.stderr
    short = _astrago("admin", "reset-password", "--password-stdin", data_dir=server.data_dir, stdin="short\n")
    assert short.returncode == 2
    assert "at least 8 characters" in short.stderr
