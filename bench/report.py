"""Figures out: medians over rounds, the table, the JSON record and the chart."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.drive import Measurement
from bench.serve import ROOT

RESULTS = ROOT / "bench" / "results"
_PACKAGES = ("connexion", "fastapi", "pydantic", "starlette", "uvicorn", "sqlalchemy", "psycopg")

Summary = dict[str, dict[str, dict[str, Any]]]
# What taskapi is measured against, each as a column `taskapi/<title>` and `ratio_vs_<name>`.
PEERS = {"fastapi": "FastAPI", "starlette": "Starlette", "floor": "floor"}


def summarise(results: Mapping[str, Mapping[str, Sequence[Measurement]]]) -> Summary:
    """Per endpoint and service: the median req/s, p50 and p99 over the rounds (and each
    round), plus taskapi's `ratio_vs_<peer>` in req/s for each peer that ran (fastapi,
    starlette and floor, the bare ASGI app on the raw driver): the median
    of each round's ratio, as the services of one round ran back to back on the same machine
    while its speed drifted between rounds."""
    summary: Summary = {}
    for endpoint, per_service in results.items():
        entry: dict[str, dict[str, Any]] = {}
        for service, rounds in per_service.items():
            entry[service] = {
                "rps": round(statistics.median(m.rps for m in rounds), 1),
                "p50_ms": round(statistics.median(m.p50_ms for m in rounds), 3),
                "p99_ms": round(statistics.median(m.p99_ms for m in rounds), 3),
                "errors": sum(m.errors for m in rounds),
                "unanswered_rounds": sum(1 for m in rounds if not m.requests),
                "rounds": [
                    {"rps": round(m.rps, 1), "p50_ms": m.p50_ms, "p99_ms": m.p99_ms} for m in rounds
                ],
            }
        ours = per_service.get("taskapi")
        for peer in PEERS:
            if ours is not None and peer in per_service:
                ratio = paired_ratio(ours, per_service[peer])
                if ratio is not None:
                    entry["taskapi"][f"ratio_vs_{peer}"] = round(ratio, 3)
        summary[endpoint] = entry
    return summary


def paired_ratio(ours: Sequence[Measurement], theirs: Sequence[Measurement]) -> float | None:
    """The median over rounds of ours/theirs in req/s, each round's pair measured back to back;
    None when a round of either side got no answer at all: that round measured nothing, and a
    median of the others would pass off a failed run as a figure."""
    pairs = list(zip(ours, theirs, strict=True))
    if not pairs or any(not a.requests or not b.requests for a, b in pairs):
        return None
    return statistics.median(a.rps / b.rps for a, b in pairs)


def table(summary: Summary, labels: Mapping[str, str], *, apart: Sequence[str] = ()) -> str:
    """A Markdown table, one row per endpoint; endpoints in `apart` (log in) come after a gap."""
    services = list(next(iter(summary.values()))) if summary else []
    head = ["endpoint"]
    for service in services:
        head += [f"{service} req/s", "p50 ms", "p99 ms"]
    peers = [peer for peer in PEERS if peer in services]
    head += [f"taskapi/{PEERS[peer]}" for peer in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ordered = [e for e in summary if e not in apart] + [e for e in summary if e in apart]
    for endpoint in ordered:
        if endpoint in apart and len(ordered) > len(apart):
            lines.append("| *argon2-bound, apart:* |" + " |" * (len(head) - 1))
        row = [labels.get(endpoint, endpoint)]
        for service in services:
            got = summary[endpoint][service]
            flag = " (errors!)" if got["errors"] else ""
            if got["unanswered_rounds"]:
                flag += f" ({got['unanswered_rounds']} rounds unanswered!)"
            row += [f"{got['rps']:.0f}{flag}", f"{got['p50_ms']:.2f}", f"{got['p99_ms']:.2f}"]
        ours = summary[endpoint].get("taskapi", {})
        row += [_ratio(ours.get(f"ratio_vs_{peer}")) for peer in peers]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "-"


def meta(**settings: Any) -> dict[str, Any]:
    """What a reader needs to reproduce or trust a record."""
    versions: dict[str, str | None] = {}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain")),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "versions": versions,
        **settings,
    }


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], capture_output=True, text=True, check=False, cwd=RESULTS.parent
    )
    return done.stdout.strip()


def write(name: str, payload: Mapping[str, Any]) -> Path:
    """Write `payload` to `name`: a file in bench/results/ unless `name` is a path of its own."""
    path = RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def shown(path: Path) -> str:
    """`path` as printed: relative to the checkout when it is inside it."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def chart(sweep: Mapping[str, Any], path: Path) -> Path:
    """p50 latency against table size (left) and against page depth (right), per service."""
    import matplotlib as mpl  # noqa: PLC0415 (the bench extra; only this mode needs it)

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    colours = {
        "taskapi": "tab:blue",
        "fastapi": "tab:green",
        "starlette": "tab:gray",
        "floor": "tab:red",
    }
    figure, (by_size, by_depth) = plt.subplots(1, 2, figsize=(12, 4.5))
    sizes = sweep["by_size"]
    for endpoint, style in (("list_page_1", "-"), ("get_task", ":")):
        for service, colour in colours.items():
            points = [
                (point["size"], point["endpoints"][endpoint][service]["p50_ms"])
                for point in sizes
                if service in point["endpoints"].get(endpoint, {})
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                by_size.plot(xs, ys, style, marker="o", color=colour, label=f"{service} {endpoint}")
    by_size.set(xscale="log", xlabel="rows (users and tasks)", ylabel="p50 latency, ms")
    by_size.set_title("Latency against table size")
    by_size.legend(fontsize="small")
    depth = sweep["by_depth"]
    for endpoint, style in (("list_cursor_deep", "-"), ("list_page_deep", "--")):
        for service, colour in colours.items():
            points = [
                (point["pages"], point["endpoints"][endpoint][service]["p50_ms"])
                for point in depth["points"]
                if service in point["endpoints"].get(endpoint, {})
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                by_depth.plot(
                    xs, ys, style, marker="o", color=colour, label=f"{service} {endpoint}"
                )
    by_depth.set(xscale="log", xlabel="pages deep (20 per page)", ylabel="p50 latency, ms")
    by_depth.set_title(f"Latency against page depth ({depth['label']} rows)")
    by_depth.legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
