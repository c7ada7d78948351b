r"""Queueing delay and fairness of queue disciplines on the openb trace replayed in time mode.

    nice .venv/bin/python benchmarks/scheduler/replay_compare.py --speedup 8000 \
        --out benchmarks/scheduler/results/replay_compare.json

Every configuration replays the same trace on the same cluster (openb GPU nodes at `--cluster-scale`, pods
split into `--teams` teams — evenly, or Zipf-sized with `--team-skew` — each guaranteed an equal GPU share,
arrivals compressed by `--speedup`) through the
live engine (`astrago.sim.replay`), one after the other in this process, so the figures are side by side:

* fifo — submission order, strict: nothing passes a blocked head (YARN-CS-like FIFO with quotas);
* fairshare — fair share between teams, strict;
* fairshare+backfill — fair share, the head's nodes reserved, later work backfills elsewhere (the default);
* fairshare, no reservation — anything that fits goes (shows what reservation costs and buys).

Prints a Markdown table; `--out` also writes every full report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from astrago.sim.replay import ReplayConfig, replay
from astrago.sim.traces import read_nodes, read_pods

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "openb"

# name: (queue discipline, backfill, reservation)
CONFIGURATIONS = {
    "fifo": ("fifo", False, True),
    "fairshare": ("fairshare", False, True),
    "fairshare+backfill": ("fairshare", True, True),
    "fairshare, no reservation": ("fairshare", True, False),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", default=str(DATA / "openb_pod_list_default.csv"))
    parser.add_argument("--nodes", default=str(DATA / "openb_node_list_gpu_node.csv"))
    parser.add_argument("--policy", default="astra")
    parser.add_argument("--teams", type=int, default=8)
    parser.add_argument("--team-skew", type=float, default=0.0)
    parser.add_argument("--cluster-scale", type=float, default=0.6)
    parser.add_argument("--speedup", type=float, default=8000)
    parser.add_argument("--only", help="comma-separated configuration names to run")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    nodes = read_nodes(Path(args.nodes).read_text(), args.nodes)
    pods = read_pods(Path(args.pods).read_text(), args.pods)
    wanted = args.only.split(",") if args.only else list(CONFIGURATIONS)
    reports = {}
    print(
        "| configuration | queueing delay mean / p95 / p99 (s) | JCT mean / p95 (s) | makespan (s) "
        "| 8-GPU pods: delay mean / max (s) | GPU util. mean / peak (%) | preemptions | Jain (teams) "
        "| CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in wanted:
        queue, backfill, reservation = CONFIGURATIONS[name]
        config = ReplayConfig(
            policy=args.policy,
            queue=queue,
            backfill=backfill,
            reservation=reservation,
            teams=args.teams,
            team_skew=args.team_skew,
            cluster_scale=args.cluster_scale,
            speedup=args.speedup,
        )
        report = replay(nodes, pods, config).to_json()
        reports[name] = report
        delay, jct = report["queueing_delay_s"], report["jct_s"]
        large = report["queueing_delay_by_type_s"].get("8-gpu", {"mean": "-", "max": "-"})
        print(
            f"| {name} | {delay['mean']} / {delay['p95']} / {delay['p99']} | {jct['mean']} / {jct['p95']} "
            f"| {report['makespan_s']} | {large['mean']} / {large['max']} "
            f"| {report['gpu_utilisation_mean']} / {report['gpu_utilisation_peak']} "
            f"| {report['preemptions']} | {report['jain_fairness']} | {report['seconds']} |",
            flush=True,
        )
    if args.out:
        args.out.write_text(json.dumps(reports, indent=1) + "\n")


if __name__ == "__main__":
    main()
