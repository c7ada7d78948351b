"""A leader lease in the database, so that only one server runs the controllers at a time.

Several `astrago server --role controllers` replicas may run (e.g. during a rolling update); the one
holding the lease works, the others wait. A lease expires if its holder stops renewing it (crash)."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

import psutil
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from astrago.store.models import Lease


def _holder_is_dead(holder: str) -> bool:
    host, _, rest = holder.partition("/")
    pid = rest.partition("/")[0]
    return host == socket.gethostname() and pid.isdigit() and not psutil.pid_exists(int(pid))


class LeaderLease:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], name: str, ttl_s: float = 30.0) -> None:
        self.sessions = sessions
        self.name = name
        self.ttl = timedelta(seconds=ttl_s)
        self.holder = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:6]}"

    async def try_acquire(self) -> bool:
        """Take or renew the lease; True while this process holds it."""
        now = datetime.now(UTC)
        expires = now + self.ttl
        async with self.sessions.begin() as session:
            renewed = await session.execute(
                update(Lease)
                .where(Lease.name == self.name)
                .where((Lease.holder == self.holder) | (Lease.expires_at < now))
                .values(holder=self.holder, expires_at=expires)
            )
            if getattr(renewed, "rowcount", 0):
                return True
            existing = await session.scalar(select(Lease).where(Lease.name == self.name))
            if existing is not None:
                if not _holder_is_dead(existing.holder):
                    return False
                # The holder was a process on this host that no longer exists (kill -9): take over now
                # rather than waiting for the lease to expire.
                taken = await session.execute(
                    update(Lease)
                    .where(Lease.name == self.name, Lease.holder == existing.holder)
                    .values(holder=self.holder, expires_at=expires)
                )
                return bool(getattr(taken, "rowcount", 0))
        try:
            async with self.sessions.begin() as session:
                session.add(Lease(name=self.name, holder=self.holder, expires_at=expires))
            return True
        except IntegrityError:  # another process created it first
            return False

    async def release(self) -> None:
        async with self.sessions.begin() as session:
            await session.execute(delete(Lease).where(Lease.name == self.name, Lease.holder == self.holder))
