"""Everything `astrago server` checks before it changes anything.

A start either fails before its first side effect (no database created, no admin account, no banner) with
one line saying what to fix, or it succeeds: every setting is read and checked, and the port is bound,
before the runtime creates the first account and prints its password."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

from astrago.backends.local.simulated import SimulatedGpuSpecError, parse_simulated_gpus
from astrago.cli.errors import CliError
from astrago.config import Settings

ROLES = ("all", "api", "controllers")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def check_settings(settings: Settings, role: str) -> None:
    """Raise CliError (exit 2) for the first setting that cannot work, before anything is created."""
    if role not in ROLES:
        raise CliError(f"--role must be one of {', '.join(ROLES)}, not {role!r}", exit_code=2)
    if settings.log_level.lower() not in LOG_LEVELS:
        raise CliError(
            f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {settings.log_level!r}", exit_code=2
        )
    if not 1 <= settings.port <= 65535:
        raise CliError(f"--port must be between 1 and 65535, not {settings.port}", exit_code=2)
    if settings.simulate_gpus is not None:
        if settings.backend != "local":
            raise CliError("--simulate-gpus works with the local backend only", exit_code=2)
        try:
            parse_simulated_gpus(settings.simulate_gpus, "check")
        except SimulatedGpuSpecError as exc:
            raise CliError(str(exc), exit_code=2) from exc
    _check_database_url(settings)
    kubeconfig = settings.kubeconfig
    if settings.backend == "kubernetes" and kubeconfig and not Path(kubeconfig).expanduser().is_file():
        raise CliError(f"--kubeconfig {settings.kubeconfig} does not exist", exit_code=2)
    _check_data_dir(settings.data_dir)


def _check_database_url(settings: Settings) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    if settings.database_url is None:
        return
    try:
        url = make_url(settings.database_url)
    except ArgumentError as exc:
        raise CliError(
            "--database-url is not a database URL; use e.g. postgresql+asyncpg://user:pass@host/db",
            exit_code=2,
        ) from exc
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError as exc:
        raise CliError(
            f"--database-url: no database driver {url.drivername!r} is installed", exit_code=2
        ) from exc
    if not getattr(dialect, "is_async", False):
        raise CliError(
            f"--database-url uses the blocking driver {url.drivername!r}; use an asyncio one, e.g. "
            "postgresql+asyncpg:// or sqlite+aiosqlite://",
            exit_code=2,
        )


def _check_data_dir(path: Path) -> None:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == path and not path.is_dir():
        raise CliError(f"the data directory {path} is a file, not a directory", exit_code=2)
    if not existing.is_dir():
        raise CliError(f"cannot create the data directory {path}: {existing} is not a directory", exit_code=2)


def bind_listener(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so that a port in use fails the start before anything is created;
    uvicorn serves on it later."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host}: {exc.strerror}", exit_code=2) from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CliError(
                f"port {port} on {host} is already in use (another astrago server?); stop it or choose "
                "another with --port"
            ) from exc
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock
