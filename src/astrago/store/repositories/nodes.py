from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.store.models import Device, Node


class NodeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self) -> Sequence[Node]:
        return (await self.session.scalars(select(Node).order_by(Node.name))).all()

    async def get(self, name: str) -> Node | None:
        return await self.session.get(Node, name)

    async def upsert(
        self,
        *,
        name: str,
        backend: str,
        cpu_milli: int,
        memory_mib: int,
        schedulable: bool,
        simulated: bool,
        labels: dict[str, str],
        devices: Sequence[Device],
        seen_at: datetime,
    ) -> Node:
        node = await self.get(name)
        if node is None:
            node = Node(name=name)
            self.session.add(node)
        node.backend = backend
        node.cpu_milli = cpu_milli
        node.memory_mib = memory_mib
        node.schedulable = schedulable
        node.simulated = simulated
        node.labels = labels
        node.last_seen_at = seen_at
        current = {d.index: d for d in node.devices}
        wanted = {d.index: d for d in devices}
        for index, device in current.items():
            if index not in wanted:
                node.devices.remove(device)
        for index, fresh in wanted.items():
            existing = current.get(index)
            if existing is None:
                node.devices.append(fresh)
                continue
            for attr in ("uuid", "model", "product", "memory_mib", "simulated", "healthy", "mig_enabled"):
                setattr(existing, attr, getattr(fresh, attr))
        await self.session.flush()
        return node

    async def delete(self, node: Node) -> None:
        await self.session.delete(node)
