"""All use cases of one server, built once around a shared context."""

from __future__ import annotations

from dataclasses import dataclass

from astrago.services.audit import AuditService
from astrago.services.auth import AuthService
from astrago.services.code_bundles import CodeBundleService
from astrago.services.context import ServiceContext
from astrago.services.nodes import NodeService
from astrago.services.quotas import QuotaService
from astrago.services.users import UserService
from astrago.services.workloads import WorkloadService
from astrago.services.workspace_defaults import WorkspaceDefaultsService
from astrago.services.workspaces import WorkspaceService


@dataclass
class Services:
    ctx: ServiceContext
    auth: AuthService
    users: UserService
    workspaces: WorkspaceService
    quotas: QuotaService
    workloads: WorkloadService
    nodes: NodeService
    audit: AuditService
    code_bundles: CodeBundleService
    workspace_defaults: WorkspaceDefaultsService

    @classmethod
    def build(cls, ctx: ServiceContext) -> Services:
        return cls(
            ctx=ctx,
            auth=AuthService(ctx),
            users=UserService(ctx),
            workspaces=WorkspaceService(ctx),
            quotas=QuotaService(ctx),
            workloads=WorkloadService(ctx),
            nodes=NodeService(ctx),
            audit=AuditService(ctx),
            code_bundles=CodeBundleService(ctx),
            workspace_defaults=WorkspaceDefaultsService(ctx),
        )
