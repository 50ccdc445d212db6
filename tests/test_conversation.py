"""One turn end to end on the real emulators and Agent Framework: routing, fallback, durability, concurrency."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.agents.backends import build_openai_client
from shared.agents.session import payload_of
from shared.app import Services
from shared.config import Settings
from shared.domain.analytics import analytics
from shared.domain.errors import AllBackendsFailed, SessionBusy, SessionNotFound
from shared.domain.ids import InvalidId
from shared.domain.records import TurnRecord
from shared.domain.routing import BackendNotConfigured, UnknownRoute
from shared.services.conversations import Conversations
from shared.services.events import TurnCompleted
from shared.storage.documents import kept_record
from shared.storage.metadata import MetadataStore
from shared.storage.snapshots import SnapshotStore
from tools.fake_model import Behaviour, FakeModelServer, unused_port

ROOT = Path(__file__).resolve().parent.parent
HARD = (
    "Design a distributed rate limiter for a multi-region API. Compare token bucket and sliding window "
    "approaches, analyze the trade-offs in consistency and latency, and explain step by step how to handle clock skew."
)


def user_messages(request: dict[str, Any]) -> list[str]:
    return [message["content"] for message in request["json"]["messages"] if message["role"] == "user"]


async def test_easy_turn_goes_local_and_hard_turn_goes_to_the_cloud(
    services: Services, models: dict[str, FakeModelServer]
) -> None:
    first = await services.conversations.chat("alice", "hi! what's the capital of France?")
    second = await services.conversations.chat("alice", HARD, first.session_id)
    assert first.record.backend == "local" and first.reply.startswith("[local/")
    assert second.record.backend == "cloud" and second.reply.startswith("[cloud/")
    assert second.record.switched_from == "local"
    assert second.record.complexity is not None and second.record.complexity >= 0.45
    assert len(models["local"].requests) == 1 and len(models["cloud"].requests) == 1


async def test_follow_ups_stay_with_the_strong_backend_and_thanks_goes_local(services: Services) -> None:
    conversations = services.conversations
    hard = await conversations.chat("alice", HARD)
    faster = await conversations.chat("alice", "now make it faster", hard.session_id)
    regions = await conversations.chat("alice", "what if the gateway ran in three regions?", hard.session_id)
    thanks = await conversations.chat("alice", "thanks!", hard.session_id)
    assert [r.record.backend for r in (hard, faster, regions, thanks)] == ["cloud", "cloud", "cloud", "local"]
    assert thanks.record.switched_from == "cloud" and "switched from cloud" in thanks.record.reason
    assert faster.record.follow_up and regions.record.follow_up and not thanks.record.follow_up


async def test_a_follow_up_that_only_translates_the_answer_goes_local(services: Services) -> None:
    hard = await services.conversations.chat("alice", HARD)
    french = await services.conversations.chat("alice", "and in French?", hard.session_id)
    assert (hard.record.backend, french.record.backend) == ("cloud", "local")
    assert not french.record.follow_up and french.record.switched_from == "cloud"


async def test_every_turn_sends_the_whole_history_and_keeps_it_out_of_the_service(
    services: Services, models: dict[str, FakeModelServer]
) -> None:
    conversations = services.conversations
    one = await conversations.chat("alice", "remember the word pineapple", route="local")
    await conversations.chat("alice", "what word did I ask you to remember?", one.session_id, route="cloud")
    request = models["cloud"].requests[-1]
    assert user_messages(request) == ["remember the word pineapple", "what word did I ask you to remember?"]
    assert request["json"]["messages"][0]["role"] == "system"
    snapshot = await services.snapshots.load("alice", one.session_id)
    assert payload_of(snapshot)["service_session_id"] is None


@pytest.mark.parametrize(
    ("behaviour", "kind"),
    [
        (Behaviour.error(500), "server"),
        (Behaviour.error(503), "server"),
        (Behaviour.rate_limited(retry_after=3), "rate_limited"),
        (Behaviour.reset(), "connection"),
        (Behaviour.slow(3.0), "timeout"),
    ],
    ids=["500", "503", "429", "reset", "timeout"],
)
async def test_a_failing_backend_falls_back_to_the_next_and_the_record_keeps_the_chain(
    make_services: Callable[..., Any], models: dict[str, FakeModelServer], behaviour: Behaviour, kind: str
) -> None:
    services = await make_services(MODEL_TIMEOUT_SECONDS="1")
    models["cloud"].script(behaviour)
    result = await services.conversations.chat("alice", HARD)
    assert result.record.backend == "local" and result.reply.startswith("[local/")
    assert result.record.fallback_from == "cloud"
    assert [(a.backend, a.error) for a in result.record.fallback_chain] == [("cloud", kind)]
    assert "fell back to local" in result.record.reason
    stored = await services.metadata.session_turns("alice", result.session_id)
    assert stored[0].fallback_chain[0].error == kind


async def test_a_refused_connection_falls_back(make_services: Callable[..., Any]) -> None:
    services = await make_services(CLOUD_MODEL_ENDPOINT=f"http://127.0.0.1:{unused_port()}/v1")
    result = await services.conversations.chat("alice", HARD)
    assert result.record.backend == "local"
    assert result.record.fallback_chain[0].error == "connection"


async def test_when_every_backend_fails_nothing_is_stored(
    services: Services, models: dict[str, FakeModelServer]
) -> None:
    models["cloud"].script(Behaviour.error(500))
    models["local"].script(Behaviour.error(502))
    with pytest.raises(AllBackendsFailed) as failure:
        await services.conversations.chat("alice", HARD)
    assert [attempt.backend for attempt in failure.value.attempts] == ["cloud", "local"]
    assert [blob async for blob in services.snapshots._container.list_blobs()] == []
    assert await services.metadata.owner_turns("alice") == []


async def test_a_third_turn_in_a_new_process_sends_every_earlier_message(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    env = make_env()
    services = await make_services(env)
    one = await services.conversations.chat("alice", "my name is Ada", route="local")
    await services.conversations.chat("alice", "I like graph theory", one.session_id, route="cloud")
    script = (
        "import asyncio, json, sys\n"
        "from shared.app import build_services\n"
        "from shared.config import Settings\n"
        "async def main():\n"
        "    services = await build_services(Settings.from_env())\n"
        "    result = await services.conversations.chat('alice', 'what is my name?', sys.argv[1], route='local')\n"
        "    print(json.dumps({'turn': result.turn}))\n"
        "    await services.close()\n"
        "asyncio.run(main())\n"
    )
    process = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script, one.session_id],
        env={**env, "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout.strip().splitlines()[-1]) == {"turn": 3}
    assert user_messages(models["local"].requests[-1]) == ["my name is Ada", "I like graph theory", "what is my name?"]
    assert (await services.snapshots.load("alice", one.session_id)).turns == 3


async def test_two_concurrent_turns_on_one_session_one_wins_and_nothing_is_lost(
    services: Services, models: dict[str, FakeModelServer]
) -> None:
    first = await services.conversations.chat("alice", "hello", route="local")
    models["local"].script(Behaviour.slow(1.0, reply="slow answer"))

    async def turn(text: str) -> Any:
        return await services.conversations.chat("alice", text, first.session_id, route="local")

    results = await asyncio.gather(turn("racer one"), turn("racer two"), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and len(losers) == 1 and isinstance(losers[0], SessionBusy)
    assert len(models["local"].requests) == 2, "the loser is refused before its model call"
    snapshot = await services.snapshots.load("alice", first.session_id)
    assert [record.turn for record in snapshot.records] == [1, 2]
    contents = [message["content"] for message in snapshot.openai_messages()]
    assert contents.count("racer one") + contents.count("racer two") == 1
    assert [m["role"] for m in snapshot.openai_messages()] == ["user", "assistant"] * 2


async def test_cosmos_turn_records_equal_what_cosmos_keeps_of_the_snapshots(services: Services) -> None:
    result = await services.conversations.chat("alice", "hi")
    for text in (HARD, "now make it faster", "thanks"):
        await services.conversations.chat("alice", text, result.session_id)
    snapshot = await services.snapshots.load("alice", result.session_id)
    stored = await services.metadata.session_turns("alice", result.session_id)
    assert [r.to_dict() for r in stored] == [kept_record(r).to_dict() for r in snapshot.records]
    summary = await services.metadata.summary("alice", result.session_id)
    assert summary is not None and summary.turns == 4 and summary.switches == 2
    assert summary.backends == {"local": 2, "cloud": 2}


async def test_stored_history_is_never_cut_while_the_model_context_is_capped(
    make_services: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    # Plain truncation (summaries off): what this test is about is the cap; summaries are tests/test_context*.
    services = await make_services(CONTEXT_MAX_MESSAGES="4", CONTEXT_SUMMARY="false")
    session = (await services.conversations.chat("alice", "turn 1", route="local")).session_id
    for turn in range(2, 7):
        await services.conversations.chat("alice", f"turn {turn}", session, route="local")
    sent = user_messages(models["local"].requests[-1])
    assert sent == ["turn 4", "turn 5", "turn 6"]  # 4 history messages (2 exchanges) + the new one
    assert len((await services.snapshots.load("alice", session)).openai_messages()) == 12


async def test_a_forced_route_wins_over_the_router_and_bad_routes_are_refused(services: Services) -> None:
    forced = await services.conversations.chat("alice", HARD, route="local")
    assert forced.record.backend == "local" and forced.record.route_requested == "local"
    with pytest.raises(BackendNotConfigured):
        await services.conversations.chat("alice", "hi", route="foundry")
    with pytest.raises(UnknownRoute):
        await services.conversations.chat("alice", "hi", route="mars")


async def test_bad_ids_are_rejected_before_any_storage_call(make_env: Callable[..., dict[str, str]]) -> None:
    """The stores point at ports where nothing listens: any storage call would fail with a connection error."""
    from azure.cosmos.aio import CosmosClient
    from azure.storage.blob.aio import ContainerClient

    settings = Settings.from_env(make_env())
    dead = f"http://127.0.0.1:{unused_port()}/devstoreaccount1"
    container = ContainerClient(dead, "c", credential={"account_name": "devstoreaccount1", "account_key": "a2V5"})
    cosmos = CosmosClient(f"https://127.0.0.1:{unused_port()}/", credential="a2V5")
    conversations = Conversations(
        settings, SnapshotStore(container), MetadataStore(cosmos, "d", "t", "s", "a"), backends={}
    )
    for owner, session in (("alice", "../bob"), ("alice", "a/b"), ("al ice", "s1"), ("alice", "x" * 65)):
        with pytest.raises(InvalidId):
            await conversations.chat(owner, "hi", session)
        with pytest.raises(InvalidId):
            await conversations.get(owner, session)
        with pytest.raises(InvalidId):
            await conversations.delete(owner, session)
    await container.close()
    await cosmos.close()


async def test_continuing_a_missing_or_foreign_session_is_not_found(services: Services) -> None:
    mine = await services.conversations.chat("alice", "hi")
    with pytest.raises(SessionNotFound):
        await services.conversations.chat("bob", "hi", mine.session_id)
    with pytest.raises(SessionNotFound):
        await services.conversations.chat("alice", "hi", "doesnotexist")


async def test_streamed_turn_yields_route_then_deltas_then_the_saved_result(services: Services) -> None:
    events = [event async for event in services.conversations.turn("alice", "hello there")]
    names = [type(event).__name__ for event in events]
    assert names[0] == "RouteChosen" and names[-1] == "TurnCompleted"
    deltas = "".join(event.text for event in events if type(event).__name__ == "Delta")  # type: ignore[attr-defined]
    completed = events[-1]
    assert isinstance(completed, TurnCompleted)
    assert deltas == completed.result.reply
    assert (await services.snapshots.load("alice", completed.result.session_id)).turns == 1


async def test_usage_and_cost_come_from_the_model_and_the_price_table(
    make_services: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    prices = {"cloud": {"input": 2.5, "output": 10.0}}
    services = await make_services(PRICE_TABLE=json.dumps(prices))
    result = await services.conversations.chat("alice", HARD)
    usage = models["cloud"].requests[-1]
    assert usage["outcome"] == "reply"
    record = result.record
    assert record.input_tokens > 0 and record.output_tokens > 0
    assert record.cost == pytest.approx((record.input_tokens * 2.5 + record.output_tokens * 10.0) / 1e6)


def test_analytics_of_a_known_conversation() -> None:
    def record(turn: int, backend: str, latency: float, switched: str | None = None) -> TurnRecord:
        return TurnRecord(
            turn=turn, backend=backend, model="m", complexity=0.5, reason="", router_version="t",
            route_requested="auto", switched_from=switched, fallback_chain=(), latency_ms=latency, turn_ms=latency,
            input_tokens=100, output_tokens=10 * turn, cost=0.001 * turn if backend == "cloud" else 0.0,
            started_at="2026-01-01T00:00:00.000000Z", completed_at="2026-01-01T00:00:00.000000Z",
            user_chars=1, reply_chars=1,
        )  # fmt: skip

    records = [
        record(1, "local", 100),
        record(2, "cloud", 1000, "local"),
        record(3, "cloud", 3000),
        record(4, "local", 300, "cloud"),
    ]
    result = analytics(records)
    assert result["total_exchanges"] == 4
    assert result["routing_distribution"] == {"local": 2, "cloud": 2}
    assert result["model_switches"] == 2
    assert result["latency_ms"]["cloud"] == {"mean": 2000.0, "p95": 3000.0}
    assert result["latency_ms"]["local"] == {"mean": 200.0, "p95": 300.0}
    assert result["tokens"]["cloud"] == {"input": 200, "output": 50}
    assert result["cost"] == {"local": 0.0, "cloud": pytest.approx(0.005)}


async def test_session_and_owner_analytics_from_cosmos(services: Services) -> None:
    one = await services.conversations.chat("alice", "hi")
    await services.conversations.chat("alice", HARD, one.session_id)
    await services.conversations.chat("alice", "hello again")
    await services.conversations.chat("bob", "not alice's")
    session = await services.conversations.session_analytics("alice", one.session_id)
    assert session["total_exchanges"] == 2 and session["model_switches"] == 1
    assert session["routing_distribution"] == {"local": 1, "cloud": 1}
    owner = await services.conversations.owner_analytics("alice")
    assert owner["total_exchanges"] == 3 and owner["routing_distribution"] == {"local": 2, "cloud": 1}


async def test_apim_key_is_sent_as_the_subscription_header(
    make_services: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    services = await make_services(backends=("apim",))
    await services.conversations.chat("alice", "hi")
    headers = models["apim"].requests[-1]["headers"]
    assert headers["ocp-apim-subscription-key"] == "key-apim"
    assert "key-apim" not in headers.get("authorization", "")


def test_azure_endpoint_without_key_uses_entra_tokens_and_never_a_key() -> None:
    settings = Settings.from_env(
        {
            "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
            "COSMOS_ENDPOINT": "https://127.0.0.1:8081/",
            "CLOUD_MODEL_ENDPOINT": "https://contoso.openai.azure.com/",
            "CLOUD_MODEL_NAME": "gpt-4o-mini",
        }
    )

    async def token() -> str:
        return "entra-token"

    client = build_openai_client(settings.backends["cloud"], settings, token)
    assert type(client).__name__ == "AsyncAzureOpenAI"
    assert client._azure_ad_token_provider is token  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="Entra ID"):
        build_openai_client(settings.backends["cloud"], settings, None)


async def test_session_analytics_count_every_turn_even_when_cosmos_lost_some(services: Services) -> None:
    """Cosmos is derived data (in Azure its TTL can expire old turns of a long-lived session): Blob decides."""
    from shared.storage.documents import turn_document_id

    one = await services.conversations.chat("alice", "hi")
    await services.conversations.chat("alice", HARD, one.session_id)
    await services.metadata.database.container("turns").delete_item(
        turn_document_id("alice", one.session_id, 1), partition_key=one.session_id
    )
    result = await services.conversations.session_analytics("alice", one.session_id)
    assert result["total_exchanges"] == 2
    assert result["routing_distribution"] == {"local": 1, "cloud": 1}


def test_every_model_client_verifies_tls_with_one_trust_store_loaded_once() -> None:
    """Loading a trust store costs ~80 ms; the backends share one context, and it still verifies certificates."""
    import ssl

    from shared.agents.backends import http_client, tls_context

    clients = [http_client(endpoint, 5.0) for endpoint in ("https://a.example/v1", "https://b.example/openai/v1")]
    contexts = {id(client._transport.ssl_context) for client in clients}  # type: ignore[attr-defined]
    assert contexts == {id(tls_context())}
    assert tls_context().verify_mode == ssl.CERT_REQUIRED and tls_context().check_hostname
