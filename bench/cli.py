"""`python -m bench [MODE] [options]`, modes run sweep workers memory worst tracing pg-access seed:
README."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from bench import pg_access as pg_access_bench
from bench import replicas as replica_bench
from bench import report, scenarios, seed, serve, worst
from bench.drive import Call, require_wrk, wrk
from bench.otlp_sink import otlp_sink
from taskapi.migrations import upgrade_to_head

LOG_DIR = serve.ROOT / "var" / "bench" / "logs"
DATA_DIR = serve.ROOT / "var" / "bench"


@dataclass(frozen=True, kw_only=True)
class Setup:
    """One seeded database and the secret every service signs with for this run."""

    fixture: seed.Fixture
    secret: str

    @property
    def env(self) -> dict[str, str]:
        return scenarios.server_env(self.fixture.url, self.secret)


def _setup(args: argparse.Namespace, size: int) -> Setup:
    server_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    url = seed.database_url(args.db, size, data_dir=DATA_DIR, server_url=server_url)
    return Setup(fixture=seed.prepare(url, size), secret=secrets.token_urlsafe(48))


def _cpus(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(server CPUs, wrk CPUs): 0 and 1 when pinning makes sense: one worker per service (two
    workers pinned to one CPU would be measured at one core's worth)."""
    if args.no_pin or args.workers > 1 or (os.cpu_count() or 1) < 2:  # noqa: PLR2004
        return None, None
    return "0", "1"


@contextmanager
def _servers(
    args: argparse.Namespace, setup: Setup, *, workers: int | Sequence[int], cpus: str | None
) -> Iterator[dict[str, serve.Server]]:
    get_task = scenarios.endpoints(setup.fixture, setup.secret, depth=1)[0]
    path, headers = scenarios.probe(get_task)
    with serve.running(
        args.services,
        env=setup.env,
        workers=workers,
        cpus=cpus,
        log_dir=LOG_DIR,
        probe_path=path,
        probe_headers=headers,
    ) as servers:
        yield servers


def _load(args: argparse.Namespace, wrk_cpu: str | None) -> scenarios.Load:
    return scenarios.Load(
        seconds=args.seconds,
        warmup=args.warmup,
        rounds=args.rounds,
        connections=args.connections,
        login_connections=args.login_connections,
        wrk_cpu=wrk_cpu,
    )


def _settings(args: argparse.Namespace, **more: Any) -> dict[str, Any]:
    keys = ("db", "seconds", "warmup", "rounds", "connections", "login_connections", "workers")
    return {key: getattr(args, key) for key in keys} | more


def run(args: argparse.Namespace) -> None:
    """The default mode: every endpoint, every service, one table size."""
    size = seed.parse_size(args.size)
    setup = _setup(args, size)
    chosen = [
        e
        for e in scenarios.endpoints(setup.fixture, setup.secret, depth=args.depth)
        if e.name in args.endpoints
    ]
    server_cpu, wrk_cpu = _cpus(args)
    with _servers(args, setup, workers=args.workers, cpus=server_cpu) as servers:
        scenarios.check(servers, chosen)
        print(f"{len(servers)} services, {setup.fixture.owner_tasks} tasks listed, checked alike")
        results = scenarios.measure(servers, chosen, _load(args, wrk_cpu))
    summary = report.summarise(results)
    labels = {e.name: e.label for e in chosen}
    print()
    print(report.table(summary, labels, apart=[e.name for e in chosen if e.argon2]))
    settings = _settings(args, size=size, pinned={"server": server_cpu, "wrk": wrk_cpu})
    path = report.write(
        args.out, {"meta": report.meta(**settings), "labels": labels, "endpoints": summary}
    )
    print(f"\nwritten: {report.shown(path)}")


