"""All use cases of one server, built once around a shared context."""

from __future__ import annotations

from dataclasses import dataclass

from astrago.monitor.alerts.activity import ActivityRecorder
from astrago.monitor.alerts.reclaim import ReclaimService
from astrago.monitor.alerts.service import AlertService
from astrago.monitor.service import TelemetryService
from astrago.services.audit import AuditService
from astrago.services.auth import AuthService
from astrago.services.code_bundles import CodeBundleService
from astrago.services.context import ServiceContext
from astrago.services.fences import FenceService, GpuAlerts
from astrago.services.health import HealthService
from astrago.services.live_events import LiveEventService
from astrago.services.nodes import NodeService
from astrago.services.quotas import QuotaService
from astrago.services.sso import SsoService
from astrago.services.system_info import SystemInfoService
from astrago.services.uploads import UploadService
from astrago.services.usage import UsageService
from astrago.services.users import UserService
from astrago.services.volumes import VolumeDisk, VolumeService
from astrago.services.workloads import WorkloadService
from astrago.services.workspace_defaults import WorkspaceDefaultsService
from astrago.services.workspaces import WorkspaceService
from astrago.storage.files import VolumeFiles


@dataclass
class Services:
    ctx: ServiceContext
    auth: AuthService
    sso: SsoService
    users: UserService
    workspaces: WorkspaceService
    quotas: QuotaService
    workloads: WorkloadService
    nodes: NodeService
    audit: AuditService
    health: HealthService
    live_events: LiveEventService
    volumes: VolumeService
    uploads: UploadService
    code_bundles: CodeBundleService
    workspace_defaults: WorkspaceDefaultsService
    system: SystemInfoService
    fences: FenceService
    alerts: AlertService
    reclaim: ReclaimService
    activity: ActivityRecorder
    usage: UsageService
    telemetry: TelemetryService

    @classmethod
    def build(cls, ctx: ServiceContext) -> Services:
        nodes = NodeService(ctx)
        auth = AuthService(ctx)
        alerts = AlertService(ctx)
        telemetry = TelemetryService(ctx)
        disk = VolumeDisk(VolumeFiles(ctx.settings.effective_volumes_dir))
        return cls(
            ctx=ctx,
            auth=auth,
            sso=SsoService(ctx, auth),
            users=UserService(ctx),
            workspaces=WorkspaceService(ctx),
            quotas=QuotaService(ctx, disk),
            workloads=WorkloadService(ctx),
            nodes=nodes,
            audit=AuditService(ctx),
            health=HealthService(ctx),
            live_events=LiveEventService(ctx, nodes),
            volumes=VolumeService(ctx, disk),
            uploads=UploadService(ctx, disk),
            code_bundles=CodeBundleService(ctx),
            workspace_defaults=WorkspaceDefaultsService(ctx),
            system=SystemInfoService(ctx),
            fences=FenceService(ctx, GpuAlerts(alerts)),
            alerts=alerts,
            reclaim=ReclaimService(ctx, alerts, telemetry),
            activity=ActivityRecorder(ctx),
            telemetry=telemetry,
            usage=UsageService(ctx),
        )
