"""`astrago server`: the API, the controllers and the backend in one process."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from pathlib import Path
from typing import Annotated, Literal

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from astrago import __version__
from astrago.backends.base import BackendError
from astrago.cli.errors import CliError
from astrago.cli.startup import bind_listener, check_settings
from astrago.config import ConfigFileError, Settings, scrub_secrets
from astrago.domain.isolation import IsolationStatus
from astrago.monitor.sources import GpuSourceError

console = Console(highlight=False, soft_wrap=True)


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ConfigFileError as exc:
        raise CliError(str(exc), exit_code=2) from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CliError(f"invalid configuration: {problems}", exit_code=2) from exc


def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on [default: 8080]")] = None,
    simulate_gpus: Annotated[
        str | None,
        typer.Option(help="declare simulated GPUs on a machine without them, e.g. 4xA100-80GB"),
    ] = None,
    backend: Annotated[str | None, typer.Option(help="local (processes here) or kubernetes")] = None,
    kubeconfig: Annotated[str | None, typer.Option(help="kubeconfig for the kubernetes backend")] = None,
    namespace: Annotated[str | None, typer.Option(help="namespace for the kubernetes backend")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="where state lives [default: ~/.astrago]")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL [default: SQLite in the data dir]")
    ] = None,
    role: Annotated[
        str, typer.Option(help="all, api (HTTP only) or controllers (scheduling and reconciling only)")
    ] = "all",
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="serve HTTPS with this certificate (PEM)")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="the private key of --tls-cert (PEM)")] = None,
) -> None:
    """Start the AstraGo server (API at /docs, health at /healthz, metrics at /metrics)."""
    settings = load_settings(
        host=host,
        port=port,
        simulate_gpus=simulate_gpus,
        backend=backend,
        kubeconfig=kubeconfig,
        namespace=namespace,
        data_dir=data_dir,
        database_url=database_url,
        log_level=log_level,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    scrub_secrets()  # read once; a process that can see this one's environment learns nothing
    check_settings(settings, role)
    tls = tls_context(settings)
    listener = bind_listener(settings.host, settings.port)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    # Libraries that log every migration step or HTTP request report only problems.
    for noisy in ("alembic", "httpx", "httpx2", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        asyncio.run(_serve(settings, role, listener, tls))  # type: ignore[arg-type]
    except BackendError as exc:
        raise CliError(f"the {settings.backend} backend cannot start: {exc}") from exc
    except GpuSourceError as exc:
        raise CliError(f"cannot sample GPUs: {exc}", exit_code=2) from exc
    except OSError as exc:
        raise CliError(f"cannot start the server: {exc}") from exc
    except SQLAlchemyError as exc:
        raise CliError(
            f"cannot use the database {_redacted(settings.effective_database_url)}: {first_line(exc)}"
        ) from exc
    finally:
        listener.close()


def first_line(exc: BaseException) -> str:
    return (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]


STREAMS_CLOSE_AFTER_S = 3
# How long an idle kept-alive connection stays open. Longer than client pools keep theirs (httpx: 5 s,
# uvicorn's own default), so that the client, not the server, closes it: when both wait 5 s, a request
# sent on a connection just as the server closes it fails ("server disconnected without sending a
# response"), which the Kubernetes fault runs saw on loaded machines. nginx's default, too.
KEEP_ALIVE_S = 75


async def _serve(
    settings: Settings,
    role: Literal["all", "api", "controllers"],
    listener: socket.socket,
    tls: ssl.SSLContext | None,
) -> None:
    from astrago.api.app import Runtime, create_app

    runtime = await Runtime.start(
        settings, role, announce=lambda line: console.print(f"[bold yellow]{line}[/]")
    )
    try:
        url = f"{'https' if tls else 'http'}://{settings.host}:{settings.port}"
        nodes = await runtime.backend.inventory()
        gpus = [d for n in nodes for d in n.devices]
        simulated = " simulated" if any(d.simulated for d in gpus) else ""
        console.print(f"AstraGo {__version__} on {url}  (docs: {url}/docs)")
        console.print(
            f"  database: {_redacted(settings.effective_database_url)}; backend: {settings.backend}; "
            f"GPUs: {len(gpus)}{simulated}"
        )
        console.print(f"  log in:   astrago login --url {url} --username admin")
        _print_isolation(runtime.services.ctx.isolation)
        config = uvicorn.Config(
            create_app(runtime),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=settings.log_level == "debug",
            lifespan="on",
            ssl_certfile=settings.tls_cert if tls else None,
            ssl_keyfile=settings.tls_key if tls else None,
            # Live event and log streams stay open until the client leaves: close them after this long,
            # so a stop or restart never hangs on an open console (it reconnects and resumes by itself).
            timeout_graceful_shutdown=STREAMS_CLOSE_AFTER_S,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
        config.load()
        config.ssl = tls  # uvicorn cannot set a minimum TLS version itself
        await uvicorn.Server(config).serve(sockets=[listener])
    finally:
        await runtime.stop()


def _print_isolation(isolation: IsolationStatus | None) -> None:
    if isolation is None:
        return
    if isolation.single_user:
        console.print(
            f"[bold red]  single-user mode: {isolation.detail}. Workloads would run unsandboxed, so only "
            f"admins may run them.[/]\n  To let every account run workloads, {isolation.how_to_enable}."
        )
    else:
        console.print(f"  sandbox:  {isolation.detail}; workloads run as {isolation.runs_as}")


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context: TLS 1.3 at least, unless `tls_min_version` explicitly allows 1.2."""
    if settings.tls_cert is None and settings.tls_key is None:
        return None
    if settings.tls_cert is None or settings.tls_key is None:
        raise CliError("give both --tls-cert and --tls-key (ASTRAGO_TLS_CERT, ASTRAGO_TLS_KEY)", exit_code=2)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_2 if settings.tls_min_version == "1.2" else ssl.TLSVersion.TLSv1_3
    )
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise CliError(
            f"cannot use the TLS certificate {settings.tls_cert} with the key {settings.tls_key}: {exc}",
            exit_code=2,
        ) from exc
    return context


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def register(app: typer.Typer) -> None:
    app.command("server")(serve)
