"""schemathesis over the whole OpenAPI document, every check enabled, with an admin and with a manager
token: no 5xx, every response as documented, every request the document allows accepted (or refused only
for state: 401, 403, 404, 409, 429) and every request it forbids refused.

Every operation gets its generated cases (20) on each backend and role. Its coverage cases (schemathesis's
boundary values of every parameter: ~700 for a report) are split where they test something different:
the valid ones, which reach the database, run with the admin token on both backends; the invalid ones,
which the API refuses before any query, run once, on SQLite. A manager token's own paths (its scope, its
403s) are the generated cases' and `test_api_roles.py`'s. Running every coverage case four times made this
file a quarter of the suite's time for checks that could not differ."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import CHECKS
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi import checks  # registers the OpenAPI checks with CHECKS

from api.app import API_VERSION, DESCRIPTION, all_operations
from tests.helpers.databases import BACKENDS
from tests.helpers.threaded_api import ThreadedApi, threaded_api

# The very document the app serves at /api/v1/openapi.json, built from the same route declarations.
# Invalid input may also be refused as 413: a bulk body of more items than allowed is usually larger than the
# byte limit too, and is refused before it is parsed (documented on every operation with a body). A Range
# the document forbids is 416 (RFC 9110), also documented. A 5xx is never an answer to bad input.
# The WebSocket endpoint accepts a valid handshake with 101 Switching Protocols, which schemathesis counts
# neither as a success nor as a client error unless told, for that one operation.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 416, 422, 428, 429]
            },
        },
        "operations": [
            {
                "include-path": "/api/v1/events",
                "checks": {
                    "not_a_server_error": {"expected-statuses": ["101", "2xx", "3xx", "4xx"]},
                    "positive_data_acceptance": {
                        "expected-statuses": ["101", "2xx", "3xx", "401", "403", "404", "409", "429"]
                    },
                },
            },
            {
                # A report's period has rules JSON Schema cannot state: `to` after `from`, at most 400 days
                # between them (`Period.parse`). A request that breaks them is refused 422, as documented.
                "include-path-regex": "^/api/v1/(stats|reports)/",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
                    },
                },
            },
        ],
    }
)
# The PBX the live API has configured (`threaded_api`): the document lists it as the only `pbx` to ask for.
schema = schemathesis.openapi.from_dict(
    all_operations().openapi("calltracking", API_VERSION, DESCRIPTION, pbx_names=["office"]), config=CONFIG
)
# Every check schemathesis has, "schema-valid request rejected" (positive_data_acceptance) included.
EVERY_CHECK = CHECKS.get_all()
# Bounded and reproducible: the same examples on every run, in CI time.
EXAMPLES = 20
REQUEST_TIMEOUT_SECONDS = 30


def test_every_check_is_enabled() -> None:
    names = {check.__name__ for check in EVERY_CHECK}
    assert {"not_a_server_error", "positive_data_acceptance", "negative_data_rejection"} <= names
    assert checks.use_after_free in EVERY_CHECK and len(names) == len(CHECKS.get_all_names()) >= 14


@pytest.fixture(scope="module", params=BACKENDS)
def live_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadedApi]:
    with threaded_api(request.param, Path(tmp_path_factory.mktemp(f"api-{request.param}"))) as served:
        yield served


@pytest.mark.parametrize("role", ["admin", "manager"])
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_its_contract(
    case: schemathesis.Case, live_api: ThreadedApi, role: str
) -> None:
    if not _covered_here(case, live_api.backend, role):
        return
    token = {"Authorization": f"Bearer {live_api.tokens[role]}"}
    if _headers_are_the_mutation(case):
        # schemathesis removed or mangled the token on purpose: sending ours would undo the invalid
        # request it meant to send (and the API must answer it 401).
        token = {}
    case.call_and_validate(
        base_url=live_api.url, headers=token, checks=EVERY_CHECK, timeout=REQUEST_TIMEOUT_SECONDS
    )


def _covered_here(case: schemathesis.Case, backend: str, role: str) -> bool:
    """Whether this combination runs the case (see the module's docstring): every generated case; a
    coverage case with the admin token, a valid one on both backends, an invalid one on SQLite only."""
    if case.meta is None or case.meta.phase.name is not TestPhase.COVERAGE:
        return True
    if role != "admin":
        return False
    return case.meta.generation.mode is GenerationMode.POSITIVE or backend == "sqlite"


def _headers_are_the_mutation(case: schemathesis.Case) -> bool:
    header = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    return header is not None and header.mode is GenerationMode.NEGATIVE