def sweep(args: argparse.Namespace) -> None:
    """Latency against table size (`--sizes`) and, at the largest size, against page depth
    (`--depths`); writes sweep.json and latency.png."""
    sizes = sorted(seed.parse_size(text) for text in args.sizes.split(","))
    depths = sorted({int(text) for text in args.depths.split(",")})
    server_cpu, wrk_cpu = _cpus(args)
    load = _load(args, wrk_cpu)
    by_size: list[dict[str, Any]] = []
    by_depth: dict[str, Any] = {}
    for size in sizes:
        setup = _setup(args, size)
        owner = scenarios.access_token(setup.secret, setup.fixture.owner_id)
        shallow = scenarios.endpoints(setup.fixture, setup.secret, depth=1)
        chosen = [e for e in shallow if e.name in {"get_task", "list_page_1"}]
        with _servers(args, setup, workers=args.workers, cpus=server_cpu) as servers:
            print(f"size {seed.size_label(size)}")
            results = scenarios.measure(servers, chosen, load)
            by_size.append(
                {
                    "size": size,
                    "label": seed.size_label(size),
                    "endpoints": report.summarise(results),
                }
            )
            if size != sizes[-1]:
                continue
            all_pages = sorted({scenarios.deepest_page(setup.fixture, d) for d in depths})
            at_depth = {
                pages: [
                    scenarios.cursor_endpoint(setup.fixture, setup.secret, pages, owner),
                    scenarios.page_endpoint(pages, owner),
                ]
                for pages in all_pages
            }
            deep: dict[int, scenarios.Results] = {pages: {} for pages in all_pages}
            for round_number in range(load.rounds):
                # Every depth once per round, as services are within one: drift in the
                # machine's speed then falls on shallow and deep pages alike.
                one_round = replace(load, rounds=1, warmup=load.warmup if round_number == 0 else 0)
                for pages in all_pages:
                    print(f"round {round_number + 1}, depth {pages} pages")
                    got = scenarios.measure(servers, at_depth[pages], one_round)
                    for endpoint, per_service in got.items():
                        for service, measured in per_service.items():
                            deep[pages].setdefault(endpoint, {}).setdefault(service, [])
                            deep[pages][endpoint][service].extend(measured)
            by_depth = {
                "size": size,
                "label": seed.size_label(size),
                "points": [
                    {"pages": pages, "endpoints": report.summarise(deep[pages])}
                    for pages in all_pages
                ],
            }
    payload = {"meta": report.meta(**_settings(args)), "by_size": by_size, "by_depth": by_depth}
    report.write("sweep.json", payload)
    chart = report.chart(payload, report.RESULTS / "latency.png")
    _print_sweep_targets(payload)
    print(f"written: bench/results/sweep.json, {report.shown(chart)}")


def _print_sweep_targets(payload: dict[str, Any]) -> None:
    sizes = payload["by_size"]
    points = payload["by_depth"]["points"]
    for service in sizes[0]["endpoints"]["list_page_1"]:
        first, last = (
            p["endpoints"]["list_page_1"][service]["p50_ms"] for p in (sizes[0], sizes[-1])
        )
        print(
            f"{service}: page 1 p50 at {sizes[-1]['label']} is {last / first:.2f}x "
            f"that at {sizes[0]['label']}",
            end="",
        )
        if len(points) > 1:
            shallow, deep = (
                p["endpoints"]["list_cursor_deep"][service]["p50_ms"]
                for p in (points[0], points[-1])
            )
            print(
                f"; cursor p50 at {points[-1]['pages']} pages is {deep / shallow:.2f}x "
                f"that at {points[0]['pages']}",
                end="",
            )
        print()


