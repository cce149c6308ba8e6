"""SIGKILL of one replica under steady load: HAProxy takes it out within its checks, the only
requests that fail are those that were in flight on it, and no write is left half-applied: the
client's retry (with its Idempotency-Key, or its If-Match) finds each one done or not done."""

from __future__ import annotations

import time

from sqlalchemy import Engine, text

from tests.scale.clients import client
from tests.scale.load import SteadyLoad, summary
from tools.replica_set import ReplicaSet

# HAProxy's checks (deploy/haproxy/haproxy.cfg): every 1 s, out after 2 failures; the bound is
# far above that, for a loaded machine.
OUT_OF_ROTATION_WITHIN = 10.0
# A request in flight on the replica when it died started at most this long before.
IN_FLIGHT_FOR = 5.0


def test_sigkill_of_a_replica_fails_only_requests_in_flight_on_it_and_no_write_halfway(
    cluster: ReplicaSet, scale_database: Engine
) -> None:
    victim = cluster.replicas[-1]
    try:
        with SteadyLoad(cluster.base_url) as load:
            load.wait_for_requests(100)
            killed_at = time.monotonic()
            victim.kill()
            out_after = cluster.balancer.wait_for(victim.name, "DOWN")
            routed_when_out = cluster.balancer.servers()[victim.name]["stot"]
            load.wait_for_requests(200)
            routed_later = cluster.balancer.servers()[victim.name]["stot"]
    finally:
        if victim.process is None:  # killed: back in the set for the tests that follow
            victim.start()
            victim.wait_until_ready()
            cluster.balancer.wait_for(victim.name, "UP")

    # What clients saw answered (or fail) between the kill and HAProxy taking the victim out.
    window = [o for o in load.outcomes if killed_at <= o.ended <= killed_at + out_after]
    failures = load.failures()
    print(f"\nSIGKILL {victim.name}: out of rotation after {out_after:.1f} s")
    print(f"  until then: {summary(window)}")
    print(f"  whole run: {summary(load.outcomes)}")

    for failure in failures:
        sent = failure.started - killed_at
        print(f"  failed: {failure.operation} sent at {sent:+.2f} s: {failure.error}")
    assert out_after < OUT_OF_ROTATION_WITHIN
    assert routed_later == routed_when_out  # nothing sent to it once out
    # Each client has one request in flight at a time: at most that many were on the victim.
    assert len(failures) <= load.clients
    assert all(killed_at - IN_FLIGHT_FOR <= f.started <= killed_at + out_after for f in failures)
    _assert_no_write_half_applied(cluster, load, scale_database)


def _assert_no_write_half_applied(cluster: ReplicaSet, load: SteadyLoad, database: Engine) -> None:
    assert load.unreadable_creates() == []
    with database.connect() as connection:
        # A key claimed but never answered (its reply JSON null) would replay nothing for ever.
        unanswered = connection.execute(
            text(
                "SELECT count(*) FROM idempotent_requests"
                " WHERE reply IS NULL OR CAST(reply AS TEXT) = 'null'"
            )
        ).scalar_one()
    assert unanswered == 0
    with client(cluster.base_url) as http:
        # Every create left unanswered, retried with its key, makes exactly one task.
        for create in (c for c in load.creates if c.task_id is None):
            retried = http.post(
                "/v1/tasks",
                json=create.body,
                headers={**create.owner, "Idempotency-Key": create.key},
            )
            assert retried.status_code == 201
        # A patch changes title and description together, answered or not.
        for patch in load.patches:
            task = http.get(f"/v1/tasks/{patch.task_id}", headers=_owner(load, patch.task_id))
            marker = patch.body["title"].removeprefix("patched ")
            assert (task.json()["title"] == patch.body["title"]) == (
                task.json()["description"] == f"by patch {marker}"
            )
    with database.connect() as connection:
        titles = [c.body["title"] for c in load.creates]
        duplicated = connection.execute(
            text(
                "SELECT title FROM tasks WHERE title = ANY(:titles)"
                " GROUP BY title HAVING count(*) > 1"
            ),
            {"titles": titles},
        ).all()
    assert duplicated == []


def _owner(load: SteadyLoad, task_id: str) -> dict[str, str]:
    return next(c.owner for c in load.creates if c.task_id == task_id)
