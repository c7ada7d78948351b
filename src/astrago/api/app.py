"""The FastAPI application and its lifecycle: database, migrations, first admin, backend, controllers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from fastapi import FastAPI
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from astrago import __version__
from astrago.api.body_limit import BodyLimitMiddleware
from astrago.api.console import install_console
from astrago.api.openapi import install_problem_openapi
from astrago.api.problems import install_problem_handlers
from astrago.api.routers import (
    alerts,
    auth,
    code,
    cordons,
    endpoints,
    events,
    logs,
    proxy,
    server_info,
    sso,
    system,
    telemetry,
    terminals,
    uploads,
    usage,
    users,
    volumes,
    workloads,
    workspace_defaults,
    workspaces,
)
from astrago.api.url_guard import NulInUrlMiddleware
from astrago.backends import create_backend
from astrago.backends.base import Backend
from astrago.config import Settings
from astrago.controllers.gpu_health import gpu_health_monitor
from astrago.controllers.lease import LeaderLease
from astrago.controllers.metrics import ControllerMetrics
from astrago.controllers.workloads import WorkloadController
from astrago.domain.isolation import KUBERNETES_ISOLATION, IsolationStatus
from astrago.file_modes import make_files_private
from astrago.gateway.proxy import HttpForwarder
from astrago.gateway.signing import Signer
from astrago.monitor.alerts.background import run_alerting
from astrago.monitor.task import Telemetry
from astrago.services.context import ServiceContext
from astrago.services.gateway import GatewayService
from astrago.services.logs import LogService
from astrago.services.registry import Services
from astrago.services.rollouts import RolloutService
from astrago.services.terminals import TerminalService
from astrago.store.db import create_engine, create_session_factory, is_sqlite
from astrago.store.migrate import upgrade_to_head

log = logging.getLogger(__name__)

Role = Literal["all", "api", "controllers"]
LEASE_RENEW_S = 10.0
CHANGE_PRUNE_EVERY_S = 3600.0


@dataclass
class Runtime:
    """Everything a running server holds. Started before the HTTP server, so that a bad database URL or
    an unreachable cluster is reported as one clear error instead of a failed ASGI lifespan."""

    settings: Settings
    engine: AsyncEngine
    services: Services
    backend: Backend
    metrics: ControllerMetrics
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        role: Role = "all",
        announce: Callable[[str], None] = print,
        backend: Backend | None = None,
    ) -> Runtime:
        """`announce` receives the lines a person starting the server must see (a generated password)."""
        make_files_private(settings)
        engine = create_engine(settings.effective_database_url)
        try:
            await upgrade_to_head(engine)
            chosen = backend or create_backend(settings)
            ctx = ServiceContext(
                sessions=create_session_factory(engine),
                settings=settings,
                capabilities=chosen.capabilities,
                serialize_writes=is_sqlite(engine),
            )
            services = Services.build(ctx)
            # Opened now: a bad `gpu_source` (path, script) is a usage error at start, not a silent nothing.
            telemetry = Telemetry(ctx, chosen) if role in ("all", "controllers") else None
            # The backend opens before the first account exists: a start that fails creates no account
            # whose password would never be shown again.
            await chosen.open()
            ctx.isolation = isolation_of(chosen)
            try:
                password = await services.auth.ensure_admin()
            except BaseException:
                await chosen.close()
                raise
            if password:
                announce(f"Created the first account: admin / {password}  (shown once; keep it safe)")
        except BaseException:
            await engine.dispose()
            raise
        runtime = cls(settings, engine, services, chosen, ControllerMetrics())
        Gauge(
            "astrago_event_streams_open",
            "Live event streams (web consoles) open on this server.",
            registry=runtime.metrics.registry,
        ).set_function(lambda: services.ctx.changes.subscribers)
        runtime.tasks.append(asyncio.create_task(_prune_changes(services), name="change-feed-pruning"))
        if role in ("all", "api"):  # the process that receives uploads also expires them
            runtime.tasks.append(asyncio.create_task(services.uploads.run_cleanup(), name="upload-cleanup"))
            # the gateway's record of endpoint traffic (idle reclaim reads it)
            runtime.tasks.append(asyncio.create_task(services.activity.run(), name="endpoint-activity"))
        if role in ("all", "controllers"):
            # Alone, the controllers hear of API changes only through the database: schedule every interval.
            every = settings.scheduling_interval_s if role == "controllers" else 30.0
            controller = WorkloadController(ctx, chosen, metrics=runtime.metrics, schedule_every_s=every)
            ctx.wake_controllers = controller.wake
            runtime.tasks.append(asyncio.create_task(_lead(ctx, controller), name="controllers"))
            monitor = gpu_health_monitor(settings, services)
            if monitor is not None:
                runtime.tasks.append(asyncio.create_task(monitor.run(), name="gpu-health"))
            runtime.tasks.append(
                asyncio.create_task(run_alerting(ctx, services.alerts, services.reclaim), name="alerting")
            )
        if telemetry is not None:
            runtime.tasks.append(asyncio.create_task(telemetry.run(), name="telemetry"))
        return runtime

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):  # the last endpoint requests seen, kept for idle reclaim
            await self.services.activity.flush()
        await self.backend.close()
        await self.engine.dispose()


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            await app.state.http_forwarder.aclose()

    app = describe_api(lifespan, runtime.settings.max_request_body_bytes)
    app.state.services = runtime.services
    app.state.backend = runtime.backend
    app.state.controller_metrics = runtime.metrics
    signer = Signer.load(runtime.settings.gateway_key, runtime.settings.data_dir)
    app.state.gateway = GatewayService(runtime.services.ctx, runtime.backend, signer)
    app.state.http_forwarder = HttpForwarder()
    app.state.terminals = TerminalService(runtime.services.ctx, runtime.backend)
    app.state.rollouts = RolloutService(runtime.services.ctx)
    app.state.logs = LogService(runtime.services.ctx, runtime.backend, runtime.services.workloads)
    return app


def describe_api(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    max_request_body_bytes: int = Settings.model_fields["max_request_body_bytes"].default,
) -> FastAPI:
    """The routes, without a running platform behind them (enough for the OpenAPI document)."""
    app = FastAPI(
        title="AstraGo",
        version=__version__,
        description="Share GPUs fairly between ML teams; run, queue, follow and cancel their workloads.",
        lifespan=lifespan,
    )
    # Added innermost first: the problem handlers' catch-all wraps the guards, so nothing escapes it.
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_request_body_bytes)
    app.add_middleware(NulInUrlMiddleware)
    install_problem_handlers(app)
    for router in (
        auth.router,
        sso.router,
        users.router,
        workspaces.router,
        workloads.router,
        events.router,
        system.router,
        volumes.router,
        uploads.router,
    ):
        app.include_router(router)
    for router in (code.router, workspace_defaults.router, server_info.router):
        app.include_router(router)
    app.include_router(endpoints.router)
    app.include_router(logs.router)
    app.include_router(terminals.router)
    app.include_router(proxy.router)
    app.include_router(cordons.router)
    app.include_router(usage.router)
    app.include_router(telemetry.router)
    app.include_router(alerts.router)
    install_problem_openapi(app)
    install_console(app)  # last: its catch-all must not shadow an API route
    return app


def isolation_of(backend: Backend) -> IsolationStatus:
    """What the backend reports; the Kubernetes backend isolates workloads in pods."""
    reported = getattr(backend, "isolation", None)
    return reported if isinstance(reported, IsolationStatus) else KUBERNETES_ISOLATION


async def _prune_changes(services: Services) -> None:
    """Keep the live clients' change feed to its retention (a day): hourly, from every server process."""
    while True:
        try:
            await services.live_events.prune()
        except Exception:
            log.exception("could not prune the change feed; retrying in an hour")
        await asyncio.sleep(CHANGE_PRUNE_EVERY_S)


async def _lead(ctx: ServiceContext, controller: WorkloadController) -> None:
    """Run the controllers while this process holds the leader lease (one active leader at a time)."""
    lease = LeaderLease(ctx.sessions, "controllers", ttl_s=3 * LEASE_RENEW_S)
    running: asyncio.Task[None] | None = None
    try:
        while True:
            try:
                leading = await lease.try_acquire()
            except Exception:
                log.exception("could not renew the controllers' lease")
                leading = False
            if leading and running is None:
                log.info("holding the controllers' lease as %s", lease.holder)
                running = asyncio.create_task(controller.run(), name="workload-controller")
            elif not leading and running is not None:
                log.warning("lost the controllers' lease; pausing until it is free again")
                running.cancel()
                running = None
            await asyncio.sleep(LEASE_RENEW_S)
    finally:
        if running is not None:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        with contextlib.suppress(Exception):
            await lease.release()
