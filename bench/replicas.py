"""`python -m bench replicas`: throughput through HAProxy with 1, 2 and 3 replicas.

Three `taskapi serve` replicas (one worker each) run behind HAProxy (tools.replica_set, on
PostgreSQL and Redis, as deployed); each round measures every endpoint with 1, then 2, then 3
of them in rotation (the others in HAProxy maintenance, idle), so drift in the machine's speed
falls on every count alike. wrk drives the HAProxy front, unpinned: on two cores the replicas,
HAProxy, PostgreSQL and wrk share them, so this shows the overhead of the front and the
sharing, not how far replicas scale on machines of their own (docs/deployment.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
from typing import Any

from bench import report, scenarios, serve
from bench.drive import Measurement, wrk
from tools.replica_set import replica_set

COUNTS = (1, 2, 3)
ENDPOINTS = ("get_task", "list_page_1", "create_task")


def replicas(args: argparse.Namespace, setup: Any) -> None:
    """`setup` is the CLI's seeded database (bench.cli.Setup), on PostgreSQL."""
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        raise SystemExit("bench replicas needs Redis: set TEST_REDIS_URL (or BENCH_REDIS_URL)")
    chosen = [
        e
        for e in scenarios.endpoints(setup.fixture, setup.secret, depth=1)
        if e.name in ENDPOINTS and e.name in args.endpoints
    ]
    measured: dict[str, dict[int, list[Measurement]]] = {
        e.name: {n: [] for n in COUNTS} for e in chosen
    }
    with replica_set(
        count=max(COUNTS),
        database_url=setup.fixture.url,
        redis_url=redis_url,
        workdir=serve.ROOT / "var" / "bench" / "replicas",
        env={**serve.TASKAPI_ENV, "WORKERS": str(args.workers)},
        secret=setup.secret,
    ) as cluster:
        names = [replica.name for replica in cluster.replicas]
        for round_number in range(args.rounds):
            for count in COUNTS:
                for position, name in enumerate(names):
                    cluster.balancer.set_in_rotation(name, routed=position < count)
                for endpoint in chosen:
                    if round_number == 0 and args.warmup:
                        wrk(
                            cluster.base_url,
                            endpoint.call,
                            seconds=args.warmup,
                            connections=args.connections,
                            cpus=None,
                        )
                    got = wrk(
                        cluster.base_url,
                        endpoint.call,
                        seconds=args.seconds,
                        connections=args.connections,
                        cpus=None,
                    )
                    measured[endpoint.name][count].append(got)
                    print(
                        f"round {round_number + 1}, {count} replica(s), {endpoint.name}: "
                        f"{got.rps:.0f} req/s, p99 {got.p99_ms:.1f} ms, {got.errors} errors"
                    )
    _print_and_write(args, measured)


def _print_and_write(
    args: argparse.Namespace, measured: dict[str, dict[int, list[Measurement]]]
) -> None:
    print("\n| endpoint | replicas | req/s (median) | p50 ms | p99 ms | errors | vs 1 |")
    print("|---|---|---|---|---|---|---|")
    figures: dict[str, Any] = {}
    for endpoint, by_count in measured.items():
        one = statistics.median(m.rps for m in by_count[1])
        for count, rounds in by_count.items():
            rps = statistics.median(m.rps for m in rounds)
            entry = {
                "rps": round(rps, 1),
                "p50_ms": round(statistics.median(m.p50_ms for m in rounds), 3),
                "p99_ms": round(statistics.median(m.p99_ms for m in rounds), 3),
                "errors": sum(m.errors for m in rounds),
                "rounds": [round(m.rps, 1) for m in rounds],
            }
            figures.setdefault(endpoint, {})[str(count)] = entry
            print(
                f"| {endpoint} | {count} | {rps:.0f} | {entry['p50_ms']:.1f} "
                f"| {entry['p99_ms']:.1f} | {entry['errors']} | {rps / one:.2f}x |"
            )
    keys = ("db", "size", "seconds", "warmup", "rounds", "connections", "workers")
    meta = report.meta(**{key: getattr(args, key) for key in keys})
    path = report.write("replicas.json", {"meta": meta, "replicas": figures})
    print(f"\nwritten: {report.shown(path)}")
