"""`astrago …` as the console script runs it, optionally without the controller's scheduling step.

`--no-scheduling` (first argument) replaces `WorkloadController.schedule_once` with a step that does
nothing, so that a benchmark can measure what the request path alone costs; the rest of the server
(observations, launches, telemetry) runs as always. For benchmarks only: nothing is ever admitted."""

from __future__ import annotations

import sys

from astrago.cli.main import main
from astrago.controllers.workloads import WorkloadController


async def _no_scheduling(_controller: WorkloadController) -> None:
    return None


if __name__ == "__main__":
    if sys.argv[1:2] == ["--no-scheduling"]:
        del sys.argv[1]
        WorkloadController.schedule_once = _no_scheduling  # type: ignore[method-assign]
    sys.argv[0] = "astrago"
    main()
