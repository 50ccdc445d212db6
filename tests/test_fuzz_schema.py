"""Schema fuzzing: schemathesis generates requests from the OpenAPI document the local server serves at
/api/openapi.json (valid and invalid ones) and checks every answer: never a 5xx, and status, content type,
headers and body as the document promises.

Bounded and repeatable: a fixed number of examples per operation and a derandomized (fixed-seed) Hypothesis run,
with no example database, so the run takes seconds and finds the same thing every time. The server is one live
server for the module, with its own container and database; every request is sent as an admin principal so the
admin routes are exercised past their role check.

What is adapted, and why (each narrowly): the function key is taken out of the fuzzed copy of the document (the
Functions host checks it in Azure; the local server has no host in front of it); `positive_data_acceptance` is not
applied to continuation tokens, import data, Chat Completions conversations and a `from` after `to` in GET
/analytics, whose validity no schema can express (see the test). Everything
schemathesis found beyond that was fixed in the service or the document: the SSE event schema, the user_id
pattern, `null` as an optional body, whole floats for `at_turn`, and the 405 Allow header of /sessions/import.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis.checks import positive_data_acceptance

from shared.http.routes import document
from tests.api_helpers import principal
from tests.fixtures_app import LiveServer, service_env
from tools.emulators import Azurite, CosmosEmulator
from tools.fake_model import FakeModelServer

MAX_EXAMPLES = 25
ADMIN = principal("fuzz-admin", roles=["admin"])


@pytest.fixture(scope="module")
def fuzz_server(
    azurite: Azurite, cosmos_emulator: CosmosEmulator, model_servers: dict[str, FakeModelServer]
) -> Iterator[LiveServer]:
    # Every backend configured, so every `route` the document allows is one the service can take.
    env = service_env(azurite, cosmos_emulator, model_servers, backends=("local", "cloud", "foundry", "apim"))
    server = LiveServer(env).start()
    yield server
    server.stop()


def local_document() -> dict[str, Any]:
    """The served document minus the function key: the Functions host checks keys in Azure; the local server,
    which has no host in front of it, accepts every request, so a missing key is not an error here."""
    local = copy.deepcopy(document())
    local["components"].pop("securitySchemes", None)
    for operations in local["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
            operation["responses"].pop("401", None)
    return local


# The document the handlers are generated with; the first test proves the server serves exactly this one.
# (schemathesis.pytest.from_fixture would load it from the server, but it does not run under pytest 9.)
schema = schemathesis.openapi.from_dict(local_document())


def test_the_fuzzed_document_is_the_one_the_server_serves(fuzz_server: LiveServer) -> None:
    served = httpx.get(f"{fuzz_server.url}/openapi.json", timeout=30)
    assert served.status_code == 200 and served.json() == json.loads(json.dumps(document()))


@pytest.mark.timeout(240)
@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_every_generated_request_gets_a_documented_answer_and_never_a_5xx(
    case: schemathesis.Case, fuzz_server: LiveServer
) -> None:
    excluded = []
    if case.operation.label == "GET /sessions" and (case.query or {}).get("continuation") is not None:
        # A continuation token is opaque: any string fits its schema, but only tokens this service issued are
        # accepted (400 otherwise), which no schema can say.
        excluded.append(positive_data_acceptance)
    query = case.query or {}
    if case.operation.label == "GET /analytics" and query.get("from") is not None and query.get("to") is not None:
        # Each day fits its schema, but `from` after `to` is refused (422 naming `from`), which no schema can say.
        excluded.append(positive_data_acceptance)
    if case.operation.label == "POST /sessions/import":
        # `data` is a whole conversation in the named format, checked message by message (422 naming the place);
        # the document describes the formats in prose, so schema-valid but meaningless data is rightly refused.
        excluded.append(positive_data_acceptance)
    if case.operation.label == "POST /v1/chat/completions":
        # `messages` is a conversation, checked message by message as an import is (the last must be the user's,
        # tool results must answer earlier calls), and `model` must be one this deployment serves: no schema says
        # that, so schema-valid but meaningless requests are rightly refused (422, or 404 for the model).
        excluded.append(positive_data_acceptance)
    case.call_and_validate(base_url=fuzz_server.url, headers=ADMIN, excluded_checks=excluded, timeout=30)
