"""Every operation of the spec, fuzzed in-process against the real app with every check
schemathesis has: server errors, status codes, content types, headers and bodies against the
spec, rejection of schema-violating requests, acceptance of valid ones, unsupported methods.

Each operation is one pytest item (per database backend) with its own app and rolled-back
transaction. Generation is bounded and seeded, so a run is quick and CI sees the same cases.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from connexion import AsyncApp
from hypothesis import HealthCheck, settings
from sqlalchemy import Connection

from taskapi.spec import load_spec

# A fixed seed makes every run generate the same cases; bump it deliberately to explore anew.
SEED = 20261126
MAX_EXAMPLES = 50
STATEFUL_EXAMPLES = 30
# What `positive_data_acceptance` accepts for a valid request unless told otherwise.
DEFAULT_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "operations": [
            {
                # A new password must come with the right `current_password`: a rule the spec
                # states in words because OpenAPI 3.0 cannot, and one no generator can satisfy
                # without knowing the password. Its 400 (a validation problem pointing at
                # /body/current_password) is the documented answer to a schema-valid body.
                # Deleting the account needs it just the same. And a new password must pass the
                # password policy (not common, not the email or name: zxcvbn), which the spec
                # also states in words; a 400 naming /body/password says which rule it broke.
                "include-operation-id": [
                    "update_current_user",
                    "delete_current_user",
                    "create_user",
                ],
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": [*DEFAULT_ACCEPTED, "400"]}
                },
            },
            {
                # Generated requests reuse a few Idempotency-Key values with different bodies;
                # the documented answer to that is 422, whatever the body.
                "include-operation-id": "create_task",
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": [*DEFAULT_ACCEPTED, "422"]}
                },
            },
            {
                # A stale or foreign If-Match is answered 412 however valid the rest is.
                "include-operation-id": ["update_task", "delete_task"],
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": [*DEFAULT_ACCEPTED, "412"]}
                },
            },
            {
                # A cursor is valid only as issued; the spec can bound its form, not forge one.
                "include-operation-id": "list_tasks",
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": [*DEFAULT_ACCEPTED, "400"]}
                },
            },
        ],
    }
)

# Loaded from the spec file rather than through `schemathesis.pytest.from_fixture`: the lazy
# loader renames pytest items through `Function._nodeid`, which pytest 9.2 no longer has. Each
# test binds the app from its `app` fixture instead, so every backend still gets its own.
schema = schemathesis.openapi.from_dict(load_spec(), config=CONFIG)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    # No example database: it would replay cases across runs and break reproducibility.
    database=None,
    # The app and its transaction are per pytest item, shared by the item's examples on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_operation_honours_the_contract(
    case: schemathesis.Case, app: AsyncApp, admin_headers: dict[str, str]
) -> None:
    # Bound on the operation and its schema, not passed per call, so the checks' own probes
    # (unsupported methods, requests without credentials) reach this app too. Items run one at
    # a time, each binding its own app before sending anything.
    case.operation.app = case.operation.schema.app = app
    # An admin's token reaches every operation; generated credentials would only ever be 401s,
    # and the `ignored_auth` check still sends requests without and with a wrong token.
    case.call_and_validate(headers=admin_headers)


def test_stateful_sequences_honour_the_contract(
    app: AsyncApp, admin_headers: dict[str, str], connection: Connection
) -> None:
    """Walks the spec's links (a created task -> read, change, delete it) in generated
    sequences, checking every response along the way."""
    schema.app = app
    workflow = schema.as_state_machine()

    class AuthenticatedWorkflow(workflow):  # type: ignore[misc,valid-type]
        # Every scenario starts from the same data (Hypothesis replays scenarios and needs
        # them to behave the same way): each runs in a savepoint rolled back at its end.
        def setup(self) -> None:
            self.savepoint = connection.begin_nested()

        def teardown(self) -> None:
            self.savepoint.rollback()

        def before_call(self, case: schemathesis.Case) -> None:
            case.operation.app = app

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": admin_headers}

    AuthenticatedWorkflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
