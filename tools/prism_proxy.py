"""Run a command through Prism's validating proxy in front of a live service.

    python -m tools.prism_proxy -- COMMAND [ARG...]

Needs TASKAPI_URL (tools/live_service.py sets it). Starts `prism proxy` on a free port with the
spec the service serves, forwarding to TASKAPI_URL, and runs COMMAND with TASKAPI_URL pointing
at the proxy instead. Prism matches paths without the server's base path, so the proxy's URL is
its root. With `--errors` Prism answers a request or response that breaks the spec with an
error of its own; besides, this fails when Prism's log names any violation, whatever COMMAND's
status. The log is kept in test-results/prism-proxy.log.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from tools.live_service import RESULTS, free_port, wait_until_answering

REPO = Path(__file__).resolve().parent.parent
PRISM = REPO / "node_modules" / ".bin" / "prism"
VIOLATION = re.compile(r"violation|request terminated with error", re.IGNORECASE)


def _bind(port: int) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(port)]


def violations(log: str) -> list[str]:
    return [line for line in log.splitlines() if VIOLATION.search(line)]


def run(command: list[str]) -> int:
    upstream = os.environ["TASKAPI_URL"]
    RESULTS.mkdir(exist_ok=True)
    log_path = RESULTS / "prism-proxy.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proxy = subprocess.Popen(  # noqa: S603 - our own command line
            [str(PRISM), "proxy", f"{upstream}/openapi.json", upstream, "--errors", *_bind(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_answering(f"{url}/healthz", proxy, name="prism-proxy")
            print(f"prism-proxy: {url} validating traffic to {upstream}")
            status = subprocess.call(command, env={**os.environ, "TASKAPI_URL": url})  # noqa: S603
        finally:
            proxy.terminate()
            proxy.wait(timeout=30)
    found = violations(log_path.read_text(encoding="utf-8", errors="replace"))
    for line in found:
        print(f"prism-proxy: {line.strip()}")
    if found:
        print(f"prism-proxy: {len(found)} violation(s) of the spec: fail")
        return 1
    print("prism-proxy: no violations")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command to run through the proxy")
    return run(command)


if __name__ == "__main__":
    sys.exit(main())
