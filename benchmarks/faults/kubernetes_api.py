"""The Kubernetes API failing, then slow, for minutes under a running server: the long run of
tests/reliability/test_kubernetes_api_faults.py (same scenario, kubernetes_outage.py), against the kmock
emulator (no real Kubernetes API server runs on these machines).

Usage: .venv/bin/python -m benchmarks.faults.kubernetes_api [--wave 20] [--error-s 60] [--slow-s 60]
           [--slow-delay-s 15]
Prints what the run measured as JSON, and fails (exit 1) if anything was lost, failed or started twice."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.reliability.kubernetes_outage import run_outage


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults.kubernetes_api")
    parser.add_argument("--wave", type=int, default=20, help="workloads submitted before, during each fault")
    parser.add_argument("--error-s", type=float, default=60.0, help="how long the API answers 500")
    parser.add_argument("--slow-s", type=float, default=60.0, help="how long the API answers late")
    parser.add_argument(
        "--slow-delay-s", type=float, default=15.0, help="how late (past the client's 10 s: timeouts)"
    )
    args = parser.parse_args()
    started = time.monotonic()
    load_before = os.getloadavg()
    directory = Path(tempfile.mkdtemp(prefix="astrago-k8s-faults-"))
    print(f"working in {directory} (the server's log: server/server.log)", file=sys.stderr)
    report = asyncio.run(
        run_outage(
            directory,
            wave=args.wave,
            error_s=args.error_s,
            slow_s=args.slow_s,
            slow_delay_s=args.slow_delay_s,
            finish_within_s=600,
        )
    )
    statuses = sorted(set(report.final_status.values()))
    twice = {name: count for name, count in report.jobs_created.items() if count != 1}
    result = {
        "arguments": vars(args),
        "workloads": len(report.submitted),
        "final_statuses": statuses,
        "jobs_created": len(report.jobs_created),
        "jobs_created_more_than_once": twice,
        "kubernetes_requests_failed_or_delayed": report.faulted_requests,
        "astrago_answers_during_faults": report.api_answers_during_fault,
        "astrago_connections_dropped": report.dropped_connections,
        "slowest_astrago_answer_during_faults_s": round(report.slowest_api_answer_s, 3),
        "all_finished_after_the_api_came_back_s": round(report.recovery_s, 1),
        "server_alive": report.server_alive,
        "emulated_kubelet_hiccups": report.kubelet_hiccups,
        "wall_s": round(time.monotonic() - started, 1),
        "load_average_before": [round(x, 1) for x in load_before],
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    ok = (
        statuses == ["SUCCEEDED"]
        and not twice
        and len(report.jobs_created) == len(report.submitted)
        and report.server_alive
        and set(report.api_answers_during_fault) <= {200, 201}
    )
    if ok:
        shutil.rmtree(directory)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
