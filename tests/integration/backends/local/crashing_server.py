"""A stand-in for the AstraGo server in crash tests: it opens a LocalBackend on DATA_DIR, starts one
workload running COMMAND (a JSON list), prints 'started' and waits, until the test kills it with SIGKILL.

    python -m tests.integration.backends.local.crashing_server DATA_DIR WORKLOAD_ID COMMAND_JSON"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from astrago.backends.local import LocalBackend
from tests.unit.backends.local.factories import launch_spec, local_settings


async def serve(data_dir: Path, workload_id: str, command: list[str]) -> None:
    backend = LocalBackend(local_settings(data_dir))
    await backend.open()
    await backend.start(launch_spec(*command, workload_id=workload_id))
    print("started", flush=True)
    await asyncio.Event().wait()  # until killed: never closes, as a crashed server would not


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])))
