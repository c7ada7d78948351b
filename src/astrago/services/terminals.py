"""Commands and terminals inside a running workload (`astrago exec`): who may, and on which replica.

Running a command in a workload is running code as that workload, so it takes a member's role in its
workspace; a workload of a workspace the caller cannot see is answered 404, as if it did not exist."""

from __future__ import annotations

from astrago.auth.principal import Principal
from astrago.backends.base import Backend, BackendError, Capability, ExecRequest, ExecSession
from astrago.domain.enums import WorkloadStatus, WorkspaceRole
from astrago.services.context import ServiceContext
from astrago.services.errors import Conflict, Forbidden, InvalidInput, NotFound, NotSupported
from astrago.store.repositories import WorkloadRepository

MAX_ARGV = 256
MAX_TERMINAL_SIDE = 1000


class TerminalService:
    def __init__(self, ctx: ServiceContext, backend: Backend) -> None:
        self.ctx = ctx
        self.backend = backend

    async def open(
        self, principal: Principal, workload_id: str, replica: int, request: ExecRequest
    ) -> ExecSession:
        self._check_request(request)
        if principal.read_only:
            # The handshake is a GET, but what it opens runs code as the workload.
            raise Forbidden("this API token is read-only: it cannot run commands in a workload")
        async with self.ctx.read() as session:
            workload = await WorkloadRepository(session).get(workload_id)
            if workload is None or not principal.can(workload.workspace_id, WorkspaceRole.VIEWER):
                raise NotFound(f"workload {workload_id!r} does not exist or is not in one of your workspaces")
            if not principal.can(workload.workspace_id, WorkspaceRole.MEMBER):
                raise Forbidden("running a command in a workload takes a member's role in its workspace")
            if workload.status != WorkloadStatus.RUNNING:
                raise Conflict(
                    f"workload {workload_id} is {workload.status}; commands run only while it runs"
                )
            if not 0 <= replica < workload.replicas:
                raise InvalidInput(f"workload {workload_id} has replicas 0..{workload.replicas - 1}")
        needed = [Capability.EXEC] + ([Capability.TTY] if request.tty else [])
        missing = [c for c in needed if not self.backend.capabilities.supports(c)]
        if missing:
            names = ", ".join(c.value for c in missing)
            raise NotSupported(
                f"the {self.backend.name} backend cannot run this command: it lacks {names}"
                + (" (run without -t)" if missing == [Capability.TTY] else ""),
                backend=self.backend.name,
                missing=[c.value for c in missing],
            )
        try:
            return await self.backend.open_exec(workload_id, replica, request)
        except BackendError as exc:
            raise Conflict(str(exc)) from exc

    @staticmethod
    def _check_request(request: ExecRequest) -> None:
        if not request.argv or not request.argv[0]:
            raise InvalidInput("give the command to run, e.g. `astrago exec -it ID -- bash`")
        if len(request.argv) > MAX_ARGV:
            raise InvalidInput(f"at most {MAX_ARGV} arguments")
        if not (1 <= request.rows <= MAX_TERMINAL_SIDE and 1 <= request.cols <= MAX_TERMINAL_SIDE):
            raise InvalidInput(f"rows and cols must be between 1 and {MAX_TERMINAL_SIDE}")
