"""How many of the spec's links schemathesis's stateful phase followed, from its NDJSON report.

    python -m tools.link_coverage REPORT.ndjson --min 18

Counts what the CLI's "API Links: N covered" line counts (the distinct links applied in
scenarios that ran to an end), lists the links never followed, and fails when fewer than
`--min` were: links that carry what the next call needs (an id, an ETag as If-Match) are what
let the stateful phase reach the operations behind them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATEFUL = "stateful"
SKIPPED_STATUSES = frozenset({"interrupted", "skip", None})


@dataclass(frozen=True)
class Coverage:
    covered: frozenset[str]
    total: int


def _events(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    for line in lines:
        if line.strip():
            ((kind, payload),) = json.loads(line).items()
            yield kind, payload


def link_coverage(lines: Iterable[str]) -> Coverage:
    covered: set[str] = set()
    total = 0
    for kind, event in _events(lines):
        if kind == "LoadingFinished":
            total = event["statistic"]["transitions"]["total"]
        elif (
            kind == "ScenarioFinished"
            and event.get("phase") == STATEFUL
            and not event.get("is_final")
            and event.get("status") not in SKIPPED_STATUSES
        ):
            covered.update(
                case["transition"]["id"]
                for case in event["recorder"]["cases"].values()
                if case.get("transition") and case.get("is_transition_applied")
            )
    return Coverage(covered=frozenset(covered), total=total)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="schemathesis --report ndjson output")
    parser.add_argument("--min", type=int, required=True, help="links that must be followed")
    args = parser.parse_args(argv)
    with args.report.open(encoding="utf-8") as report:
        coverage = link_coverage(report)
    print(f"link-coverage: {len(coverage.covered)} of {coverage.total} links followed")
    for link in sorted(coverage.covered):
        print(f"  followed: {link}")
    if len(coverage.covered) < args.min:
        print(f"link-coverage: fewer than {args.min}: fail")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
