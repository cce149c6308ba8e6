"""A rolling restart under steady load: SIGTERM one replica, wait for its exit, start it, wait
until HAProxy routes to it again, then the next. Clients see no failure; nothing acknowledged
is lost."""

from __future__ import annotations

import signal
import time

from tests.scale.load import SteadyLoad, summary
from tools.replica_set import ReplicaSet

# uvicorn with one worker re-raises the SIGTERM it handled once it has shut down cleanly.
CLEAN_EXITS = {0, -signal.SIGTERM}


def test_rolling_restart_under_load_fails_no_request_and_loses_no_write(
    cluster: ReplicaSet,
) -> None:
    with SteadyLoad(cluster.base_url) as load:
        load.wait_for_requests(100)
        started = time.monotonic()
        restarts = [cluster.restart(replica) for replica in cluster.replicas]
        ended = time.monotonic()
        load.wait_for_requests(100)

    during = load.between(started, ended)
    print(f"\nrolling restart of {len(restarts)} replicas in {ended - started:.1f} s")
    for replica, (status, stopped, back) in zip(cluster.replicas, restarts, strict=True):
        print(f"  {replica.name}: exit {status} after {stopped:.1f} s, routed after {back:.1f} s")
    print(f"  during the restart: {summary(during)}")
    print(f"  whole run: {summary(load.outcomes)}")

    assert [status in CLEAN_EXITS for status, _, _ in restarts] == [True] * len(restarts)
    assert load.failures() == []
    assert len(during) > 0
    assert any(c.task_id for c in load.creates)
    assert load.unreadable_creates() == []
