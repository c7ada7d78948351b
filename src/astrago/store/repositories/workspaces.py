from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.store.ids import new_id
from astrago.store.models import Membership, Workload, Workspace


class WorkspaceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_name(self, name: str) -> Workspace | None:
        return await self.session.scalar(select(Workspace).where(Workspace.name == name))

    async def get(self, workspace_id: str) -> Workspace | None:
        return await self.session.get(Workspace, workspace_id)

    async def list(self, only_ids: Sequence[str] | None = None) -> Sequence[Workspace]:
        query = select(Workspace).order_by(Workspace.name)
        if only_ids is not None:
            query = query.where(Workspace.id.in_(only_ids))
        return (await self.session.scalars(query)).all()

    async def add(self, name: str, description: str) -> Workspace:
        workspace = Workspace(id=new_id(), name=name, description=description)
        self.session.add(workspace)
        await self.session.flush()
        return workspace

    async def delete(self, workspace: Workspace) -> int:
        """Deletes the workspace and its workloads (their events and replicas follow by cascade, as do its
        memberships and quotas); returns how many workloads went with it."""
        result = await self.session.execute(delete(Workload).where(Workload.workspace_id == workspace.id))
        await self.session.delete(workspace)
        await self.session.flush()
        return int(getattr(result, "rowcount", 0) or 0)

    async def memberships_of_user(self, user_id: str) -> Sequence[Membership]:
        return (await self.session.scalars(select(Membership).where(Membership.user_id == user_id))).all()

    async def members(self, workspace_id: str) -> Sequence[Membership]:
        query = select(Membership).where(Membership.workspace_id == workspace_id)
        return (await self.session.scalars(query)).all()

    async def membership(self, workspace_id: str, user_id: str) -> Membership | None:
        return await self.session.get(Membership, (workspace_id, user_id))

    async def set_member(
        self, workspace_id: str, user_id: str, role: str, source: str | None = None
    ) -> Membership:
        """`source` "idp" marks a role the IdP gives (re-synced at each login); None keeps a row's source."""
        membership = await self.membership(workspace_id, user_id)
        if membership is None:
            membership = Membership(
                workspace_id=workspace_id, user_id=user_id, role=role, source=source or "local"
            )
            self.session.add(membership)
        else:
            membership.role = role
            if source is not None:
                membership.source = source
        await self.session.flush()
        return membership

    async def remove_member(self, workspace_id: str, user_id: str) -> bool:
        result = await self.session.execute(
            delete(Membership).where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
        )
        return bool(getattr(result, "rowcount", 0))