def workers(args: argparse.Namespace) -> None:
    """Throughput with one worker and with two. Both are served at once and measured in
    alternation, round after round, so that drift in the machine's speed falls on both alike
    (run one after the other, the ratio swung by 0.4 between runs). Unpinned: two workers
    need both CPUs. taskapi runs through `taskapi serve` at both counts, as it is deployed."""
    setup = _setup(args, seed.parse_size(args.size))
    chosen = [
        e
        for e in scenarios.endpoints(setup.fixture, setup.secret, depth=args.depth)
        if e.name in args.endpoints and not e.argon2
    ]
    counts = (1, 2)
    with _servers(args, setup, workers=counts, cpus=None) as servers:
        results = scenarios.measure(servers, chosen, _load(args, None))
    summary = report.summarise(results)
    print(
        "\n| endpoint | service | 1 worker req/s | 2 workers req/s | ratio |\n|---|---|---|---|---|"
    )
    figures: dict[str, dict[str, Any]] = {}
    for endpoint, measured in results.items():
        for service in args.services:
            one, two = (serve.worker_label(service, count) for count in counts)
            ratio = report.paired_ratio(measured[two], measured[one]) or 0.0
            figures.setdefault(endpoint, {})[service] = {
                "1": summary[endpoint][one],
                "2": summary[endpoint][two],
                "ratio": round(ratio, 3),
            }
            print(
                f"| {endpoint} | {service} | {summary[endpoint][one]['rps']:.0f} "
                f"| {summary[endpoint][two]['rps']:.0f} | {ratio:.2f}x |"
            )
    report.write("workers.json", {"meta": report.meta(**_settings(args)), "workers": figures})


def memory(args: argparse.Namespace) -> None:
    """Resident memory of each service after 10k and after 100k requests (list page 1), or
    after each count in `--requests`."""
    setup = _setup(args, seed.parse_size(args.size))
    list_page = scenarios.endpoints(setup.fixture, setup.secret, depth=1)[1]
    server_cpu, wrk_cpu = _cpus(args)
    marks = sorted(int(text) for text in args.requests.split(","))
    figures: dict[str, Any] = {}
    for service in args.services:
        one = argparse.Namespace(**{**vars(args), "services": [service]})
        with _servers(one, setup, workers=1, cpus=server_cpu) as servers:
            server = servers[service]
            rss, served = {0: server.rss_kib()}, 0
            for mark in marks:
                served += _drive_count(
                    server, list_page.call, mark - served, args.connections, wrk_cpu
                )
                rss[mark] = server.rss_kib()
        growth = rss[marks[-1]] / rss[marks[0]] - 1
        figures[service] = {
            "rss_kib": {str(mark): kib for mark, kib in rss.items()},
            "growth_first_to_last": round(growth, 4),
        }
        steps = ", ".join(f"after {n}: {kib / 1024:.1f} MiB" for n, kib in rss.items() if n)
        print(f"{service:<9} RSS at start: {rss[0] / 1024:.1f} MiB, {steps} ({growth:+.1%})")
    report.write("memory.json", {"meta": report.meta(**_settings(args)), "memory": figures})


