"""A real Prometheus scrapes a real taskapi (two workers, PostgreSQL, Redis through a proxy the
test cuts), with deploy/prometheus/alerts.yml loaded: after traffic of every kind, every series
the alert rules and the dashboard read exists and has moved, and every rule evaluates cleanly.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.ops.conftest import FAST_FAILING
from tests.utils.factories import DEFAULT_PASSWORD, user_payload
from tests.utils.prometheus import ALERTS, prometheus_binary, series_used
from tests.utils.servers import METRICS_TOKEN, RunningServer, running_server, wait_until_ready
from tests.utils.tcp_proxy import TcpProxy, free_port, proxied_redis

SCRAPE_SECONDS = 1
START_TIMEOUT = 30.0
SETTLE_TIMEOUT = 30.0
# Series whose value is a level, not a count: they must exist, they need not move.
LEVELS = frozenset(
    {
        "up",
        "taskapi_http_requests_in_flight",
        "taskapi_db_pool_checked_out",
        "taskapi_db_pool_connections",
        "taskapi_db_pool_capacity",
    }
)


class Prometheus:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def query(self, expression: str) -> list[dict[str, object]]:
        response = httpx.get(
            f"{self.base_url}/api/v1/query", params={"query": expression}, timeout=10
        )
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, object]] = body["data"]["result"]
        return result

    def total(self, series: str) -> float | None:
        """The sum over every sample of `series` now, or None when it has none."""
        result = self.query(f"sum({series})")
        return float(result[0]["value"][1]) if result else None  # type: ignore[index]

    def rules(self) -> list[dict[str, object]]:
        response = httpx.get(f"{self.base_url}/api/v1/rules", timeout=10)
        response.raise_for_status()
        return [rule for group in response.json()["data"]["groups"] for rule in group["rules"]]

    def wait_for(self, expression: str, *, timeout: float = SETTLE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.query(expression):
                return
            time.sleep(0.2)
        raise TimeoutError(f"Prometheus found nothing for {expression} within {timeout} s")


@pytest.fixture(scope="module")
def redis_proxy() -> Iterator[TcpProxy]:
    with proxied_redis() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def server(
    ops_database_url: str, redis_proxy: TcpProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with running_server(
        database_url=ops_database_url,
        workdir=tmp_path_factory.mktemp("scraped-server"),
        env={
            **FAST_FAILING,
            "REDIS_URL": redis_proxy.through(os.environ["TEST_REDIS_URL"]),
            # Two wrong passwords, then a delay: the throttle's waits show in the metrics.
            "LOGIN_RATE_LIMIT_PER_ACCOUNT_AND_CLIENT": "2/minute",
        },
    ) as server:
        yield server


@pytest.fixture(scope="module")
def prometheus(
    server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    binary = prometheus_binary("prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    target = server.base_url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": "taskapi",
                "metrics_path": "/v1/metrics",
                "authorization": {"credentials": METRICS_TOKEN},
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (folder / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own command line
            [
                binary,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        prometheus = Prometheus(f"http://127.0.0.1:{port}")
        wait_until_ready(
            prometheus.base_url, timeout=START_TIMEOUT, process=process, path="/-/ready"
        )
        prometheus.wait_for('up{job="taskapi"} == 1')
        yield prometheus
    finally:
        process.terminate()
        process.wait(timeout=30)


def drive_traffic(server: RunningServer, redis_proxy: TcpProxy) -> None:
    """Requests of every kind the metrics tell apart: successes, problems, slow and fast
    operations, logins that fail and are delayed, and a Redis outage."""
    with httpx.Client(base_url=f"{server.base_url}/v1", timeout=10) as client:
        payload = user_payload(email=f"{uuid.uuid4().hex}@example.com")
        assert client.post("/users", json=payload).status_code == 201
        login = {"email": payload["email"], "password": DEFAULT_PASSWORD}
        token = client.post("/auth/token", json=login).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for n in range(5):
            client.post("/tasks", json={"title": f"task {n}"}, headers=headers)
        client.get("/tasks", headers=headers)
        client.get("/nowhere")
        wrong = {**login, "password": "not the right password"}
        statuses = [client.post("/auth/token", json=wrong).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]
        redis_proxy.refuse()
        try:
            assert client.get("/readyz").status_code == 503
            client.get("/users/me", headers=headers)  # the general limit, unchecked
        finally:
            redis_proxy.forward()
        assert client.get("/readyz").status_code == 200


def test_every_series_of_the_rules_and_dashboard_exists_and_moves(
    server: RunningServer, prometheus: Prometheus, redis_proxy: TcpProxy
) -> None:
    used = series_used()
    before = {series: prometheus.total(series) or 0.0 for series in used - LEVELS}

    drive_traffic(server, redis_proxy)
    # Two scrapes later every worker's counts are in.
    time.sleep(3 * SCRAPE_SECONDS)
    prometheus.wait_for(
        'taskapi_dependency_failures_total{dependency="redis"} > 0', timeout=SETTLE_TIMEOUT
    )

    missing = sorted(series for series in used if prometheus.total(series) is None)
    unmoved = sorted(
        series for series, value in before.items() if (prometheus.total(series) or 0.0) <= value
    )
    assert missing == []
    assert unmoved == []


def test_every_alert_rule_evaluates_without_error(prometheus: Prometheus) -> None:
    time.sleep(2)  # an evaluation or two after the first scrape

    rules = prometheus.rules()

    assert len(rules) == len(yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"])
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
