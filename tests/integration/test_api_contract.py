"""schemathesis over the whole OpenAPI document: no 5xx, every response as documented, for each role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks

from api.app import API_VERSION, DESCRIPTION, all_operations
from tests.helpers.databases import BACKENDS
from tests.helpers.threaded_api import ThreadedApi, threaded_api

# The very document the app serves at /api/v1/openapi.json, built from the same route declarations.
# Invalid input may also be refused as 413: a bulk body of more items than allowed is usually larger than the
# byte limit too, and is refused before it is parsed (documented on every operation with a body).
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
            }
        }
    }
)
schema = schemathesis.openapi.from_dict(
    all_operations().openapi("calltracking", API_VERSION, DESCRIPTION), config=CONFIG
)

# Every check of the server's side of the contract: no 5xx; status codes, content types, response schemas
# and headers as documented; bad input refused; a 405 naming what is allowed; auth never ignored. Not
# positive_data_acceptance: some requests are valid by shape and rightly refused by state (an opaque cursor
# this API never handed out, a WebSocket endpoint asked for plain HTTP), with a documented 4xx.
CONTRACT_CHECKS = [
    not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    checks.allow_header_conformance,
    checks.ignored_auth,
]


@pytest.fixture(scope="module", params=BACKENDS)
def live_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ThreadedApi]:
    with threaded_api(request.param, Path(tmp_path_factory.mktemp(f"api-{request.param}"))) as served:
        yield served


@pytest.mark.parametrize("role", ["admin", "manager"])
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_contract(
    case: schemathesis.Case, live_api: ThreadedApi, role: str
) -> None:
    token = {"Authorization": f"Bearer {live_api.tokens[role]}"}
    if _headers_are_the_mutation(case):
        # schemathesis removed or mangled the token on purpose: sending ours would undo the invalid
        # request it meant to send (and the API must answer it 401).
        token = {}
    case.call_and_validate(base_url=live_api.url, headers=token, checks=CONTRACT_CHECKS)


def _headers_are_the_mutation(case: schemathesis.Case) -> bool:
    header = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    return header is not None and header.mode is GenerationMode.NEGATIVE
