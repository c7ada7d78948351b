"""The backend contract: what each workload needs, and what each backend declares it can do."""

from __future__ import annotations

import pytest

from astrago.backends.base import Capability, CapabilityMissing, WorkloadNeeds, require
from astrago.backends.kubernetes.backend import CAPABILITIES as KUBERNETES
from astrago.backends.local.backend import CAPABILITIES as LOCAL
from astrago.domain.enums import WorkloadKind

C = Capability


@pytest.mark.parametrize(
    ("needs", "required"),
    [
        (WorkloadNeeds(WorkloadKind.JOB, has_command=True), [C.COMMANDS]),
        (WorkloadNeeds(WorkloadKind.JOB, has_command=True, image="pytorch:2"), [C.IMAGES]),
        (WorkloadNeeds(WorkloadKind.INTERACTIVE, has_command=False), [C.INTERACTIVE]),
        (WorkloadNeeds(WorkloadKind.SERVICE, has_command=True, ports=1), [C.COMMANDS, C.SERVICES, C.PORTS]),
        (WorkloadNeeds(WorkloadKind.JOB, has_command=True, volumes=2), [C.COMMANDS, C.VOLUMES]),
        (
            WorkloadNeeds(WorkloadKind.DISTRIBUTED, has_command=True, options=(("framework", "mpi"),)),
            [C.COMMANDS, C.DISTRIBUTED, C.MPI],
        ),
        (
            WorkloadNeeds(WorkloadKind.SERVICE, True, "api:1", ports=1, options=(("expose", "nodeport"),)),
            [C.IMAGES, C.SERVICES, C.PORTS, C.NODE_PORTS],
        ),
    ],
)
def test_a_workload_needs_what_it_asks_for(needs: WorkloadNeeds, required: list[Capability]) -> None:
    assert needs.required() == required


def test_the_local_backend_refuses_images_and_mpi() -> None:
    assert LOCAL.missing(WorkloadNeeds(WorkloadKind.JOB, has_command=True, image="pytorch:2")) == [C.IMAGES]
    mpi = WorkloadNeeds(WorkloadKind.DISTRIBUTED, has_command=True, options=(("framework", "mpi"),))
    assert LOCAL.missing(mpi) == [C.MPI]
    assert LOCAL.unknown_options(["framework", "mpi_slots"]) == ["mpi_slots"]


def test_kubernetes_runs_images_but_not_host_commands() -> None:
    assert KUBERNETES.missing(WorkloadNeeds(WorkloadKind.JOB, has_command=True, image="pytorch:2")) == []
    assert KUBERNETES.missing(WorkloadNeeds(WorkloadKind.JOB, has_command=True)) == [C.COMMANDS]
    assert KUBERNETES.unknown_options(["expose", "framework", "mpi_slots"]) == []


def test_an_optional_operation_is_refused_by_name() -> None:
    require(KUBERNETES, C.ORPHAN_CLEANUP)
    with pytest.raises(CapabilityMissing, match="the local backend cannot orphan cleanup") as caught:
        require(LOCAL, C.ORPHAN_CLEANUP)
    assert (caught.value.backend, caught.value.capability) == ("local", C.ORPHAN_CLEANUP)