def tracing(args: argparse.Namespace) -> None:
    """taskapi with tracing off against taskapi tracing every request (OTLP/HTTP to a sink on
    loopback), rounds interleaved, every chosen endpoint."""
    setup = _setup(args, seed.parse_size(args.size))
    chosen = [
        e
        for e in scenarios.endpoints(setup.fixture, setup.secret, depth=args.depth)
        if e.name in args.endpoints
    ]
    server_cpu, wrk_cpu = _cpus(args)
    path, headers = scenarios.probe(chosen[0])
    servers: dict[str, serve.Server] = {}
    with otlp_sink() as sink_address:
        traced = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink_address, "OTEL_TRACES_SAMPLER": "always_on"}
        try:
            for label, more in (("tracing-off", {}), ("tracing-on", traced)):
                servers[label] = serve.start(
                    "taskapi",
                    label=label,
                    env={**setup.env, **more},
                    workers=args.workers,
                    cpus=server_cpu,
                    log_dir=LOG_DIR,
                    probe_path=path,
                    probe_headers=headers,
                )
            results = scenarios.measure(servers, chosen, _load(args, wrk_cpu))
        finally:
            for server in servers.values():
                server.stop()
    summary = report.summarise(results)
    print(
        "\n| endpoint | off req/s | on req/s | on/off (paired) | off p50 ms | on p50 ms |"
        " off p99 ms | on p99 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for endpoint in chosen:
        off, on = summary[endpoint.name]["tracing-off"], summary[endpoint.name]["tracing-on"]
        ratio = report.paired_ratio(
            results[endpoint.name]["tracing-on"], results[endpoint.name]["tracing-off"]
        )
        on["ratio_vs_tracing_off"] = ratio
        latencies = (off["p50_ms"], on["p50_ms"], off["p99_ms"], on["p99_ms"])
        print(
            f"| {endpoint.label} | {off['rps']:.0f} | {on['rps']:.0f} | {ratio or 0:.3f} | "
            + " | ".join(f"{ms:.2f}" for ms in latencies)
            + " |"
        )
    path_written = report.write(
        "tracing.json", {"meta": report.meta(**_settings(args)), "endpoints": summary}
    )
    print(f"\nwritten: {report.shown(path_written)}")


def _drive_count(
    server: serve.Server, call: Call, count: int, connections: int, cpus: str | None
) -> int:
    """Drive `call` until at least `count` responses; wrk is bounded in time only, so in
    chunks sized from the rate seen. Returns how many were served (a little over `count`)."""
    served, rate = 0, 0.0
    while served < count:
        seconds = min(10.0, max(1.0, (count - served) / rate)) if rate else 1.0
        got = wrk(server.base_url, call, seconds=seconds, connections=connections, cpus=cpus)
        if got.errors:
            raise SystemExit(f"{server.name}: {got.errors} errors while driving {call.path}")
        served, rate = served + got.requests, got.rps
    return served


def replicas(args: argparse.Namespace) -> None:
    """Throughput through HAProxy with 1, 2 and 3 replicas (bench.replicas): on PostgreSQL,
    whatever --db says, as replicas share one database server."""
    args.db = "postgresql"
    replica_bench.replicas(args, _setup(args, seed.parse_size(args.size)))


def worst_case(args: argparse.Namespace) -> None:
    """Each operation's costliest request at and past the spec's limits, with the health
    check's latency meanwhile (bench/worst.py); SQLite, one worker, no wrk."""
    path = DATA_DIR / "worst.sqlite3"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    upgrade_to_head(url)
    env = scenarios.server_env(url, secrets.token_urlsafe(48)) | {
        "PASSWORD_HASH_PROFILE": "CHEAPEST"
    }
    print(worst.TABLE_HEADER)
    figures = worst.run(env, rounds=args.rounds)
    print()
    print(worst.table(figures))
    written = report.write("worst.json", {"meta": report.meta(**_settings(args)), "rows": figures})
    print(f"\nwritten: {report.shown(written)}")


def pg_access(args: argparse.Namespace) -> None:
    """Get one task on PostgreSQL, whatever --db says, reached each way of bench.pg_access
    (`--strategies`), rounds interleaved; taskapi's own way (threads) is the reference."""
    args.db = "postgresql"
    setup = _setup(args, seed.parse_size(args.size))
    get_task = scenarios.endpoints(setup.fixture, setup.secret, depth=1)[0]
    server_cpu, wrk_cpu = _cpus(args)
    ways = argparse.Namespace(**{**vars(args), "services": [f"pg-{s}" for s in args.strategies]})
    with _servers(ways, setup, workers=args.workers, cpus=server_cpu) as servers:
        scenarios.check(servers, [get_task])
        results = scenarios.measure(servers, [get_task], _load(args, wrk_cpu))[get_task.name]
    summary = report.summarise({get_task.name: results})[get_task.name]
    print("\n| strategy | req/s | p50 ms | p99 ms | /threads |\n|---|---|---|---|---|")
    for name, figures in summary.items():
        ratio = report.paired_ratio(results[name], results["pg-threads"])
        figures["ratio_vs_threads"] = None if ratio is None else round(ratio, 3)
        print(
            f"| {name.removeprefix('pg-')} | {figures['rps']:.0f} | {figures['p50_ms']:.2f} "
            f"| {figures['p99_ms']:.2f} | {'-' if ratio is None else f'{ratio:.2f}x'} |"
        )
    settings = _settings(args, strategies=args.strategies, pinned=server_cpu is not None)
    written = report.write("pg_access.json", {"meta": report.meta(**settings), "get_task": summary})
    print(f"\nwritten: {report.shown(written)}")


def seed_only(args: argparse.Namespace) -> None:
    for text in args.sizes.split(","):
        setup = _setup(args, seed.parse_size(text))
        print(f"ready: {setup.fixture.url} ({setup.fixture.owner_tasks} tasks listed)")


def _list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        chosen = [item.strip() for item in text.split(",") if item.strip()]
        unknown = sorted(set(chosen) - set(choices))
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown: {', '.join(unknown)}; know {choices}")
        return chosen

    return parse


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    modes = root.add_subparsers(dest="mode")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    common.add_argument("--size", default="10k", help="users and tasks: 10k, 100k, 1M (10k)")
    common.add_argument("--seconds", type=float, default=5, help="per measurement (5)")
    common.add_argument("--warmup", type=float, default=1, help="per service and endpoint (1)")
    common.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    common.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    common.add_argument("--login-connections", type=int, default=4, help="for log in (4)")
    common.add_argument("--workers", type=int, default=1, help="uvicorn workers each (1)")
    common.add_argument("--depth", type=int, default=10_000, help="deep page, in pages (10000)")
    common.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    common.add_argument(
        "--services", type=_list(scenarios.SERVICES), default=list(scenarios.SERVICES)
    )
    common.add_argument(
        "--endpoints", type=_list(scenarios.ENDPOINTS), default=list(scenarios.ENDPOINTS)
    )
    common.add_argument(
        "--out",
        default="latest.json",
        help="where to write the JSON (a bare name: in bench/results/)",
    )
    modes.add_parser("run", parents=[common], help="every endpoint at one size (default)")
    sweeping = modes.add_parser("sweep", parents=[common], help="latency by size and depth")
    sweeping.add_argument("--sizes", default="10k,100k")
    sweeping.add_argument("--depths", default="1,10,100,1000,10000")
    modes.add_parser("workers", parents=[common], help="two workers against one")
    remembering = modes.add_parser("memory", parents=[common], help="RSS after 10k, 100k requests")
    remembering.add_argument("--requests", default="10000,100000", help="RSS after each count")
    modes.add_parser("replicas", parents=[common], help="1, 2, 3 replicas behind HAProxy")
    modes.add_parser("worst", parents=[common], help="costliest requests, health meanwhile")
    modes.add_parser("tracing", parents=[common], help="taskapi with tracing off and at 100%%")
    accessing = modes.add_parser(
        "pg-access", parents=[common], help="get one task, PostgreSQL reached five ways"
    )
    accessing.add_argument(
        "--strategies",
        type=_list(pg_access_bench.STRATEGIES),
        default=list(pg_access_bench.STRATEGIES),
    )
    seeding = modes.add_parser("seed", parents=[common], help="only seed (and keep) databases")
    seeding.add_argument("--sizes", default="10k")
    return root


MODES: dict[str, Callable[[argparse.Namespace], None]] = {
    "run": run,
    "sweep": sweep,
    "workers": workers,
    "memory": memory,
    "replicas": replicas,
    "seed": seed_only,
    "worst": worst_case,
    "tracing": tracing,
    "pg-access": pg_access,
}


def main(argv: Sequence[str] | None = None) -> None:
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] not in {*MODES, "-h", "--help"}:
        words.insert(0, "run")  # the default mode
    args = parser().parse_args(words)
    if args.mode not in {"seed", "worst"}:
        require_wrk()
    MODES[args.mode](args)
