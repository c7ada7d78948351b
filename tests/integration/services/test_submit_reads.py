"""A submission reads the workspace it names from a one-second cache, but never past a change this
process makes to it: new workload defaults apply to the very next submission, and a deleted workspace
refuses it at once. On SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import pytest

from astrago.auth.principal import Principal
from astrago.services.errors import InvalidInput, NotFound
from astrago.services.registry import Services
from astrago.services.schemas import WorkloadSubmit, WorkspaceCreate, WorkspaceDefaultsSet


def _cpu_only(workspace: str) -> WorkloadSubmit:
    return WorkloadSubmit.model_validate({"workspace": workspace, "command": ["true"]})


async def test_new_workspace_defaults_apply_to_the_next_submission(
    services: Services, admin: Principal
) -> None:
    await services.workspaces.create(admin, WorkspaceCreate(name="team-a"))
    first = await services.workloads.submit(admin, _cpu_only("team-a"))
    second = await services.workloads.submit(admin, _cpu_only("team-a"))  # the workspace now from the cache
    assert first.spec["resources"] == second.spec["resources"]
    await services.workspace_defaults.set(admin, "team-a", WorkspaceDefaultsSet(cpu=3, memory="3Gi"))
    third = await services.workloads.submit(admin, _cpu_only("team-a"))
    assert third.spec["resources"]["cpu_milli"] == 3000
    assert third.spec["resources"]["memory_mib"] == 3072


async def test_a_deleted_workspace_refuses_the_next_submission(services: Services, admin: Principal) -> None:
    await services.workspaces.create(admin, WorkspaceCreate(name="team-b"))
    too_big = WorkloadSubmit.model_validate(
        {"workspace": "team-b", "command": ["true"], "resources": {"cpu": 1000}}
    )
    # refused after the workspace was read, and so kept
    with pytest.raises(InvalidInput, match="no node could ever run"):
        await services.workloads.submit(admin, too_big)
    await services.workspaces.delete(admin, "team-b")
    with pytest.raises(NotFound, match="team-b"):
        await services.workloads.submit(admin, _cpu_only("team-b"))
